"""The sessions page driven in headless Chromium, as a person would use it.

Playwright for Python drives Debian's ``/usr/bin/chromium`` (never a downloaded browser).
Without Playwright or Chromium the test skips with the reason; with ``CI`` set it fails.
The screenshot of the sessions page is saved to ``artifacts/sessions-page.png``.
The token lives in an HttpOnly cookie: the tests check the page's scripts cannot read it,
that tabs of one browser share it, and that a page of another origin cannot use it.
A second demo with 4-second access tokens shows the page refreshing them quietly, and a
copied refresh token, used elsewhere first, ending the session for both holders
(``artifacts/token-reused.png``). A third asks for the password again to log out
everywhere 2 seconds after a sign-in (``artifacts/reauthenticate-prompt.png``).
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx2
import pytest

from .servers import free_port
from .test_demo_command import ROOT, demo_process

pytestmark = pytest.mark.browser

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = ROOT / "artifacts"
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
TIMEOUT_MS = 15_000
REFRESH = "/auth/sessions/refresh"
REAUTHENTICATE = "/auth/sessions/reauthenticate"
#: The page's word for each device kind of the API (static/app.js).
KIND_WORDS = {
    "desktop": "Computer",
    "mobile": "Phone",
    "tablet": "Tablet",
    "bot": "Script or bot",
    "unknown": "Unknown kind",
}
LIST_SESSIONS = "fetch('/auth/sessions').then(r => r.json())"


def playwright_or_skip() -> ModuleType:
    """``playwright.sync_api``, or skip (fail under ``CI``) saying what is missing."""
    reason = None
    try:
        sync_api = importlib.import_module("playwright.sync_api")
    except ImportError:
        reason = "Playwright for Python is not installed (pip install playwright)"
    else:
        if not os.access(CHROMIUM, os.X_OK):
            reason = f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)"
    if reason is None:
        return sync_api
    if os.environ.get("CI"):
        pytest.fail(f"{reason}, and CI is set: the browser test must run on CI", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def sync_api() -> ModuleType:
    return playwright_or_skip()


@pytest.fixture(scope="module")
def demo_url(sync_api: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The demo under uvicorn on 127.0.0.1, with its own SQLite file and file cache."""
    with running_demo(tmp_path_factory.mktemp("browser-demo"), {}) as demo:
        yield demo.url


@dataclass(frozen=True)
class Demo:
    """A running demo: where it answers, and the file its output goes to."""

    url: str
    log: Path


@contextmanager
def running_demo(tmp: Path, settings: dict[str, str]) -> Iterator[Demo]:
    """The demo under uvicorn on a free port, its files in ``tmp``, with extra ``settings``."""
    port = str(free_port())
    command = [sys.executable, "-m", "uvicorn", "examples.demo.app:app"]
    command += ["--host", "127.0.0.1", "--port", port]
    env = {
        "PORT": port,
        "SESSION_STORE_URL": f"sqlite:///{tmp / 'sessions.sqlite3'}",
        "FILES_CACHE_DIR": str(tmp / "file-cache"),
        "REFRESH_SECRET_FILE": str(tmp / "refresh-secret"),
        **settings,
    }
    log = tmp / "demo.log"
    with demo_process(command, env, log) as url:
        yield Demo(url, log)


@pytest.fixture(scope="module")
def browser(sync_api: ModuleType) -> Iterator[Any]:
    """Headless Debian Chromium."""
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()


