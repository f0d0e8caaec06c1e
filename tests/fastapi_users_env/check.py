"""Drive app.py through FastAPI Users' own routes; exit non-zero with a message on failure.

Run with the interpreter of the environment tests/test_fastapi_users_wheel.py makes, where
FastAPI Users 15 comes from PyPI and asgi-kit from its built wheel (not editable):

    .venv-fastapi-users/bin/python tests/fastapi_users_env/check.py

Each step prints one ``ok`` line; the first failure prints ``FAILED: ...`` and exits 1.
``CHECK_APP`` names the app module: ``app`` (UUID ids, the default: the docs' app,
examples/fastapi_users_app.py, copied as app.py) or ``app_int`` (integer ids).
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.metadata
import inspect
import json
import logging
import os
import sys
import sysconfig
import tempfile
import traceback
from pathlib import Path
from typing import Any

CLIENT_IP = "203.0.113.7"
APP_MODULE = os.environ.get("CHECK_APP", "app")
PASSWORD = "correct horse battery"
HOST = "https://testserver"  # https: CookieTransport's cookie is Secure


class CheckFailed(Exception):
    """One expectation of the check did not hold."""


def expect(condition: object, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


def ok(message: str) -> None:
    print(f"ok    {message}", flush=True)


def under(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


class AuditLog(logging.Handler):
    """Keeps every record of the session audit logger, to scan them for tokens."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def check_installation() -> None:
    """FastAPI Users and our extension import side by side, both from site-packages."""
    import fastapi_users.authentication
    from fastapi_users.authentication import Strategy

    import asgi_kit
    import fastapi_users
    import fastapi_users.extensions.session_manager as session_manager

    purelib = Path(sysconfig.get_paths()["purelib"]).resolve()
    fu_package = Path(str(fastapi_users.__file__)).resolve().parent
    expect(
        fu_package == purelib / "fastapi_users",
        f"fastapi_users is {fastapi_users.__file__}, not FastAPI Users' in {purelib}",
    )
    version = importlib.metadata.version("fastapi-users")
    expect(version.startswith("15."), f"FastAPI Users {version} is installed, not 15.x")
    ours = Path(str(session_manager.__file__)).resolve()
    expect(
        ours.parent == fu_package / "extensions",
        f"session_manager is {ours}, not in FastAPI Users' package dir {fu_package}",
    )
    expect(
        under(Path(str(asgi_kit.__file__)).resolve(), purelib),
        f"asgi_kit is {asgi_kit.__file__}, not in {purelib}",
    )
    direct_url = importlib.metadata.distribution("asgi-kit").read_text("direct_url.json")
    origin = json.loads(direct_url or "{}")
    expect(
        not origin.get("dir_info", {}).get("editable") and origin.get("url", "").endswith(".whl"),
        f"asgi-kit is not installed from a wheel: direct_url.json = {direct_url}",
    )
    repo = os.environ.get("ASGI_KIT_REPO")
    if repo:
        root, env = Path(repo).resolve(), Path(sys.prefix).resolve()  # env may be in root
        files = {name: getattr(module, "__file__", None) for name, module in sys.modules.items()}
        from_repo = sorted(
            name
            for name, file in files.items()
            if file and under(Path(file).resolve(), root) and not under(Path(file).resolve(), env)
        )
        expect(not from_repo, f"modules imported from the repository {root}: {from_repo}")
    # The Strategy protocol, structurally: same async methods, same parameter names.
    strategy: Strategy[Any, Any] = session_manager.SessionStrategy(session_manager.SessionManager())
    for name in ("read_token", "write_token", "destroy_token"):
        theirs = list(inspect.signature(getattr(Strategy, name)).parameters)[1:]
        mine = list(inspect.signature(getattr(strategy, name)).parameters)
        expect(mine == theirs, f"{name}{mine} does not match FastAPI Users' {name}{theirs}")
        expect(inspect.iscoroutinefunction(getattr(strategy, name)), f"{name} is not async")
    ok(
        f"FastAPI Users {version} and asgi-kit "
        f"{importlib.metadata.version('asgi-kit')} import side by side from {purelib}"
    )


def mailbox(user_manager: Any) -> dict[str, str]:
    """Catch the password-reset e-mails the app would send: {address: reset token}."""
    sent: dict[str, str] = {}

    async def send(self: Any, user: Any, token: str, request: Any = None) -> None:
        sent[user.email] = token

    user_manager.on_after_forgot_password = send
    return sent


