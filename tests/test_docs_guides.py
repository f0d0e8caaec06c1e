"""The examples of the how-to guides on browser apps, refresh tokens, step-up and device names.

Each app under ``docs_src/`` is imported afresh (its store is module state) and driven over
HTTP; the ``.http`` and ``.json`` files the pages show are compared with real answers.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
import json
import logging
import uuid
from datetime import timedelta
from http.cookies import SimpleCookie
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx2
import pytest
from fastapi import FastAPI, Request, Response
from fastapi.testclient import TestClient

from asgi_kit import (
    BearerAuthMiddleware,
    ConfigurationError,
    InMemorySessionDatabase,
    RecentAuthentication,
    Session,
    SessionCookie,
    describe_device,
    generate_token,
    utcnow,
)
from fastapi_users.extensions.session_manager import SessionManager

ROOT = Path(__file__).resolve().parents[1]
SITE = "https://testserver"
PASSWORD = "correct horse battery staple"
SECRET = "a-docs-secret-of-at-least-32-bytes!!"
OLD_SECRET = "the-previous-secret-of-32-bytes-or-more"
FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"


def fresh(module: str) -> ModuleType:
    """The docs module ``module``, imported afresh: a new store, no sessions."""
    return importlib.reload(importlib.import_module(module))


@dataclasses.dataclass
class HttpExample:
    """An ``.http`` file of the docs: a request or a response, as the page shows it."""

    start: str
    headers: dict[str, str]
    body: str

    @classmethod
    def read(cls, path: str) -> HttpExample:
        head, _, body = (ROOT / path).read_text(encoding="utf-8").partition("\n\n")
        start, *lines = head.splitlines()
        headers = dict(line.split(": ", 1) for line in lines)
        return cls(start, headers, body.strip())

    def send(self, client: TestClient, **replace: str) -> httpx2.Response:
        """Send this request, with the placeholders of ``replace`` swapped for real values."""
        method, path, _ = self.start.split(" ")
        body = self.body
        for placeholder, value in replace.items():
            body = body.replace(placeholder, value)
        return client.request(method, path, headers=self.headers, content=body.encode())

    def status(self) -> int:
        return int(self.start.split(" ")[1])


def assert_answer_is(example: HttpExample, response: httpx2.Response) -> None:
    """The status and every header the example shows; the body's JSON is compared by callers."""
    assert response.status_code == example.status()
    for name, value in example.headers.items():
        assert response.headers[name] == value, name


def cookie_of(response: httpx2.Response, name: str) -> Any:
    jar: SimpleCookie = SimpleCookie()
    for header in response.headers.get_list("set-cookie"):
        jar.load(header)
    return jar[name]


# -- browser apps ------------------------------------------------------------------------


def browser_client() -> tuple[ModuleType, TestClient]:
    module = fresh("docs_src.browser_apps.fastapi_app")
    return module, TestClient(module.app, base_url=SITE)


def sign_in(client: TestClient, username: str = "alice") -> httpx2.Response:
    credentials = {"username": username, "password": PASSWORD}
    return client.post("/auth/login", json=credentials, headers={"Origin": SITE})


def test_the_login_sets_a_host_cookie_with_the_safe_attributes() -> None:
    _, client = browser_client()
    with client:
        wrong = client.post("/auth/login", json={"username": "alice", "password": "no"})
        assert (wrong.status_code, wrong.json()) == (400, {"detail": "LOGIN_BAD_CREDENTIALS"})
        r = sign_in(client)
        assert r.status_code == 200
        assert r.json()["access_token"]
        morsel = cookie_of(r, "__Host-session")
        assert morsel.value == r.json()["access_token"]
        assert morsel["httponly"] is True
        assert morsel["secure"] is True  # https
        assert morsel["samesite"] == "lax"
        assert morsel["path"] == "/"
        assert morsel["domain"] == ""
        assert 30 * 24 * 3600 - 60 <= int(morsel["max-age"]) <= 30 * 24 * 3600
        listed = client.get("/auth/sessions")  # the cookie alone
        assert [s["current"] for s in listed.json()] == [True]


@pytest.mark.parametrize(
    ("headers", "allowed"),
    [
        ({"Origin": SITE}, True),
        ({"Referer": f"{SITE}/notes/new"}, True),
        ({"Origin": "https://evil.example"}, False),
        ({"Origin": SITE, "Sec-Fetch-Site": "cross-site"}, False),
        ({"Referer": "https://evil.example/page"}, False),
        ({"Origin": "null"}, False),
        ({}, False),
    ],
)
def test_a_change_signed_by_the_cookie_must_come_from_the_apps_own_origin(
    headers: dict[str, str], allowed: bool
) -> None:
    _, client = browser_client()
    with client:
        sign_in(client)
        r = client.post("/notes", headers=headers)
        if allowed:
            assert (r.status_code, r.json()) == (200, {"saved_for": "alice"})
        else:
            assert (r.status_code, r.json()) == (403, {"detail": "CSRF_FAILED"})
        assert client.get("/auth/sessions").status_code == 200  # a GET is never checked