class Device:
    """One browser context (its own cookie jar: a device) with one page on the demo."""

    def __init__(self, browser: Any, url: str, **context_options: Any) -> None:
        self.context = browser.new_context(**context_options)
        self.page = self.context.new_page()
        self.page.set_default_timeout(TIMEOUT_MS)
        self.errors: list[str] = []
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on("console", self._console)
        self.page.goto(url)

    def _console(self, message: Any) -> None:
        # A 401 on purpose shows up as "Failed to load resource", and so does a refused
        # refresh (400) of a session that ended, or a wrong password typed again (400);
        # anything else is a bug.
        url = message.location["url"]
        refused = "status of 400" in message.text and url.endswith((REFRESH, REAUTHENTICATE))
        if message.type == "error" and "status of 401" not in message.text and not refused:
            self.errors.append(message.text)

    def sign_in(self, username: str, password: str = "demo") -> None:  # noqa: S107
        """Fill in and submit the login form; wait for the sessions page."""
        self.page.locator("#login-view").wait_for()
        self.page.fill("#username", username)
        self.page.fill("#password", password)
        self.page.click("#login-submit")
        self.page.locator("#sessions-view").wait_for()
        self.page.locator("#sessions-body tr").first.wait_for()

    def rows(self) -> Any:
        return self.page.locator("#sessions-body tr")

    def device_labels(self) -> tuple[str, list[str]]:
        """The API's device labels of this browser's session and of the user's others."""
        sessions = self.page.evaluate(LIST_SESSIONS)
        (mine,) = [s["device"]["label"] for s in sessions if s["current"]]
        return mine, [s["device"]["label"] for s in sessions if not s["current"]]

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def devices(browser: Any, demo_url: str) -> Iterator[list[Device]]:
    """A laptop (plain headless Chromium) and a phone (an iPhone user agent), both signed out."""
    laptop = Device(browser, demo_url, viewport={"width": 1280, "height": 900})
    phone = Device(browser, demo_url, viewport={"width": 430, "height": 900}, user_agent=IPHONE)
    try:
        yield [laptop, phone]
        assert laptop.errors == []
        assert phone.errors == []
    finally:
        laptop.close()
        phone.close()


@pytest.fixture
def device(browser: Any, demo_url: str) -> Iterator[Device]:
    """One signed-out browser (a context with one page) on the demo, closed afterwards."""
    one = Device(browser, demo_url)
    try:
        yield one
        assert one.errors == []
    finally:
        one.close()


def test_two_devices_one_revokes_the_other(sync_api: ModuleType, devices: list[Device]) -> None:
    expect = sync_api.expect
    laptop, phone = devices

    laptop.sign_in("alice")
    expect(laptop.rows()).to_have_count(1)
    phone.sign_in("alice")
    expect(phone.rows()).to_have_count(2)
    laptop.page.click("#refresh")
    expect(laptop.rows()).to_have_count(2)

    # "This device" marks the laptop's own row on the laptop, the phone's row on the phone;
    # each row is named as the API names its device.
    laptop_label, _ = laptop.device_labels()
    phone_label, _ = phone.device_labels()
    assert phone_label == "Safari on iPhone"
    for device, mine, other in (
        (laptop, laptop_label, phone_label),
        (phone, phone_label, laptop_label),
    ):
        current = device.page.locator("#sessions-body tr.current")
        expect(current).to_have_count(1)
        expect(current).to_contain_text("This device")
        expect(current.locator(".device-name")).to_contain_text(mine)
        expect(device.page.locator("#sessions-body .badge-current")).to_have_count(1)
        expect(device.page.locator("#sessions-body tr:not(.current)")).to_contain_text(other)
        expect(device.page.locator("#sessions-body tr:not(.current)")).to_contain_text("127.0.0.1")

    expect(laptop.page.locator("#admin-card")).to_be_visible()  # alice is the admin
    laptop.page.click("#file-list li:has-text('hello.txt') button")
    expect(laptop.page.locator("#file-preview")).to_contain_text("Hello from the asgi-kit demo")
    expect(laptop.page.locator("#stat-misses")).to_have_text("1")
    ARTIFACTS.mkdir(exist_ok=True)
    laptop.page.screenshot(path=str(ARTIFACTS / "sessions-page.png"), full_page=True)

    laptop.page.locator("#sessions-body tr:not(.current)").get_by_role("button").click()
    expect(laptop.rows()).to_have_count(1)
    expect(laptop.page.locator("#notice")).to_contain_text(f"Revoked {phone_label}")

    # The phone is not told; its next action finds the session gone: back to the login form.
    expect(phone.page.locator("#sessions-view")).to_be_visible()
    phone.page.click("#refresh")
    expect(phone.page.locator("#login-view")).to_be_visible()
    expect(phone.page.locator("#sessions-view")).to_be_hidden()
    expect(phone.page.locator("#notice")).to_contain_text("Your session has ended")
    assert phone.page.evaluate(WEB_STORAGE) == ["", "[]", "[]"]

    laptop.page.click("#refresh")  # the laptop's own session is untouched
    expect(laptop.rows()).to_have_count(1)
    expect(laptop.page.locator("#sessions-view")).to_be_visible()