async def create_user(email: str, password: str, *, is_superuser: bool = False) -> None:
    """Create a user outside any request (e.g. the first superuser), as FastAPI Users does."""
    from fastapi_users.db import SQLAlchemyUserDatabase

    target = importlib.import_module(APP_MODULE)
    async with target.async_session_maker() as session:
        user_manager = target.UserManager(SQLAlchemyUserDatabase(session, target.User))
        user_create = target.UserCreate(email=email, password=password, is_superuser=is_superuser)
        await user_manager.create(user_create)


async def scenario() -> None:
    """Every step of the integration, through FastAPI Users' routes and /auth/sessions."""
    import httpx2

    target = importlib.import_module(APP_MODULE)
    UserManager, app, manager = target.UserManager, target.app, target.manager

    from fastapi_users.extensions.session_manager import LimitPolicy

    outbox = mailbox(UserManager)
    audit = AuditLog()
    logging.getLogger("asgi_kit").addHandler(audit)
    logging.getLogger("asgi_kit").setLevel(logging.INFO)
    tokens: list[str] = []

    transport = httpx2.ASGITransport(app=app, client=(CLIENT_IP, 40000))
    async with (
        app.router.lifespan_context(app),
        httpx2.AsyncClient(transport=transport, base_url=HOST) as http,
    ):

        def auth(token: str) -> dict[str, str]:
            return {"Authorization": f"Bearer {token}"}

        async def status(method: str, url: str, expected: int, **kwargs: Any) -> Any:
            response = await http.request(method, url, **kwargs)
            expect(
                response.status_code == expected,
                f"{method} {url}: expected {expected}, got {response.status_code} "
                f"{response.text[:300]}",
            )
            return response.json() if response.content else None

        async def login(email: str, password: str, agent: str, expected: int = 200) -> str:
            body = await status(
                "POST",
                "/auth/login",
                expected,
                data={"username": email, "password": password},
                headers={"User-Agent": agent},
            )
            if expected != 200:
                return ""
            expect(body["token_type"] == "bearer", f"login answered {body}")
            tokens.append(body["access_token"])
            return str(body["access_token"])

        async def sessions(token: str) -> list[dict[str, Any]]:
            listed = await status("GET", "/auth/sessions", 200, headers=auth(token))
            return list(listed)

        async def refused(token: str, what: str) -> None:
            try:
                await status("GET", "/auth/sessions", 401, headers=auth(token))
                await status("GET", "/users/me", 401, headers=auth(token))
            except CheckFailed as exc:
                raise CheckFailed(f"expected: {what}; but {exc}") from None
            ok(f"{what}: its token is refused by /auth/sessions and FastAPI Users' /users/me")

        # /docs: one bearer scheme, so FastAPI Users' password form authorises every route.
        schema = app.openapi()
        schemes = schema["components"]["securitySchemes"]
        bearers = [name for name, scheme in schemes.items() if scheme["type"] != "apiKey"]
        expect(bearers == ["OAuth2PasswordBearer"], f"security schemes: {schemes}")
        for path in ("/auth/sessions", "/users/me"):
            used = schema["paths"][path]["get"]["security"]
            expect({"OAuth2PasswordBearer": []} in used, f"{path} security: {used}")
        ok("OpenAPI: one OAuth2 scheme serves FastAPI Users' routes and /auth/sessions")

        # Register and log in through FastAPI Users' own routes.
        email = "alice@example.com"
        user = await status(
            "POST", "/auth/register", 201, json={"email": email, "password": PASSWORD}
        )
        user_id = str(user["id"])  # a session's user id is text: "1" for the int id 1
        ok(f"registered through FastAPI Users' /auth/register ({APP_MODULE}: id {user_id})")

        phone = await login(email, PASSWORD, "check-agent/1.0 (phone)")
        listed = await sessions(phone)
        expect(len(listed) == 1, f"one login, {len(listed)} sessions listed: {listed}")
        expect(listed[0]["user_agent"] == "check-agent/1.0 (phone)", f"user agent: {listed}")
        expect(listed[0]["ip_address"] == CLIENT_IP, f"ip address: {listed}")
        expect(listed[0]["current"] is True and listed[0]["user_id"] == user_id, f"{listed}")
        me = await status("GET", "/users/me", 200, headers=auth(phone))
        expect(me["email"] == email, f"/users/me answered {me}")
        mine = await status("GET", "/me/email", 200, headers=auth(phone))
        expect(mine == {"email": email}, f"/me/email answered {mine}")
        ok("FastAPI Users' /auth/login made a session, listed with its user agent and IP")

        # One store look-up per request: the middleware resolves, current_user reuses it.
        store = manager.session_db
        counted = store.get_by_token_digest
        lookups: list[str] = []

        async def counting(digest: str) -> Any:
            lookups.append(digest)
            return await counted(digest)

        store.get_by_token_digest = counting  # counts the real store's calls
        await status("GET", "/users/me", 200, headers=auth(phone))
        expect(len(lookups) == 1, f"GET /users/me looked the token up {len(lookups)} times")
        await status("GET", "/auth/sessions", 200, headers=auth(phone))
        expect(len(lookups) == 2, f"GET /auth/sessions: {len(lookups) - 1} look-ups")
        ok("one session look-up per request for FastAPI Users' current_user and /auth/sessions")

        laptop = await login(email, PASSWORD, "check-agent/1.0 (laptop)")
        agents = sorted(s["user_agent"] for s in await sessions(phone))
        expect(agents == ["check-agent/1.0 (laptop)", "check-agent/1.0 (phone)"], f"{agents}")
        ok("a second login is a second session")

        before = len(lookups)
        await status("POST", "/auth/logout", 204, headers=auth(laptop))
        expect(len(lookups) == before + 1, f"logout: {len(lookups) - before} look-ups")
        store.get_by_token_digest = counted
        await refused(laptop, "FastAPI Users' /auth/logout ended its session")
        left = await sessions(phone)
        expect([s["user_agent"] for s in left] == ["check-agent/1.0 (phone)"], f"{left}")
        ok("the other session is untouched by the logout")

        # Browsers: FastAPI Users' CookieTransport with the same strategy and sessions.
        await check_cookie_transport(http, auth, status, phone)
        await check_refresh_tokens(http, auth, status, manager)
        await check_step_up(http, auth, status, manager)

        # A burst: 50 simultaneous logins (10 users x 5), each a 200 within a few seconds.
        burst_users = [f"burst{i}@example.com" for i in range(10)]
        for address in burst_users:
            await status(
                "POST", "/auth/register", 201, json={"email": address, "password": PASSWORD}
            )
        started = asyncio.get_running_loop().time()
        answers = await asyncio.gather(
            *(
                http.post("/auth/login", data={"username": address, "password": PASSWORD})
                for address in burst_users
                for _ in range(5)
            )
        )
        took = asyncio.get_running_loop().time() - started
        codes = sorted({r.status_code for r in answers})
        expect(codes == [200], f"a burst of 50 logins answered {codes}")
        for address, answer in zip(burst_users, answers[::5], strict=True):
            listed = await sessions(answer.json()["access_token"])
            expect(len(listed) == 5, f"{address}: {len(listed)} sessions after 5 logins")
        ok(f"50 simultaneous logins: all 200, all stored, in {took:.1f} s")

        # Tokens only ever come in the Authorization header.
        await status("GET", f"/auth/sessions?access_token={phone}", 401)
        await status("GET", f"/users/me?access_token={phone}", 401)
        await status("GET", "/users/me", 401, headers={"Authorization": "Bearer not a token"})
        await status("GET", "/users/me", 401, headers={"Authorization": "Bearer " + "x" * 5000})
        ok("a token in the query string, or a malformed one, is refused")

        # Password change (PATCH /users/me): every other session ends, the current one stays.
        tablet = await login(email, PASSWORD, "check-agent/1.0 (tablet)")
        new_password = PASSWORD + " 2"
        await status(
            "PATCH", "/users/me", 200, headers=auth(phone), json={"password": new_password}
        )
        await refused(tablet, "a password change ended the other session")
        left = await sessions(phone)
        expect([s["user_agent"] for s in left] == ["check-agent/1.0 (phone)"], f"{left}")
        ok("the session that changed the password stays")
        await login(email, PASSWORD, "check-agent/1.0 (old password)", expected=400)
        laptop = await login(email, new_password, "check-agent/1.0 (laptop)")
        await status("PATCH", "/users/me", 200, headers=auth(laptop), json={"is_verified": True})
        expect(len(await sessions(phone)) == 2, "an update without a password ended sessions")
        ok("an update without a new password ends no session")

        # Forgot / reset password: every session ends.
        await status("POST", "/auth/forgot-password", 202, json={"email": email})
        reset_token = outbox.pop(email)
        new_password = PASSWORD + " 3"
        await status(
            "POST",
            "/auth/reset-password",
            200,
            json={"token": reset_token, "password": new_password},
        )
        await refused(phone, "a password reset ended the first session")
        await refused(laptop, "a password reset ended the second session")
        phone = await login(email, new_password, "check-agent/1.0 (phone)")

        # The cap on concurrent sessions, through FastAPI Users' login route.
        manager.max_sessions_per_user = 2  # a test-only tweak; normally set at construction
        oldest = phone
        laptop = await login(email, new_password, "check-agent/1.0 (laptop)")
        tablet = await login(email, new_password, "check-agent/1.0 (tablet)")
        await refused(oldest, "the cap evicted the least recently used session")
        manager.limit_policy = LimitPolicy.REFUSE
        body = await status(
            "POST",
            "/auth/login",
            409,
            data={"username": email, "password": new_password},
        )
        expect(body == {"detail": "SESSION_LIMIT_REACHED"}, f"refused login answered {body}")
        expect(len(await sessions(laptop)) == 2, "a refused login changed the sessions")
        ok("with limit_policy='refuse' a login over the cap answers 409 SESSION_LIMIT_REACHED")
        manager.max_sessions_per_user = 10
        manager.limit_policy = LimitPolicy.EVICT_LEAST_RECENTLY_USED

        # A superuser: sees Alice's sessions, disables her account, deletes her.
        await create_user("root@example.com", PASSWORD, is_superuser=True)
        root = await login("root@example.com", PASSWORD, "check-agent/1.0 (admin console)")
        theirs = await status("GET", f"/admin/sessions/users/{user_id}", 200, headers=auth(root))
        expect(len(theirs) == 2, f"the admin sees {theirs}")
        await status("GET", f"/admin/sessions/users/{user_id}", 403, headers=auth(laptop))
        ok("a superuser lists a user's sessions; the user may not use the admin routes")

        await status(
            "PATCH", f"/users/{user_id}", 200, headers=auth(root), json={"is_active": False}
        )
        await refused(laptop, "deactivating the account ended a session")
        await refused(tablet, "deactivating the account ended the other session")
        await login(email, new_password, "check-agent/1.0 (phone)", expected=400)
        expect(len(await sessions(root)) == 1, "the superuser's own session ended")
        await status(
            "PATCH", f"/users/{user_id}", 200, headers=auth(root), json={"is_active": True}
        )
        phone = await login(email, new_password, "check-agent/1.0 (phone)")
        laptop = await login(email, new_password, "check-agent/1.0 (laptop)")
        await status(
            "PATCH", f"/users/{user_id}", 200, headers=auth(root), json={"password": PASSWORD}
        )
        await refused(phone, "a superuser's password change ended every session of the user")
        await refused(laptop, "... including the last one")

        phone = await login(email, PASSWORD, "check-agent/1.0 (phone)")
        await status("DELETE", f"/users/{user_id}", 204, headers=auth(root))
        await refused(phone, "deleting the user ended their session")
        gone = await status("GET", f"/admin/sessions/users/{user_id}", 200, headers=auth(root))
        expect(gone == [], f"a deleted user still has sessions: {gone}")
        expect(len(await sessions(root)) == 1, "the superuser's own session ended")
        ok("the superuser's session outlived every event of the other account")

    leaked = [line for line in audit.lines if any(t in line for t in tokens)]
    expect(audit.lines, "no audit log line was written")
    expect(not leaked, f"audit log lines hold a token: {leaked}")
    ends = [line for line in audit.lines if "session ended" in line]
    expect(all(" id=" in line and "reason=" in line for line in ends), f"{ends}")
    ok(f"{len(audit.lines)} audit log lines identify sessions by id, never by token")