def test_bearer_wins_over_the_cookie_and_is_never_csrf_checked() -> None:
    module, client = browser_client()
    with client:
        sign_in(client)  # alice's cookie stays in the jar
        token = generate_token()
        module.manager.create_session("bob", token)  # the in-memory store: no await needed
        headers = {"Authorization": f"Bearer {token}", "Origin": "https://evil.example"}
        r = client.post("/notes", headers=headers)
        assert (r.status_code, r.json()) == (200, {"saved_for": "bob"})


def test_logout_clears_the_cookie_and_ends_that_session() -> None:
    _, client = browser_client()
    with client:
        sign_in(client)
        r = client.post("/auth/logout", headers={"Origin": SITE})
        assert r.status_code == 204
        assert cookie_of(r, "__Host-session")["max-age"] == "0"
        assert client.get("/auth/sessions").status_code == 401


def test_the_starlette_app_reads_the_same_cookie() -> None:
    module = fresh("docs_src.browser_apps.starlette_app")
    with TestClient(module.app, base_url=SITE) as client:
        assert client.get("/me").status_code == 401
        r = client.post("/auth/login", data={"username": "alice", "password": PASSWORD})
        assert cookie_of(r, "__Host-session")["httponly"] is True
        me = client.get("/me")  # the cookie
        assert me.json()["user"] == "alice"
        client.cookies.clear()
        bearer = {"Authorization": f"Bearer {r.json()['access_token']}"}
        assert client.get("/me", headers=bearer).json() == me.json()


def test_the_cookie_options_strict_and_a_trusted_origin() -> None:
    module = fresh("docs_src.browser_apps.cookie_options")
    manager: SessionManager = module.manager
    app = FastAPI()
    app.add_middleware(BearerAuthMiddleware, session_db=manager)
    app.include_router(manager.router, prefix="/auth/sessions")

    @app.post("/login")
    async def login(request: Request, response: Response) -> None:
        manager.set_cookie(response, await manager.login(request, "alice"), request)

    with TestClient(app, base_url=SITE) as client:
        r = client.post("/login")
        assert cookie_of(r, "__Host-session")["samesite"] == "strict"
        other = client.delete("/auth/sessions", headers={"Origin": "https://other.example"})
        assert other.status_code == 403
        admin = client.delete("/auth/sessions", headers={"Origin": "https://admin.example.com"})
        assert admin.status_code == 204
    with pytest.raises(ConfigurationError, match="__Host-"):
        type(module.cookie)("__Host-session", secure=False)


# -- refresh tokens ----------------------------------------------------------------------