def test_wrong_password_then_log_out_everywhere(
    sync_api: ModuleType, devices: list[Device]
) -> None:
    expect = sync_api.expect
    laptop, phone = devices
    laptop.page.fill("#username", "bob")
    laptop.page.fill("#password", "nope")
    laptop.page.click("#login-submit")
    expect(laptop.page.locator("#login-error")).to_have_text("Wrong username or password.")
    laptop.sign_in("bob")
    expect(laptop.page.locator("#admin-card")).to_be_hidden()  # bob is not an admin
    phone.sign_in("bob")
    phone.page.click("#logout-everywhere")
    expect(phone.page.locator("#login-view")).to_be_visible()
    laptop.page.click("#refresh")
    expect(laptop.page.locator("#login-view")).to_be_visible()


# ---- the token in an HttpOnly cookie ---------------------------------------------------------

COOKIE = "asgi_kit_session"
REFRESH_COOKIE = "asgi_kit_session_refresh"
POLL_MS = 20_000  # the page's refresh interval (static/app.js)
WEB_STORAGE = (
    "[document.cookie, JSON.stringify(Object.entries(sessionStorage)),"
    " JSON.stringify(Object.entries(localStorage))]"
)


def sign_in_for_token(device: Device, username: str) -> str:
    """Sign in through the page; return the bearer token its own login response carried."""
    with device.page.expect_response(lambda r: r.url.endswith("/auth/login")) as login:
        device.sign_in(username)
    token: str = login.value.json()["access_token"]
    return token


def session_cookie(context: Any, name: str = COOKIE) -> dict[str, Any]:
    """The browser's cookie ``name`` (the session's by default), as Playwright reads it."""
    (found,) = [c for c in context.cookies() if c["name"] == name]
    return dict(found)


def test_the_token_is_unreadable_from_the_pages_scripts(device: Device) -> None:
    token = sign_in_for_token(device, "alice")
    readable = device.page.evaluate(WEB_STORAGE)
    assert all(token not in place for place in readable), readable
    assert readable == ["", "[]", "[]"]
    cookie = session_cookie(device.context)
    assert cookie["value"] == token
    assert (cookie["httpOnly"], cookie["sameSite"], cookie["secure"]) == (True, "Lax", False)
    assert (cookie["domain"], cookie["path"]) == ("127.0.0.1", "/")
    # The page's fetches are signed in all the same: the browser sends the cookie.
    me = device.page.evaluate("fetch('/me').then(r => r.json())")
    assert me["username"] == "alice"
    assert device.errors == []


def test_two_tabs_share_the_session_and_a_logout_in_one_signs_the_other_out(
    sync_api: ModuleType, device: Device, demo_url: str
) -> None:
    expect = sync_api.expect
    tab_a = device
    sign_in_for_token(tab_a, "bob")
    tab_b = tab_a.context.new_page()  # a second tab of the same browser
    tab_b.set_default_timeout(TIMEOUT_MS)
    tab_b.clock.install()  # its 20-second refresh, without waiting 20 seconds
    tab_b.goto(demo_url)
    expect(tab_b.locator("#sessions-view")).to_be_visible()  # signed in by the cookie
    expect(tab_b.locator("#sessions-body tr.current")).to_have_count(1)
    assert tab_b.evaluate("document.visibilityState") == "visible"

    tab_a.page.click("#logout")
    expect(tab_a.page.locator("#login-view")).to_be_visible()
    expect(tab_b.locator("#sessions-view")).to_be_visible()  # not told yet
    tab_b.clock.run_for(POLL_MS)  # its next periodic refresh finds the session gone
    expect(tab_b.locator("#login-view")).to_be_visible()
    expect(tab_b.locator("#notice")).to_contain_text("Your session has ended")

    # Signed in again from tab B; "Log out everywhere" in tab A; tab B's next click.
    tab_b.fill("#username", "bob")
    tab_b.fill("#password", "demo")
    tab_b.click("#login-submit")
    expect(tab_b.locator("#sessions-view")).to_be_visible()
    tab_a.page.reload()
    expect(tab_a.page.locator("#sessions-view")).to_be_visible()
    tab_a.page.click("#logout-everywhere")
    expect(tab_a.page.locator("#login-view")).to_be_visible()
    tab_b.click("#refresh")
    expect(tab_b.locator("#login-view")).to_be_visible()
    assert tab_b.evaluate(WEB_STORAGE) == ["", "[]", "[]"]
    assert tab_a.errors == []