async def check_cookie_transport(http: Any, auth: Any, status: Any, phone: str) -> None:
    """Login sets the HttpOnly cookie; the routes accept it; CSRF; logout ends that session."""
    email, same_site, evil = "alice@example.com", {"Origin": HOST}, {"Origin": "https://evil.test"}
    login = await http.post(
        "/auth/cookie/login",
        data={"username": email, "password": PASSWORD},
        headers={"User-Agent": "check-agent/1.0 (browser)"},
    )
    expect(login.status_code == 204, f"cookie login answered {login.status_code} {login.text}")
    set_cookie = login.headers["set-cookie"].lower()
    for attribute in ("httponly", "samesite=lax", "secure", "path=/"):
        expect(attribute in set_cookie, f"the login cookie lacks {attribute}: {set_cookie}")
    me = await status("GET", "/users/me", 200)  # the cookie alone, no Authorization header
    listed = await status("GET", "/auth/sessions", 200)
    current = [s for s in listed if s["current"]]
    expect(len(current) == 1, f"cookie listing marks {current} as current")
    expect(current[0]["user_agent"] == "check-agent/1.0 (browser)", f"{current}")
    ok(f"CookieTransport: login set an HttpOnly Secure SameSite=Lax cookie; {me['email']} is in")
    others = [s["id"] for s in listed if not s["current"]]
    await status("DELETE", f"/auth/sessions/{others[0]}", 403, headers=evil)
    await status("POST", "/auth/cookie/logout", 403, headers=evil)
    await status("DELETE", f"/auth/sessions/{others[0]}", 403)  # no Origin at all
    expect(len(await status("GET", "/auth/sessions", 200)) == len(listed), "a CSRF try ended one")
    ok("cookie requests from another origin (or none) are refused with 403, ending nothing")
    logout = await http.post("/auth/cookie/logout", headers=same_site)
    expect(logout.status_code == 204, f"cookie logout answered {logout.status_code}")
    expect("max-age=0" in logout.headers["set-cookie"].lower(), "logout kept the cookie")
    http.cookies.clear()
    await status(
        "GET", "/users/me", 401, headers={"Cookie": f"fastapiusersauth={current[0]['id']}"}
    )
    left = await status("GET", "/auth/sessions", 200, headers=auth(phone))
    expect(len(left) == len(listed) - 1, f"cookie logout ended {len(listed) - len(left)}")
    ok("cookie logout cleared the cookie and ended only that session")