@pytest.fixture
def refresh_app(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.setenv("REFRESH_SECRET", SECRET)
    return fresh("docs_src.refresh_tokens.app")


def tokens_of(client: TestClient, user: str = "alice") -> dict[str, Any]:
    r = client.post(f"/auth/login/{user}")
    assert r.status_code == 200
    body: dict[str, Any] = r.json()
    assert body["token_type"] == "bearer"
    assert body["refresh_token"].startswith("r1.")
    return body


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize(
    "request_file",
    ["docs_src/refresh_tokens/refresh_json.http", "docs_src/refresh_tokens/refresh_form.http"],
)
def test_the_refresh_request_gets_the_answer_shown(
    refresh_app: ModuleType, request_file: str
) -> None:
    shown = HttpExample.read("docs_src/refresh_tokens/refreshed.http")
    with TestClient(refresh_app.app) as client:
        first = tokens_of(client)
        r = HttpExample.read(request_file).send(client, **{"r1.Jx...": first["refresh_token"]})
        assert_answer_is(shown, r)
        body, example = r.json(), json.loads(shown.body)
        assert list(body) == list(example)
        assert body["token_type"] == example["token_type"]
        assert example["expires_in"] - 2 <= body["expires_in"] <= example["expires_in"]
        assert body["refresh_token"].startswith("r1.")
        # Both rotated: the old access token stops working, the session is the same one.
        assert (
            client.get("/auth/sessions", headers=bearer(first["access_token"])).status_code == 401
        )
        listed = client.get("/auth/sessions", headers=bearer(body["access_token"])).json()
        assert len(listed) == 1


def test_a_retry_within_the_interval_gets_the_same_pair(refresh_app: ModuleType) -> None:
    with TestClient(refresh_app.app) as client:
        first = tokens_of(client)
        payload = {"refresh_token": first["refresh_token"]}
        one = client.post("/auth/sessions/refresh", json=payload).json()
        two = client.post("/auth/sessions/refresh", json=payload).json()
        assert one == two


def test_a_reused_token_ends_the_session_with_a_warning(
    refresh_app: ModuleType, caplog: pytest.LogCaptureFixture
) -> None:
    shown = HttpExample.read("docs_src/refresh_tokens/reused.http")
    with TestClient(refresh_app.app) as client:
        stolen = tokens_of(client)
        payload = {"refresh_token": stolen["refresh_token"]}
        thief = client.post("/auth/sessions/refresh", json=payload).json()
        # The thief refreshes again: the first token is now older than the one just consumed,
        # past its interval whatever the setting.
        nxt = client.post("/auth/sessions/refresh", json={"refresh_token": thief["refresh_token"]})
        current = nxt.json()
        caplog.set_level(logging.INFO, logger="asgi_kit.sessions")
        r = client.post("/auth/sessions/refresh", json=payload)  # the victim's copy
        assert_answer_is(shown, r)
        assert r.json() == json.loads(shown.body)
        assert (
            client.get("/auth/sessions", headers=bearer(current["access_token"])).status_code == 401
        )
        again = client.post(
            "/auth/sessions/refresh", json={"refresh_token": current["refresh_token"]}
        )
        assert again.json()["detail"] == "REFRESH_TOKEN_INVALID"
    (line,) = [r for r in caplog.records if r.name == "asgi_kit.sessions"]
    assert line.levelno == logging.WARNING
    assert "session ended id=" in line.getMessage()
    assert "reason=token_reused" in line.getMessage()


@pytest.mark.parametrize(
    ("body", "kind", "error", "detail"),
    [
        ("", "application/json", "invalid_request", "REFRESH_TOKEN_MISSING"),
        ('{"refresh_token": ""}', "application/json", "invalid_request", "REFRESH_TOKEN_MISSING"),
        (
            "refresh_token=r1.x",
            "application/x-www-form-urlencoded",
            "invalid_request",
            "GRANT_TYPE_MISSING",
        ),
        ("{", "application/json", "invalid_request", "INVALID_REQUEST"),
        (
            "grant_type=password&refresh_token=x",
            "application/x-www-form-urlencoded",
            "unsupported_grant_type",
            "UNSUPPORTED_GRANT_TYPE",
        ),
        (
            '{"refresh_token": "r1.forged"}',
            "application/json",
            "invalid_grant",
            "REFRESH_TOKEN_MALFORMED",
        ),
    ],
)
def test_refusals_are_400_with_the_codes_of_the_table(
    refresh_app: ModuleType, body: str, kind: str, error: str, detail: str
) -> None:
    with TestClient(refresh_app.app) as client:
        mine = tokens_of(client)
        r = client.post("/auth/sessions/refresh", content=body, headers={"Content-Type": kind})
        assert (r.status_code, r.json()) == (400, {"error": error, "detail": detail})
        assert r.headers["cache-control"] == "no-store"
        assert client.get("/auth/sessions", headers=bearer(mine["access_token"])).status_code == 200


def expired_tokens(module: ModuleType) -> tuple[str, str]:
    """A session whose access token expired a minute ago: its access and refresh tokens."""
    manager: SessionManager = module.manager
    assert manager.refresher is not None
    session_id, issued = uuid.uuid4(), utcnow() - timedelta(seconds=960)
    session = Session(
        id=session_id,
        user_id="alice",
        token=generate_token(),
        created_at=issued,
        **manager.refresher.new_tokens(session_id, issued),
    )
    asyncio.run(manager.session_db.create(session))
    return session.token, session.refresh_token


def test_an_expired_access_token_gets_the_challenge_shown(refresh_app: ModuleType) -> None:
    shown = HttpExample.read("docs_src/refresh_tokens/expired.http")
    access, _ = expired_tokens(refresh_app)
    with TestClient(refresh_app.app) as client:
        r = client.get("/auth/sessions", headers=bearer(access))
    assert_answer_is(shown, r)
    assert r.json() == json.loads(shown.body)


def test_the_client_refreshes_on_expiry_retries_once_and_signs_in_again_after_a_400(
    refresh_app: ModuleType,
) -> None:
    from docs_src.refresh_tokens.client import ApiClient, SignInAgain

    access, refresh = expired_tokens(refresh_app)
    with TestClient(refresh_app.app) as http:
        api = ApiClient(http, {"access_token": access, "refresh_token": refresh})
        r = api.get("/auth/sessions")
        assert r.status_code == 200
        assert api.tokens["access_token"] != access
        session_id = r.json()[0]["id"]
        asyncio.run(refresh_app.manager.revoke_session(uuid.UUID(session_id)))
        with pytest.raises(SignInAgain, match="REFRESH_TOKEN_INVALID"):
            api.refresh()


@pytest.mark.parametrize(
    ("name", "refresh_name"),
    [
        ("asgi_kit_session", "asgi_kit_session_refresh"),
        ("__Host-session", "__Secure-session_refresh"),
    ],
)
def test_the_browsers_refresh_cookie_is_named_as_the_page_says(
    name: str, refresh_name: str
) -> None:
    manager = SessionManager(
        session_db=InMemorySessionDatabase(),
        access_token_lifetime=900,
        refresh_secret=SECRET,
        cookie=SessionCookie(name),
    )
    app = FastAPI()
    app.add_middleware(BearerAuthMiddleware, session_db=manager)
    app.include_router(manager.router, prefix="/auth/sessions")

    @app.post("/auth/login")
    async def login(request: Request, response: Response) -> dict[str, str]:
        session = await manager.login(request, "alice")
        manager.set_cookie(response, session, request)
        return {}

    with TestClient(app, base_url=SITE) as client:
        r = client.post("/auth/login", headers={"Origin": SITE})
        morsel = cookie_of(r, refresh_name)
        assert morsel["httponly"] is True
        assert morsel["path"] == "/auth/sessions/refresh"
        # The browser sends nothing but its cookies; the answer renews both and holds no token.
        renewed = client.post("/auth/sessions/refresh", headers={"Origin": SITE})
        assert renewed.status_code == 200
        assert set(renewed.json()) == {"token_type", "expires_in"}
        assert cookie_of(renewed, refresh_name).value != morsel.value
        assert cookie_of(renewed, name).value
    assert SessionCookie(name, refresh_name="my_refresh").refresh_name == "my_refresh"


def test_rotating_the_secret_keeps_old_tokens_working(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REFRESH_SECRET", SECRET)
    monkeypatch.setenv("OLD_REFRESH_SECRET", OLD_SECRET)
    module = fresh("docs_src.refresh_tokens.rotate_secret")
    store = module.manager.session_db
    before = SessionManager(session_db=store, access_token_lifetime=900, refresh_secret=OLD_SECRET)
    after = SessionManager(session_db=store, access_token_lifetime=900, refresh_secret=SECRET)

    async def scenario() -> None:
        old = await before.create_session("alice", generate_token(), refresh_token=True)
        renewed = await module.manager.refresh(old.refresh_token)  # signed with the old one
        await after.refresh(renewed.refresh_token)  # signed with the new one

    asyncio.run(scenario())


def test_token_refresher_in_a_starlette_app(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REFRESH_SECRET", SECRET)
    module = fresh("docs_src.refresh_tokens.starlette_app")
    with TestClient(module.app) as client:
        first = client.post("/login/alice").json()
        assert set(first) == {"access_token", "token_type", "expires_in", "refresh_token"}
        r = client.post("/refresh", json={"refresh_token": first["refresh_token"]})
        assert r.status_code == 200
        assert r.json()["access_token"] != first["access_token"]
        forged = client.post("/refresh", json={"refresh_token": "r1.forged"})
        assert (forged.status_code, forged.json()) == (400, {"detail": "REFRESH_TOKEN_MALFORMED"})
        newer = client.post("/refresh", json={"refresh_token": r.json()["refresh_token"]})
        assert newer.status_code == 200
        reused = client.post("/refresh", json={"refresh_token": first["refresh_token"]})
        assert reused.json() == {"detail": "REFRESH_TOKEN_REUSED"}
        last = client.post("/refresh", json={"refresh_token": newer.json()["refresh_token"]})
        assert last.json() == {"detail": "REFRESH_TOKEN_INVALID"}  # the session has ended


# -- step-up -----------------------------------------------------------------------------


def aged(store: InMemorySessionDatabase, user_id: str, seconds: float) -> str:
    """A session of ``user_id`` that signed in ``seconds`` ago; its token."""
    token, at = generate_token(), utcnow() - timedelta(seconds=seconds)
    session = Session(user_id=user_id, token=token, created_at=at, authenticated_at=at)
    asyncio.run(store.create(session))
    return token


def test_a_sensitive_route_asks_an_old_session_to_sign_in_again() -> None:
    module = fresh("docs_src.step_up.app")
    shown = HttpExample.read("docs_src/step_up/challenge.http")
    with TestClient(module.app) as client:
        fresh_token = client.post("/auth/login/alice").json()["access_token"]
        r = client.post("/account/password", headers=bearer(fresh_token))
        assert (r.status_code, r.json()) == (200, {"changed_for": "alice"})

        old = aged(module.manager.session_db, "alice", 601)
        r = client.post("/account/password", headers=bearer(old))
        assert_answer_is(shown, r)
        assert r.json() == json.loads(shown.body)

        wrong = client.post("/account/reauthenticate", json={"password": "no"}, headers=bearer(old))
        assert (wrong.status_code, wrong.json()) == (
            400,
            {"detail": "REAUTHENTICATION_BAD_CREDENTIALS"},
        )
        ok = client.post(
            "/account/reauthenticate", json={"password": PASSWORD}, headers=bearer(old)
        )
        assert ok.status_code == 204
        assert client.post("/account/password", headers=bearer(old)).status_code == 200


def test_log_out_everywhere_and_the_limit_on_wrong_answers() -> None:
    module = fresh("docs_src.step_up.app")
    with TestClient(module.app) as client:
        old = aged(module.manager.session_db, "alice", 601)
        r = client.delete("/auth/sessions", headers=bearer(old))
        assert (r.status_code, r.json()) == (401, {"detail": "REAUTHENTICATION_REQUIRED"})
        for _ in range(5):
            wrong = client.post(
                "/account/reauthenticate", json={"password": "x"}, headers=bearer(old)
            )
            assert wrong.status_code == 400
        # Past the limit even the right password is refused, unchecked.
        r = client.post("/account/reauthenticate", json={"password": PASSWORD}, headers=bearer(old))
        assert (r.status_code, r.json()) == (429, {"detail": "REAUTHENTICATION_RATE_LIMITED"})
        assert int(r.headers["retry-after"]) > 0
        assert client.get("/auth/sessions", headers=bearer(old)).status_code == 200  # lives on


def test_the_starlette_rule_as_a_decorator_and_on_a_raw_scope() -> None:
    module = fresh("docs_src.step_up.starlette_app")
    challenge = HttpExample.read("docs_src/step_up/challenge.http").headers["WWW-Authenticate"]
    recent = aged(module.store, "alice", 5)
    old = aged(module.store, "alice", 601)
    with TestClient(module.app) as client:
        r = client.post("/account/password", headers=bearer(recent))
        assert r.json() == {"changed_for": "alice"}
        assert client.get("/export", headers=bearer(recent)).json() == {"export": "started"}
        for method, path in (("POST", "/account/password"), ("GET", "/export")):
            r = client.request(method, path, headers=bearer(old))
            assert (r.status_code, r.json()) == (401, {"detail": "REAUTHENTICATION_REQUIRED"})
            assert r.headers["www-authenticate"] == challenge
            assert client.request(method, path).status_code == 401  # anonymous


@pytest.mark.parametrize("max_age", [0, -1, float("nan"), "600"])
def test_a_bad_max_age_fails_at_start_up(max_age: Any) -> None:
    module = fresh("docs_src.step_up.app")
    with pytest.raises(ConfigurationError, match="max_age"):
        module.manager.recent_authentication(max_age)
    with pytest.raises(ConfigurationError, match="max_age"):
        RecentAuthentication(max_age)


# -- device names ------------------------------------------------------------------------


def test_the_device_shown_is_what_the_session_list_says() -> None:
    shown = json.loads((ROOT / "docs_src/device_names/device.json").read_text(encoding="utf-8"))
    assert dataclasses.asdict(describe_device(FIREFOX)) == shown
    _, client = browser_client()
    with client:
        credentials = {"username": "alice", "password": PASSWORD}
        client.post("/auth/login", json=credentials, headers={"User-Agent": FIREFOX})
        (listed,) = client.get("/auth/sessions").json()
    assert listed["device"] == shown
    assert listed["user_agent"] == FIREFOX


def test_describe_device_and_client_hints() -> None:
    module = fresh("docs_src.device_names.describe")
    assert dataclasses.asdict(module.firefox) == {
        "browser": "Firefox 133",
        "os": "Windows",
        "kind": "desktop",
        "label": "Firefox on Windows",
    }
    assert (module.chrome.os, module.chrome.label) == ("Windows 11", "Chrome on Windows")
    assert (module.phone.os, module.phone.kind) == ("Android 14", "mobile")
    assert describe_device("curl/8.5.0").label == "curl"
    assert describe_device("").label == "Unknown device"