# ---- a page of another origin --------------------------------------------------------------

ATTACKER_PAGE = """<!doctype html>
<meta charset="utf-8"><title>Free kittens</title>
<iframe name="f0"></iframe><iframe name="f1"></iframe><iframe name="f2"></iframe>
<iframe name="f3"></iframe>
<form method="POST" target="f0" action="{demo}/auth/sessions/{victim}"></form>
<form method="POST" target="f1" action="{demo}/auth/logout"></form>
<form method="POST" target="f2" action="{demo}/auth/login">
  <input name="username" value="bob"><input name="password" value="demo"></form>
<form method="POST" target="f3" action="{demo}/auth/sessions/refresh"></form>
<script>
  for (const form of document.forms) form.submit();
  const attempts = {attempts};
  Promise.all(attempts.map(([method, path, mode]) =>
    fetch("{demo}" + path, {{method, mode, credentials: "include"}}).then(
      (r) => `${{method}} ${{path}} ${{mode}}: ${{r.type}} ${{r.status}}`,
      (e) => `${{method}} ${{path}} ${{mode}}: ${{e.name}}`)))
    .then((results) => {{ window.results = results; }});
</script>
"""


@contextmanager
def other_origin(page: str) -> Iterator[str]:
    """A second HTTP server on 127.0.0.1 (another port: another origin) serving ``page``."""
    body = page.encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
        assert not thread.is_alive()


def test_a_page_of_another_origin_cannot_revoke_sessions(
    sync_api: ModuleType, device: Device, demo_url: str
) -> None:
    expect = sync_api.expect
    laptop = device
    token = sign_in_for_token(laptop, "alice")
    with httpx2.Client(base_url=demo_url, timeout=10) as api:
        phone = api.post("/auth/login", json={"username": "alice", "password": "demo"})
        victim = phone.json()["session_id"]
        listed = api.get("/auth/sessions", headers={"Authorization": f"Bearer {token}"})
        before = sorted(s["id"] for s in listed.json())
    assert victim in before  # with alice's sessions of the tests before, if any
    refresh_token = session_cookie(laptop.context, REFRESH_COOKIE)["value"]
    attempts = [
        ["DELETE", "/auth/sessions", "no-cors"],
        ["DELETE", f"/auth/sessions/{victim}", "no-cors"],
        ["DELETE", "/auth/sessions", "cors"],
        ["DELETE", f"/admin/sessions/{victim}", "cors"],
        ["POST", "/auth/logout", "no-cors"],
        ["POST", f"/auth/sessions/{victim}", "no-cors"],
        ["POST", REFRESH, "no-cors"],
    ]
    page = ATTACKER_PAGE.format(demo=demo_url, victim=victim, attempts=json.dumps(attempts))
    reached: list[Any] = []  # what the browser did send to the demo, and the answers
    laptop.context.on(
        "response", lambda r: reached.append(r) if r.url.startswith(demo_url) else None
    )
    with other_origin(page) as attacker:
        assert attacker != demo_url
        evil = laptop.context.new_page()  # a tab of the signed-in browser
        evil.set_default_timeout(TIMEOUT_MS)
        evil.goto(attacker)
        evil.wait_for_function("window.results !== undefined")
        deadline = time.monotonic() + TIMEOUT_MS / 1000
        while len(reached) < 7 and time.monotonic() < deadline:  # 4 forms, 3 POSTs
            evil.wait_for_timeout(50)
        results = evil.evaluate("window.results")
        form = [r.request for r in reached if r.request.resource_type == "document"]
        sent = next(r for r in form if r.url.endswith("/auth/logout")).all_headers()
        sent_refresh = next(r for r in form if r.url.endswith(REFRESH)).all_headers()
        evil.close()

    # Fetch: a DELETE is never sent (no-cors forbids it; cors needs a preflight the
    # demo does not grant); the simple POSTs are sent, and refused.
    assert results == [
        "DELETE /auth/sessions no-cors: TypeError",
        f"DELETE /auth/sessions/{victim} no-cors: TypeError",
        "DELETE /auth/sessions cors: TypeError",
        f"DELETE /admin/sessions/{victim} cors: TypeError",
        "POST /auth/logout no-cors: opaque 0",
        f"POST /auth/sessions/{victim} no-cors: opaque 0",
        f"POST {REFRESH} no-cors: opaque 0",
    ]
    answers = sorted((r.request.method, r.url[len(demo_url) :], r.status) for r in reached)
    assert answers == sorted(
        [
            ("POST", f"/auth/sessions/{victim}", 405),  # form
            ("POST", "/auth/logout", 403),  # form
            ("POST", "/auth/login", 403),  # form: no signing alice's browser in as bob
            ("POST", "/auth/logout", 403),  # fetch
            ("POST", f"/auth/sessions/{victim}", 405),  # fetch
            ("POST", REFRESH, 403),  # form: CSRF_FAILED, no new tokens for this browser
            ("POST", REFRESH, 403),  # fetch
        ]
    )
    # Same site (127.0.0.1, another port), so SameSite=Lax let the cookie go along with
    # the form: the Origin check is what refused it.
    assert (sent["origin"], sent["sec-fetch-site"]) == (attacker, "same-site")
    assert f"{COOKIE}={token}" in sent.get("cookie", "")
    assert f"{REFRESH_COOKIE}={refresh_token}" in sent_refresh.get("cookie", "")

    with httpx2.Client(base_url=demo_url, timeout=10) as api:
        listed = api.get("/auth/sessions", headers={"Authorization": f"Bearer {token}"})
    assert sorted(s["id"] for s in listed.json()) == before
    assert session_cookie(laptop.context)["value"] == token  # still alice's session
    assert session_cookie(laptop.context, REFRESH_COOKIE)["value"] == refresh_token  # unrotated
    laptop.page.click("#refresh")
    expect(laptop.rows()).to_have_count(len(before))
    assert laptop.errors == []