async def check_refresh_tokens(http: Any, auth: Any, status: Any, manager: Any) -> None:
    """Logins through both transports hand out refresh tokens; rotation; reuse; logout."""
    from datetime import timedelta

    email, same_site = "alice@example.com", {"Origin": HOST}
    form = {"username": email, "password": PASSWORD}
    login = await http.post("/auth/login", data=form)
    body = login.json()
    expect(set(body) == {"access_token", "token_type", "expires_in", "refresh_token"}, f"{body}")
    expect(890 <= body["expires_in"] <= 900, f"expires_in {body['expires_in']}")
    expect(login.headers.get("cache-control") == "no-store", f"{login.headers}")
    ok("BearerTransport login answers access_token, expires_in and refresh_token (no-store)")

    grant = {"grant_type": "refresh_token", "refresh_token": body["refresh_token"]}
    renewed = await status("POST", "/auth/sessions/refresh", 200, data=grant)
    await status("GET", "/users/me", 401, headers=auth(body["access_token"]))
    await status("GET", "/users/me", 200, headers=auth(renewed["access_token"]))
    ok("POST /auth/sessions/refresh rotates both tokens; FastAPI Users accepts only the new one")

    manager.refresher.reuse_interval = timedelta(0)  # no waiting 10 s for the interval
    try:
        reused = await status("POST", "/auth/sessions/refresh", 400, data=grant)
    finally:
        manager.refresher.reuse_interval = timedelta(seconds=10)
    expect(reused == {"error": "invalid_grant", "detail": "REFRESH_TOKEN_REUSED"}, f"{reused}")
    await status("GET", "/users/me", 401, headers=auth(renewed["access_token"]))
    ok("a rotated-out refresh token used again ends the session: its new tokens die too")

    http.cookies.clear()
    cookie_login = await http.post("/auth/cookie/login", data=form)
    expect(cookie_login.status_code == 204, f"cookie login: {cookie_login.status_code}")
    refresh_cookie = [
        v
        for k, v in cookie_login.headers.multi_items()
        if k == "set-cookie" and v.startswith("fastapiusersauth_refresh=")
    ]
    expect(len(refresh_cookie) == 1, f"{cookie_login.headers}")
    attributes = refresh_cookie[0].lower()
    for attribute in ("httponly", "path=/auth/sessions/refresh", "samesite=lax"):
        expect(attribute in attributes, f"the refresh cookie lacks {attribute}: {attributes}")
    before = http.cookies["fastapiusersauth"]
    answer = await status("POST", "/auth/sessions/refresh", 200, headers=same_site)
    expect(set(answer) == {"token_type", "expires_in"}, f"a cookie refresh showed {answer}")
    expect(http.cookies["fastapiusersauth"] != before, "the access cookie was not renewed")
    await status("GET", "/users/me", 200)
    await status("POST", "/auth/sessions/refresh", 403, headers={"Origin": "https://evil.test"})
    ok("CookieTransport login sets the refresh cookie for the refresh path; refresh renews both")

    logout = await http.post("/auth/cookie/logout", headers=same_site)
    cleared = [v.lower() for k, v in logout.headers.multi_items() if k == "set-cookie"]
    expect(
        any(c.startswith("fastapiusersauth_refresh=") and "max-age=0" in c for c in cleared),
        f"logout kept the refresh cookie: {cleared}",
    )
    http.cookies.clear()
    bearer = (await http.post("/auth/login", data=form)).json()
    await status("POST", "/auth/logout", 204, headers=auth(bearer["access_token"]))
    ended = await status(
        "POST", "/auth/sessions/refresh", 400, json={"refresh_token": bearer["refresh_token"]}
    )
    expect(ended["detail"] == "REFRESH_TOKEN_INVALID", f"after logout: {ended}")
    ok("logout (either transport) ends the session: its refresh token is refused")


