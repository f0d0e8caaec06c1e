// The asgi-kit demo page: sign in, list and revoke sessions, poke the file cache.
// Plain JavaScript, no build step. The session token lives in an HttpOnly cookie that the
// browser sends with every same-origin request: this script never sees or stores it, so an
// injected script could not carry it off. All tabs of one browser share the session.
// The access token is short-lived: before it expires the page renews it at
// /auth/sessions/refresh, whose HttpOnly refresh cookie the browser sends there only.
// Devices are named by the server ("Firefox on Windows", and a kind): the page shows them.
// "Log out everywhere" (or "other devices") may answer that it needs a recent sign-in
// (RFC 9470): the page then asks for the password in a dialog, posts it to
// /auth/sessions/reauthenticate, and tries once more.
"use strict";

(() => {
  const POLL_MS = 20000;
  const REQUEST_TIMEOUT_MS = 10000;
  const REFRESH_AT = 0.8; // of the access token's lifetime
  const MIN_REFRESH_MS = 1000; // at most one a second, even for a token about to expire
  const SESSION_ENDED = "Your session has ended: it was revoked from another device, or it expired. Sign in again.";
  // Why a refused refresh (400, by its detail) ended the session; others: SESSION_ENDED.
  const REFRESH_REFUSALS = {
    REFRESH_TOKEN_REUSED: "This device was signed out: its sign-in was used from somewhere else "
      + "(a copied refresh token). Sign in again.",
  };
  const $ = (id) => document.getElementById(id);
  let me = null;
  let pollTimer = null;
  let polling = false;
  let lastStats = null;
  let refreshTimer = null;
  let refreshDue = false; // the timer fired while the page was hidden
  let refreshing = null; // the refresh in flight, shared by every caller

  // ---- small DOM helpers ----------------------------------------------------------

  // By the API's device kind: desktop, mobile, tablet, bot (curl, scripts) or unknown.
  const ICONS = {
    desktop: "M3 4h18v12H3zM8 20h8M12 16v4",
    mobile: "M7 2h10v20H7zM11 18h2",
    tablet: "M4 3h16v18H4zM11 18h2",
    bot: "M3 4h18v16H3zM7 9l3 3-3 3M12 15h5",
    unknown: "M12 3a9 9 0 1 0 0 18a9 9 0 1 0 0-18zM9.5 9.5a2.5 2.5 0 1 1 3.5 2.3c-.6.3-1 .9-1 1.6V14M12 17v.5",
  };
  const KIND_WORDS = {
    desktop: "Computer",
    mobile: "Phone",
    tablet: "Tablet",
    bot: "Script or bot",
    unknown: "Unknown kind",
  };

  function icon(kind) {
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("class", "device-icon");
    svg.setAttribute("aria-hidden", "true");
    const path = document.createElementNS(ns, "path");
    path.setAttribute("d", ICONS[kind] || ICONS.unknown);
    svg.append(path);
    return svg;
  }

  /** Build an element; text is always set as text, never parsed as HTML. */
  function el(tag, props = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props)) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "text") node.textContent = value;
      else if (key === "dataset") Object.assign(node.dataset, value);
      else if (key === "onclick") node.addEventListener("click", value);
      else node.setAttribute(key === "className" ? "class" : key, value === true ? "" : value);
    }
    node.append(...children.filter((c) => c !== null && c !== undefined));
    return node;
  }

  function ago(iso) {
    if (!iso) return "never";
    const seconds = (Date.now() - new Date(iso).getTime()) / 1000;
    if (seconds < 45) return "just now";
    const minutes = Math.round(seconds / 60);
    if (minutes < 60) return `${minutes} min ago`;
    const hours = Math.round(minutes / 60);
    if (hours < 24) return `${hours} h ago`;
    const days = Math.round(hours / 24);
    if (days < 7) return days === 1 ? "yesterday" : `${days} days ago`;
    return new Date(iso).toLocaleDateString();
  }

  function when(iso) {
    return el("time", { datetime: iso, title: iso ? new Date(iso).toLocaleString() : "", text: ago(iso) });
  }

  /** "40 s", "5 min", "2 h" for a number of seconds. */
  function duration(seconds) {
    if (seconds < 60) return `${Math.max(1, Math.round(seconds))} s`;
    if (seconds < 3600) return `${Math.ceil(seconds / 60)} min`;
    return `${Math.ceil(seconds / 3600)} h`;
  }

  function formatBytes(n) {
    if (n === null || n === undefined) return "–";
    if (n < 1024) return `${n} B`;
    const units = ["KB", "MB", "GB"];
    let value = n / 1024;
    let unit = 0;
    while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
    return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
  }

  // ---- talking to the API -------------------------------------------------------------

  class SessionEnded extends Error {}

  /** A 401 asking for a more recent sign-in: the session is fine, the action wants more. */
  class ReauthenticationRequired extends Error {
    constructor(maxAge) {
      super("this needs a recent sign-in");
      this.maxAge = maxAge; // seconds (the challenge's max_age), or null
    }
  }

  function describeError(data, response) {
    const detail = data && data.detail;
    if (typeof detail === "string") return detail;
    return `${response.status} ${response.statusText}`.trim();
  }

  /** True when a 401 refused a token that was sent (expired, rotated or revoked). */
  function tokenRefused(response) {
    return /\berror="invalid_token"/.test(response.headers.get("WWW-Authenticate") || "");
  }

  /**
   * The max_age (seconds, or null) when a 401 asks for a more recent sign-in (RFC 9470:
   * error="insufficient_user_authentication"), else undefined. No refresh helps there.
   */
  function stepUpChallenge(response, data) {
    const challenge = response.headers.get("WWW-Authenticate") || "";
    const asked = /\berror="insufficient_user_authentication"/.test(challenge)
      || (data && data.detail === "REAUTHENTICATION_REQUIRED");
    if (!asked) return undefined;
    const maxAge = /\bmax_age="?(\d+)/.exec(challenge);
    return maxAge ? Number(maxAge[1]) : null;
  }

  /**
   * Call the API. The browser adds the session cookie (same origin only) and, on a POST or
   * DELETE, the Origin header the server checks. A 401 that refused the token gets one
   * refresh and one more try: the access token may just have expired. A 401 asking for a
   * recent sign-in throws ReauthenticationRequired (the session is fine). Any other 401
   * means there is no session (any more).
   */
  async function api(method, path, init = {}, retry = true) {
    const headers = { Accept: "application/json", ...(init.headers || {}) };
    const response = await fetch(path, {
      method,
      cache: "no-store",
      credentials: "same-origin",
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      ...init,
      headers,
    });
    const data = response.status === 204 ? null : await response.json().catch(() => null);
    if (response.status === 401) {
      // Refreshing after any refused token, not only an expired one: if someone else used a
      // copy of the refresh token first, this device's token was rotated out, and only its
      // refresh lets the server see the reuse and end the session for both.
      if (retry && tokenRefused(response)) {
        await refreshTokens(); // throws SessionEnded if the session is over
        return api(method, path, init, false);
      }
      const maxAge = stepUpChallenge(response, data);
      if (maxAge !== undefined) throw new ReauthenticationRequired(maxAge);
      endSession(me ? SESSION_ENDED : "");
      throw new SessionEnded("session ended");
    }
    if (!response.ok) {
      const error = new Error(describeError(data, response));
      error.status = response.status;
      error.retryAfter = Number(response.headers.get("Retry-After")) || null;
      throw error;
    }
    return data;
  }

  /**
   * Renew the tokens: the browser sends the HttpOnly refresh cookie (to this path only) and
   * the answer sets both cookies anew; its body says only when the new access token expires.
   * One refresh at a time, shared by every caller. A 400 means the session is over.
   */
  function refreshTokens() {
    if (!refreshing) refreshing = postRefresh().finally(() => { refreshing = null; });
    return refreshing;
  }

  async function postRefresh() {
    refreshDue = false;
    const response = await fetch("/auth/sessions/refresh", {
      method: "POST",
      cache: "no-store",
      credentials: "same-origin",
      headers: { Accept: "application/json" },
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    const data = await response.json().catch(() => null);
    if (response.ok) {
      scheduleRefresh(data && data.expires_in);
      return;
    }
    if (response.status === 400) {
      endSession(REFRESH_REFUSALS[data && data.detail] || SESSION_ENDED);
      throw new SessionEnded("refresh refused");
    }
    const error = new Error(describeError(data, response));
    error.status = response.status;
    throw error;
  }

  /** Refresh quietly at REFRESH_AT of the access token's lifetime (expiresIn, in seconds). */
  function scheduleRefresh(expiresIn) {
    cancelRefresh();
    if (typeof expiresIn !== "number") return;
    refreshTimer = setTimeout(() => {
      refreshTimer = null;
      // Like the polling, only while visible: a hidden tab refreshes when shown again.
      if (document.visibilityState === "visible") act(null, refreshTokens);
      else refreshDue = true;
    }, Math.max(expiresIn * REFRESH_AT * 1000, MIN_REFRESH_MS));
  }

  function cancelRefresh() {
    if (refreshTimer !== null) clearTimeout(refreshTimer);
    refreshTimer = null;
    refreshDue = false;
  }

  /** Run an action from a button: busy while it runs, errors shown as a notice. */
  async function act(button, work) {
    if (button) button.disabled = true;
    try {
      await work();
    } catch (error) {
      if (!(error instanceof SessionEnded)) notify(`Something went wrong: ${error.message}`, "error");
    } finally {
      if (button) button.disabled = false;
    }
  }

  // ---- views ------------------------------------------------------------------------

  function notify(message, kind = "info") {
    const box = $("notice");
    box.textContent = message;
    box.className = `notice notice-${kind}`;
    box.hidden = !message;
  }

  function showLogin(message) {
    stopPolling();
    cancelRefresh();
    if ($("reauth-dialog").open) $("reauth-dialog").close(); // its promise says "cancelled"
    $("sessions-view").hidden = true;
    $("whoami").hidden = true;
    $("login-view").hidden = false;
    document.body.classList.add("signed-out");
    notify(message || "", "warn");
    $("password").value = "";
    $("username").focus();
  }

  function endSession(message) {
    me = null;
    showLogin(message);
  }

  async function showSessions() {
    me = await api("GET", "/me");
    scheduleRefresh(me.expires_in);
    $("who-name").textContent = me.username || me.user_id;
    $("who-avatar").textContent = (me.username || "?").slice(0, 1).toUpperCase();
    $("who-admin").hidden = !me.is_admin;
    $("admin-card").hidden = !me.is_admin;
    $("login-view").hidden = true;
    document.body.classList.remove("signed-out");
    $("whoami").hidden = false;
    $("sessions-view").hidden = false;
    await refreshAll();
    startPolling();
  }

  async function refreshAll() {
    await loadSessions();
    await Promise.all([me && me.is_admin ? loadAdmin() : null, loadFiles()]);
  }

  // ---- your sessions ------------------------------------------------------------------

  function deviceCell(session) {
    const { label, kind } = session.device;
    const name = el("div", { className: "device-name", text: label });
    if (session.current) name.append(" ", el("span", { className: "badge badge-current", text: "This device" }));
    return el("td", { className: "device" },
      icon(kind),
      el("div", {},
        name,
        el("div", { className: "device-ua", title: session.user_agent || "" },
          el("span", { className: "device-kind", text: KIND_WORDS[kind] || KIND_WORDS.unknown }),
          ` · ${session.user_agent || "no user agent"}`)));
  }

  function sessionRow(session, onRevoke) {
    const label = session.current ? "Log out" : "Revoke";
    const button = el("button", {
      type: "button",
      className: session.current ? "btn btn-small" : "btn btn-small btn-danger-outline",
      text: label,
      "aria-label": `${label} ${session.device.label}`,
    });
    button.addEventListener("click", () => act(button, () => onRevoke(session)));
    return el("tr", { className: session.current ? "current" : null, dataset: { sessionId: session.id } },
      deviceCell(session),
      el("td", { className: "mono", "data-label": "IP address", text: session.ip_address || "—" }),
      el("td", { "data-label": "Signed in" }, when(session.created_at)),
      el("td", { "data-label": "Last seen" }, when(session.last_seen_at)),
      el("td", { className: "col-action" }, button));
  }

  async function loadSessions() {
    const sessions = await api("GET", "/auth/sessions");
    $("sessions-body").replaceChildren(...sessions.map((s) => sessionRow(s, revokeOwn)));
    const n = sessions.length;
    $("sessions-summary").textContent =
      `${n} active session${n === 1 ? "" : "s"} for ${me.username}. Newest first.`;
    $("logout-others").disabled = n < 2;
  }

  async function logOut() {
    await api("POST", "/auth/logout"); // ends this session and clears the cookie
    endSession("You logged out of this device.");
  }

  async function revokeOwn(session) {
    if (session.current) {
      await logOut();
      return;
    }
    await api("DELETE", `/auth/sessions/${encodeURIComponent(session.id)}`);
    notify(`Revoked ${session.device.label}. That device is signed out on its next request.`, "success");
    await refreshAll();
  }

  // ---- logging out devices, with the password again if the sign-in is not recent -------

  const EVERYWHERE = {
    button: "Log out everywhere",
    effect: "Log out everywhere signs out every device, this one included.",
  };
  const OTHERS = {
    button: "Log out other devices",
    effect: "Log out other devices signs out every device but this one.",
  };
  let passwordAsked = null; // resolves the open password prompt's promise

  async function logOutEverywhere() {
    if (!(await withRecentSignIn(EVERYWHERE, () => api("DELETE", "/auth/sessions")))) return;
    endSession("You logged out everywhere, this device included.");
  }

  async function logOutOthers() {
    const endOthers = () => api("DELETE", "/auth/sessions?keep_current=true");
    if (!(await withRecentSignIn(OTHERS, endOthers))) return;
    notify("Logged out of every other device.", "success");
    await refreshAll();
  }

  /**
   * Run work (a change the server may keep for a recent sign-in); if it asks for one, ask
   * for the password and run work once more. False when the user cancelled.
   */
  async function withRecentSignIn(action, work) {
    try {
      await work();
    } catch (error) {
      if (!(error instanceof ReauthenticationRequired)) throw error;
      if (!(await askPassword(error.maxAge, action))) return false; // or the session ended
      await work(); // once: this session's sign-in is fresh now
    }
    return true;
  }

  /** Open the password dialog; resolves true once the server took the password, else false. */
  function askPassword(maxAge, action) {
    const dialog = $("reauth-dialog");
    $("reauth-effect").textContent = action.effect;
    $("reauth-submit").textContent = action.button;
    $("reauth-why").textContent = maxAge
      ? `You signed in here more than ${duration(maxAge)} ago. Enter your password to confirm it is you.`
      : "Enter your password to confirm it is you.";
    $("reauth-username").value = (me && me.username) || "";
    $("reauth-password").value = "";
    showPasswordError("");
    dialog.returnValue = "";
    dialog.showModal();
    $("reauth-password").focus();
    return new Promise((resolve) => { passwordAsked = resolve; });
  }

  function showPasswordError(message) {
    $("reauth-error").textContent = message;
    $("reauth-error").hidden = !message;
  }

  /**
   * Post the password to /auth/sessions/reauthenticate, as every change: the cookie, JSON,
   * and the Origin header the browser adds. 204 closes the dialog; 400 and 429 say why not.
   */
  async function submitPassword(event) {
    event.preventDefault();
    const password = $("reauth-password").value;
    if (!password) { showPasswordError("Enter your password."); return; }
    const submit = $("reauth-submit");
    submit.disabled = true;
    try {
      await api("POST", "/auth/sessions/reauthenticate", {
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ password }),
      });
      $("reauth-dialog").close("confirmed");
    } catch (error) {
      if (error instanceof SessionEnded) return; // showLogin closed the dialog
      showPasswordError(error.status === 400 ? "Wrong password. Try again."
        : error.status === 429 ? `Too many wrong passwords. Try again in ${duration(error.retryAfter || 60)}.`
        : `Could not check the password: ${error.message}`);
      $("reauth-password").value = "";
      $("reauth-password").focus();
    } finally {
      submit.disabled = false;
    }
  }

  function passwordDialogClosed() {
    const resolve = passwordAsked;
    passwordAsked = null;
    if (resolve) resolve($("reauth-dialog").returnValue === "confirmed");
  }

  // ---- admin: every user's sessions ---------------------------------------------------

  async function loadAdmin() {
    const accounts = await api("GET", "/admin/accounts");
    const blocks = await Promise.all(accounts.map(async (account) => {
      const sessions = await api("GET", `/admin/sessions/users/${account.id}`);
      return adminBlock(account, sessions);
    }));
    $("admin-body").replaceChildren(...blocks);
  }

  function adminBlock(account, sessions) {
    const endAll = el("button", { type: "button", className: "btn btn-small btn-danger-outline", text: "Log out everywhere" });
    endAll.disabled = sessions.length === 0;
    endAll.addEventListener("click", () => act(endAll, async () => {
      await api("DELETE", `/admin/sessions/users/${account.id}`);
      if (account.id === me.user_id) { endSession("You logged yourself out everywhere."); return; }
      notify(`Logged ${account.username} out everywhere.`, "success");
      await refreshAll();
    }));
    const rows = sessions.map((s) => {
      const revoke = el("button", { type: "button", className: "btn btn-small", text: "Revoke" });
      revoke.addEventListener("click", () => act(revoke, async () => {
        await api("DELETE", `/admin/sessions/${s.id}`);
        if (s.current) { endSession("You revoked your own session."); return; }
        notify(`Revoked a session of ${account.username}.`, "success");
        await refreshAll();
      }));
      const name = el("span", { text: s.device.label, title: KIND_WORDS[s.device.kind] || KIND_WORDS.unknown });
      return el("li", {},
        icon(s.device.kind),
        el("span", { className: "admin-device" }, name,
          s.current ? el("span", { className: "badge badge-current", text: "This device" }) : null),
        el("span", { className: "muted" }, when(s.last_seen_at)),
        revoke);
    });
    return el("div", { className: "admin-user" },
      el("div", { className: "admin-user-head" },
        el("span", { className: "avatar", "aria-hidden": "true", text: account.username.slice(0, 1).toUpperCase() }),
        el("strong", { text: account.username }),
        account.is_admin ? el("span", { className: "badge badge-admin", text: "admin" }) : null,
        el("span", { className: "muted", text: `${sessions.length} session${sessions.length === 1 ? "" : "s"}` }),
        endAll),
      rows.length ? el("ul", { className: "admin-sessions" }, ...rows)
        : el("p", { className: "muted empty", text: "Not signed in anywhere." }));
  }

  // ---- the file cache -----------------------------------------------------------------

  async function loadCacheStats() {
    const stats = await api("GET", "/files-cache");
    lastStats = stats;
    $("stat-entries").textContent = stats.max_entries ? `${stats.entries} / ${stats.max_entries}` : String(stats.entries);
    $("stat-bytes").textContent = formatBytes(stats.bytes);
    $("stat-hits").textContent = String(stats.hits);
    $("stat-misses").textContent = String(stats.misses);
  }

  function fileUrl(path) {
    return `/files/${path.split("/").map(encodeURIComponent).join("/")}`;
  }

  async function fetchFile(path) {
    const missesBefore = lastStats ? lastStats.misses : null;
    const url = `${fileUrl(path)}?t=${Date.now()}`;
    const response = await fetch(url, { cache: "no-store" });
    const text = await response.text();
    await loadCacheStats();
    let outcome = "";
    if (response.ok && missesBefore !== null) {
      outcome = lastStats.misses > missesBefore ? " · cache miss: fetched into the cache" : " · cache hit";
    }
    const preview = $("file-preview");
    preview.hidden = false;
    preview.textContent = `GET ${url}  →  ${response.status}${outcome}\n\n${text.slice(0, 800)}`;
  }

  async function loadFiles() {
    const files = await api("GET", "/files");
    $("file-list").replaceChildren(...files.map((file) => {
      const button = el("button", { type: "button", className: "btn btn-small", text: "Fetch" });
      button.addEventListener("click", () => act(button, () => fetchFile(file.path)));
      return el("li", {},
        el("a", { href: fileUrl(file.path), className: "mono", text: file.path, target: "_blank", rel: "noopener" }),
        el("span", { className: "muted", text: formatBytes(file.size) }),
        button);
    }));
    await loadCacheStats();
  }

  // ---- polling, events, start ---------------------------------------------------------

  function startPolling() {
    stopPolling();
    // One refresh at a time, only while signed in and visible: at most one per POLL_MS.
    pollTimer = setInterval(() => {
      if (me && !polling && document.visibilityState === "visible") {
        polling = true;
        act(null, refreshAll).finally(() => { polling = false; });
      }
    }, POLL_MS);
  }

  function stopPolling() {
    if (pollTimer !== null) clearInterval(pollTimer);
    pollTimer = null;
  }

  async function login(event) {
    event.preventDefault();
    const form = event.currentTarget;
    const error = $("login-error");
    error.hidden = true;
    const submit = $("login-submit");
    submit.disabled = true;
    try {
      // The answer sets the HttpOnly session and refresh cookies; of its body (the tokens,
      // for API clients) only expires_in is read.
      const response = await fetch("/auth/login", {
        method: "POST",
        credentials: "same-origin",
        headers: { Accept: "application/json" },
        body: new URLSearchParams(new FormData(form)),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
      const data = await response.json().catch(() => null);
      if (!response.ok) {
        error.textContent = response.status === 401 ? "Wrong username or password."
          : response.status === 422 ? "Enter a username and a password."
          : `Sign-in failed: ${describeError(data, response)}`;
        error.hidden = false;
        return;
      }
      notify("");
      scheduleRefresh(data.expires_in);
      await showSessions();
    } catch (failure) {
      if (!(failure instanceof SessionEnded)) {
        error.textContent = `Sign-in failed: ${failure.message}`;
        error.hidden = false;
      }
    } finally {
      submit.disabled = false;
    }
  }

  function wire() {
    $("login-form").addEventListener("submit", login);
    $("refresh").addEventListener("click", (e) => act(e.currentTarget, refreshAll));
    $("logout").addEventListener("click", (e) => act(e.currentTarget, logOut));
    $("logout-others").addEventListener("click", (e) => act(e.currentTarget, logOutOthers));
    $("logout-everywhere").addEventListener("click", (e) => act(e.currentTarget, logOutEverywhere));
    $("reauth-form").addEventListener("submit", submitPassword);
    $("reauth-cancel").addEventListener("click", () => $("reauth-dialog").close());
    $("reauth-dialog").addEventListener("close", passwordDialogClosed);
    document.addEventListener("visibilitychange", () => {
      if (me && document.visibilityState === "visible") {
        act(null, async () => {
          if (refreshDue) await refreshTokens();
          await refreshAll();
        });
      }
    });
  }

  async function start() {
    wire();
    try {
      await showSessions(); // signed in already if the browser has a live session cookie
    } catch (error) {
      if (!(error instanceof SessionEnded)) endSession(`Could not load your sessions: ${error.message}`);
    }
  }

  document.addEventListener("DOMContentLoaded", start);
})();