# ---- refresh tokens: 4-second access tokens ----------------------------------------------

ACCESS_TOKEN_LIFETIME = 4  # seconds; the page refreshes at 80 % of it
REFRESH_REUSE_INTERVAL = 1
REUSED = (
    "This device was signed out: its sign-in was used from somewhere else "
    "(a copied refresh token). Sign in again."
)


@pytest.fixture(scope="module")
def quick_demo(sync_api: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """The demo with 4-second access tokens and a 1-second reuse interval."""
    settings = {
        "ACCESS_TOKEN_LIFETIME": str(ACCESS_TOKEN_LIFETIME),
        "REFRESH_REUSE_INTERVAL": str(REFRESH_REUSE_INTERVAL),
    }
    with running_demo(tmp_path_factory.mktemp("quick-demo"), settings) as demo:
        yield demo


@pytest.fixture
def quick_device(browser: Any, quick_demo: Demo) -> Iterator[Device]:
    """One signed-out browser on the quick demo, closed afterwards."""
    one = Device(browser, quick_demo.url)
    try:
        yield one
        assert one.errors == []
    finally:
        one.close()


def responses_to(device: Device, base_url: str) -> list[tuple[str, int]]:
    """A list that fills with (path, status) of each answer the demo gives the device."""
    seen: list[tuple[str, int]] = []
    device.context.on(
        "response",
        lambda r: (
            seen.append((r.url[len(base_url) :], r.status)) if r.url.startswith(base_url) else None
        ),
    )
    return seen


def test_the_page_refreshes_its_access_token_quietly(
    sync_api: ModuleType, quick_device: Device, quick_demo: Demo
) -> None:
    expect = sync_api.expect
    with quick_device.page.expect_response(lambda r: r.url.endswith("/auth/login")) as login:
        quick_device.sign_in("alice")
    assert login.value.json()["expires_in"] == ACCESS_TOKEN_LIFETIME
    first = session_cookie(quick_device.context)["value"]
    signed_in = time.monotonic()
    seen = responses_to(quick_device, quick_demo.url)

    # Nobody touches the page for more than two lifetimes of its access token...
    quick_device.page.wait_for_timeout(2.5 * ACCESS_TOKEN_LIFETIME * 1000)
    # ...until just after one of its refreshes (so that none is under way at the click).
    with quick_device.page.expect_response(lambda r: r.url.endswith(REFRESH)):
        pass
    assert time.monotonic() - signed_in > 2.5 * ACCESS_TOKEN_LIFETIME
    refreshes = [status for path, status in seen if path == REFRESH]
    assert len(refreshes) >= 3, seen
    assert set(refreshes) == {200}
    assert session_cookie(quick_device.context)["value"] != first

    quick_device.page.click("#refresh")  # still signed in: the list loads
    expect(quick_device.rows()).to_have_count(1)
    expect(quick_device.page.locator("#sessions-body tr.current")).to_have_count(1)
    expect(quick_device.page.locator("#login-view")).to_be_hidden()
    expect(quick_device.page.locator("#notice")).to_be_hidden()
    # Quietly: each refresh came before the access token expired, so nothing got a 401.
    assert [answer for answer in seen if answer[1] == 401] == [], seen
    with httpx2.Client(base_url=quick_demo.url, timeout=10) as api:
        assert api.get("/me", headers={"Authorization": f"Bearer {first}"}).status_code == 401


def test_an_expired_access_token_is_refreshed_and_the_request_tried_again(
    sync_api: ModuleType, quick_device: Device, quick_demo: Demo
) -> None:
    """A page whose timer did not fire in time (a laptop asleep): its next request does it."""
    expect = sync_api.expect
    page = quick_device.page
    page.clock.install()  # the page's timers, to hold back its quiet refresh
    page.reload()
    quick_device.sign_in("bob")
    page.clock.pause_at(page.evaluate("Date.now()") + 100)
    time.sleep(ACCESS_TOKEN_LIFETIME + 0.5)  # real time: the server's clock
    seen = responses_to(quick_device, quick_demo.url)
    listed = f"{quick_demo.url}/auth/sessions"
    with page.expect_response(lambda r: r.url == listed and r.status == 200):
        page.click("#refresh")
    expect(quick_device.rows()).to_have_count(1)
    expect(page.locator("#login-view")).to_be_hidden()
    calls = [answer for answer in seen if answer[0] in ("/auth/sessions", REFRESH)]
    assert calls == [("/auth/sessions", 401), (REFRESH, 200), ("/auth/sessions", 200)]


def test_a_copied_refresh_token_used_first_elsewhere_signs_both_out(
    sync_api: ModuleType, quick_device: Device, quick_demo: Demo
) -> None:
    expect = sync_api.expect
    page = quick_device.page
    quick_device.sign_in("bob")
    # Just after one of the page's quiet refreshes, so its next is a whole 3.2 s away.
    with page.expect_response(lambda r: r.url.endswith(REFRESH)) as quiet:
        pass
    assert quiet.value.status == 200

    # A thief copies the refresh cookie (malware reading the browser's cookie jar)...
    stolen = session_cookie(quick_device.context, REFRESH_COOKIE)
    assert (stolen["httpOnly"], stolen["path"]) == (True, REFRESH)
    with httpx2.Client(base_url=quick_demo.url, timeout=10) as thief:
        # ...and uses it first, from elsewhere: it works, and rotates the browser's copy out.
        taken = thief.post(REFRESH, json={"refresh_token": stolen["value"]})
        assert taken.status_code == 200, taken.text
        used_at = time.monotonic()
        thief_auth = {"Authorization": f"Bearer {taken.json()['access_token']}"}
        assert thief.get("/me", headers=thief_auth).json()["username"] == "bob"

        # The page's next quiet refresh presents its copy, past the reuse interval.
        with page.expect_response(lambda r: r.url.endswith(REFRESH)) as reused:
            pass
        assert time.monotonic() - used_at > REFRESH_REUSE_INTERVAL
        assert (reused.value.status, reused.value.json()) == (
            400,
            {"error": "invalid_grant", "detail": "REFRESH_TOKEN_REUSED"},
        )
        # The server ended the session: the thief's new tokens are worth nothing now.
        assert thief.get("/me", headers=thief_auth).status_code == 401
        again = thief.post(REFRESH, json={"refresh_token": taken.json()["refresh_token"]})
        assert again.json()["detail"] == "REFRESH_TOKEN_INVALID"

    expect(page.locator("#login-view")).to_be_visible()
    expect(page.locator("#sessions-view")).to_be_hidden()
    expect(page.locator("#notice")).to_have_text(REUSED)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "token-reused.png"), full_page=True)
    assert "reason=token_reused" in quick_demo.log.read_text()  # the audit line, a WARNING