async def check_step_up(http: Any, auth: Any, status: Any, manager: Any) -> None:
    """Account changes and "log out everywhere" ask for a recent sign-in (RFC 9470)."""
    from datetime import datetime, timedelta, timezone

    from asgi_kit import Session, generate_token

    http.cookies.clear()
    email = "stepup@example.com"
    await status("POST", "/auth/register", 201, json={"email": email, "password": PASSWORD})
    form = {"username": email, "password": PASSWORD}
    firefox = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"
    agent = {"User-Agent": firefox}
    fresh = (await http.post("/auth/login", data=form, headers=agent)).json()["access_token"]
    me = await status("GET", "/users/me", 200, headers=auth(fresh))
    await status("PATCH", "/users/me", 200, headers=auth(fresh), json={"is_verified": False})
    listed = await status("GET", "/auth/sessions", 200, headers=auth(fresh))
    device = listed[0]["device"]
    expect(device["label"] == "Firefox on Windows", f"the login's device: {device}")
    ok("a fresh login may change its account; its session lists device 'Firefox on Windows'")

    # A session whose user signed in an hour ago (written to the app's own store).
    hour_ago = datetime.now(timezone.utc) - timedelta(hours=1)
    token = generate_token()
    old = Session(user_id=me["id"], token=token, created_at=hour_ago)
    await manager.session_db.create(old)
    await status("GET", "/users/me", 200, headers=auth(token))
    response = await http.patch("/users/me", headers=auth(token), json={"password": "new pass 1"})
    expect(response.status_code == 401, f"a stale PATCH: {response.status_code} {response.text}")
    expect(response.json() == {"detail": "REAUTHENTICATION_REQUIRED"}, response.text)
    challenge = response.headers["www-authenticate"]
    expected = 'Bearer error="insufficient_user_authentication", error_description='
    expect(challenge.startswith(expected) and challenge.endswith('max_age="600"'), challenge)
    await status("DELETE", "/auth/sessions", 401, headers=auth(token))
    ok("an hour-old sign-in may read its account but not change it: 401 with RFC 9470's challenge")

    reauth = "/auth/sessions/reauthenticate"
    await status("POST", reauth, 400, headers=auth(token), json={"password": "wrong"})
    await status("POST", reauth, 204, headers=auth(token), json={"password": PASSWORD})
    await status("PATCH", "/users/me", 200, headers=auth(token), json={"is_verified": False})
    ok("POST /auth/sessions/reauthenticate checks the password with the user manager's own")
    ok("authenticate (400 when wrong), then the same session may change its account")

    await status("DELETE", "/auth/sessions", 204, headers=auth(token))
    await status("GET", "/users/me", 401, headers=auth(fresh))
    ok("and log out everywhere")


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="fastapi-users-check-") as tmp:
        os.environ.setdefault("DATABASE_URL", f"sqlite+aiosqlite:///{tmp}/app.sqlite3")
        try:
            check_installation()
            asyncio.run(scenario())
        except CheckFailed as exc:
            print(f"FAILED: {exc}", file=sys.stderr, flush=True)
            return 1
        except Exception:
            print("FAILED with an unexpected error:", file=sys.stderr)
            traceback.print_exc()
            return 1
    print("all FastAPI Users integration checks passed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