# ---- log out everywhere: the password again after 2 seconds ------------------------------

REVOKE_ALL_MAX_AGE = 2  # seconds after a sign-in that "Log out everywhere" needs no password


@pytest.fixture(scope="module")
def step_up_demo(sync_api: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """The demo asking for the password again to log out everywhere after 2 seconds."""
    settings = {"REVOKE_ALL_MAX_AGE": str(REVOKE_ALL_MAX_AGE)}
    with running_demo(tmp_path_factory.mktemp("step-up-demo"), settings) as demo:
        yield demo


def test_log_out_everywhere_asks_for_the_password_again(
    sync_api: ModuleType, browser: Any, step_up_demo: Demo
) -> None:
    expect = sync_api.expect
    laptop = Device(browser, step_up_demo.url, viewport={"width": 1280, "height": 900})
    phone = Device(browser, step_up_demo.url, user_agent=IPHONE)
    try:
        laptop.sign_in("bob")
        phone.sign_in("bob")
        laptop.page.click("#refresh")
        expect(laptop.rows()).to_have_count(2)
        # The page names each device as the API does, and says what kind it is.
        sessions = laptop.page.evaluate(LIST_SESSIONS)
        (mine,) = [s["device"] for s in sessions if s["current"]]
        current = laptop.page.locator("#sessions-body tr.current")
        expect(current.locator(".device-name")).to_contain_text(mine["label"])
        expect(current.locator(".device-kind")).to_have_text(KIND_WORDS[mine["kind"]])
        other = laptop.page.locator("#sessions-body tr:not(.current)")
        expect(other.locator(".device-name")).to_have_text("Safari on iPhone")
        expect(other.locator(".device-kind")).to_have_text("Phone")

        answers: list[tuple[str, str, int]] = []  # what the demo answers the laptop from now
        laptop.context.on(
            "response",
            lambda r: (
                answers.append((r.request.method, r.url[len(step_up_demo.url) :], r.status))
                if r.url.startswith(step_up_demo.url)
                else None
            ),
        )
        time.sleep(REVOKE_ALL_MAX_AGE + 0.5)  # the sign-in is no longer recent
        page, dialog = laptop.page, laptop.page.get_by_role("dialog", name="Confirm it is you")

        # Log out other devices asks for the password too; Escape changes nothing.
        page.click("#logout-others")
        expect(dialog).to_be_visible()
        expect(dialog).to_contain_text("signs out every device but this one")
        expect(page.locator("#reauth-password")).to_be_focused()
        page.keyboard.press("Escape")
        expect(dialog).to_be_hidden()
        expect(page.locator("#logout-others")).to_be_enabled()
        expect(laptop.rows()).to_have_count(2)

        page.click("#logout-everywhere")
        expect(dialog).to_be_visible()
        expect(dialog).to_contain_text("signs out every device, this one included")
        expect(page.locator("#reauth-submit")).to_have_text("Log out everywhere")
        expect(dialog).to_contain_text(f"more than {REVOKE_ALL_MAX_AGE} s ago")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "reauthenticate-prompt.png"))
        page.fill("#reauth-password", "wrong")
        page.click("#reauth-submit")
        expect(page.locator("#reauth-error")).to_have_text("Wrong password. Try again.")
        expect(dialog).to_be_visible()
        expect(page.locator("#reauth-password")).to_have_value("")
        phone.page.click("#refresh")  # a wrong password ends nothing
        expect(phone.rows()).to_have_count(2)

        page.fill("#reauth-password", "demo")
        page.press("#reauth-password", "Enter")
        expect(page.locator("#login-view")).to_be_visible()
        expect(dialog).to_be_hidden()
        expect(page.locator("#notice")).to_have_text(
            "You logged out everywhere, this device included."
        )
        phone.page.click("#refresh")  # the other browser's session ended too
        expect(phone.page.locator("#login-view")).to_be_visible()
        expect(phone.page.locator("#notice")).to_contain_text("Your session has ended")

        changes = [a for a in answers if a[0] in ("POST", "DELETE")]
        assert changes == [
            ("DELETE", "/auth/sessions?keep_current=true", 401),  # then Escape
            ("DELETE", "/auth/sessions", 401),
            ("POST", REAUTHENTICATE, 400),
            ("POST", REAUTHENTICATE, 204),
            ("DELETE", "/auth/sessions", 204),  # tried again once
        ]  # and no refresh: a 401 asking for the password is not an expired token
        assert laptop.errors == []
        assert phone.errors == []
    finally:
        laptop.close()
        phone.close()
