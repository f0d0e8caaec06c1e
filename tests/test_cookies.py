"""Browser sessions: the token in an HttpOnly cookie, CSRF-checked, beside Bearer."""

from __future__ import annotations

from http.cookies import SimpleCookie
from typing import Any

import pytest
from fastapi import FastAPI, Request, Response
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.websockets import WebSocket

from asgi_kit import (
    BearerAuthMiddleware,
    ConfigurationError,
    Session,
    SessionCookie,
    request_session,
)
from fastapi_users.extensions.session_manager import SessionManager

from .conftest import bearer

NAME = "sid"
SITE = "http://testserver"


def make(cookie: SessionCookie | None = None) -> tuple[SessionManager, TestClient]:
    manager = SessionManager(cookie=cookie or SessionCookie(NAME))
    app = FastAPI()
    app.include_router(manager.router, prefix="/auth/sessions")

    @app.post("/login")
    async def login(request: Request, response: Response) -> dict[str, str]:
        session = await manager.login(request, "alice")
        manager.set_cookie(response, session, request)
        return {"access_token": session.token}

    @app.post("/logout")
    async def logout(request: Request, response: Response) -> None:
        session = request_session(request)
        if session is not None:
            await manager.revoke_session(session.id)
        manager.clear_cookie(response, request)

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        session = request_session(websocket)
        await websocket.send_json({"user": None if session is None else str(session.user_id)})
        await websocket.close()

    app.add_middleware(BearerAuthMiddleware, session_db=manager)
    return manager, TestClient(app, base_url=SITE)


def cookie_of(response: Any) -> SimpleCookie:
    jar: SimpleCookie = SimpleCookie()
    jar.load(response.headers["set-cookie"])
    return jar


def test_login_sets_a_safe_cookie_and_the_routes_accept_it() -> None:
    _manager, client = make()
    with client:
        r = client.post("/login", headers={"Origin": SITE})
        morsel = cookie_of(r)[NAME]
        assert morsel["httponly"] is True
        assert morsel["samesite"].lower() == "lax"
        assert morsel["path"] == "/"
        assert not morsel["secure"]  # http here; see the https test
        assert morsel["max-age"] == ""  # no deadline: a browser-session cookie
        listed = client.get("/auth/sessions").json()  # the cookie, no Authorization header
        assert [s["current"] for s in listed] == [True]
        by_bearer = client.get("/auth/sessions", headers=bearer(r.json()["access_token"]))
        assert [s["current"] for s in by_bearer.json()] == [True]  # marked the same way


def test_secure_on_https_max_age_from_the_deadline_and_host_prefix() -> None:
    manager = SessionManager(lifetime=3600, cookie=SessionCookie("__Host-sid"))
    app = FastAPI()

    @app.post("/login")
    async def login(request: Request, response: Response) -> None:
        session = await manager.login(request, "alice")
        manager.set_cookie(response, session, request)

    with TestClient(app, base_url="https://testserver") as client:
        morsel = cookie_of(client.post("/login"))["__Host-sid"]
    assert morsel["secure"] is True
    assert 3590 <= int(morsel["max-age"]) <= 3600
    with pytest.raises(ConfigurationError, match="__Host-"):
        SessionCookie("__Host-sid", secure=False)
    with pytest.raises(ConfigurationError, match="HTTP token"):
        SessionCookie("bad name;")
    with pytest.raises(ConfigurationError, match="trusted origin"):
        SessionCookie(trusted_origins=["not an origin"])


def logged_in(cookie: SessionCookie | None = None) -> tuple[SessionManager, TestClient, str]:
    manager, client = make(cookie)
    with client:  # the cookie stays in the client's jar for the test's own ``with``
        token = client.post("/login", headers={"Origin": SITE}).json()["access_token"]
    return manager, client, token


@pytest.mark.parametrize(
    ("headers", "allowed"),
    [
        ({"Origin": SITE}, True),
        ({"Origin": "http://TESTSERVER:80"}, True),
        ({"Referer": f"{SITE}/page?x=1"}, True),
        ({"Origin": SITE, "Sec-Fetch-Site": "same-origin"}, True),
        ({}, False),
        ({"Origin": "null"}, False),
        ({"Origin": "http://evil.example"}, False),
        ({"Origin": "http://testserver:8080"}, False),
        ({"Origin": "https://testserver"}, False),
        ({"Referer": "http://evil.example/"}, False),
        ({"Origin": SITE, "Sec-Fetch-Site": "cross-site"}, False),
        ({"Origin": "http://evil.example", "Referer": f"{SITE}/"}, False),  # Origin wins
        ({"Origin": "garbage"}, False),
    ],
)
def test_state_changing_cookie_requests_must_be_same_origin(
    headers: dict[str, str], allowed: bool
) -> None:
    _manager, client, _ = logged_in()
    with client:
        r = client.delete("/auth/sessions", headers=headers)
        if allowed:
            assert r.status_code == 204
        else:
            assert (r.status_code, r.json()) == (403, {"detail": "CSRF_FAILED"})
            assert client.get("/auth/sessions").status_code == 200  # nothing was ended


def test_a_trusted_origin_may_and_bearer_requests_are_never_csrf_checked() -> None:
    trusted = SessionCookie(NAME, trusted_origins=["https://admin.example.com"])
    _, client, token = logged_in(trusted)
    with client:
        ok = client.delete("/auth/sessions", headers={"Origin": "https://admin.example.com"})
        assert ok.status_code == 204
    _, client, token = logged_in()
    with client:
        evil = {"Origin": "http://evil.example", **bearer(token)}
        assert client.delete("/auth/sessions", headers=evil).status_code == 204


def test_a_missing_host_is_refused() -> None:
    _, client, _ = logged_in()
    with client:
        r = client.delete("/auth/sessions", headers={"Origin": SITE, "Host": ""})
        assert r.status_code == 403


def test_bearer_wins_over_the_cookie_and_bad_cookies_are_clear() -> None:
    manager, client, _ = logged_in()
    with client:
        other = manager.create_session("bob", "bob-token")
        listed = client.get("/auth/sessions", headers=bearer("bob-token")).json()
        assert [s["id"] for s in listed] == [str(other.id)]  # Bearer, not the cookie
        client.cookies.clear()
        r = client.get("/auth/sessions", headers={"Cookie": f"{NAME}=not a token"})
        assert r.status_code == 401
        r = client.get("/auth/sessions", headers={"Cookie": f"{NAME}=a; {NAME}=b"})
        assert (r.status_code, r.json()) == (400, {"detail": "INVALID_REQUEST"})
        r = client.get("/auth/sessions", headers={"Cookie": f"{NAME}=unknown-token"})
        assert r.status_code == 401


def test_logout_clears_the_cookie_and_ends_only_that_session() -> None:
    manager, client, _ = logged_in()
    with client:
        other = manager.create_session("alice", "phone-token")
        r = client.post("/logout", headers={"Origin": SITE})
        assert cookie_of(r)[NAME]["max-age"] == "0"
        assert client.get("/auth/sessions").status_code == 401
        listed = client.get("/auth/sessions", headers=bearer("phone-token")).json()
        assert [s["id"] for s in listed] == [str(other.id)]


@pytest.mark.parametrize(("origin", "user"), [(SITE, "alice"), ("http://evil.example", None)])
def test_a_websocket_is_authenticated_by_the_cookie_only_from_an_allowed_origin(
    origin: str, user: str | None
) -> None:
    _, client, _ = logged_in()
    with client, client.websocket_connect("/ws", headers={"Origin": origin}) as ws:
        assert ws.receive_json() == {"user": user}


COOKIE_TEXT = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=60)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cookie=st.one_of(
        COOKIE_TEXT,
        st.builds(lambda v: f"{NAME}={v}", COOKIE_TEXT),
        st.builds(lambda a, b: f"{a}; {NAME}={b}", COOKIE_TEXT, COOKIE_TEXT),
    ),
    method=st.sampled_from(["GET", "DELETE"]),
    origin=st.sampled_from([None, SITE, "null", "http://evil.example"]),
)
def test_any_cookie_header_is_a_clear_answer_never_a_500_or_another_user(
    cookie: str, method: str, origin: str | None
) -> None:
    manager, client = make()
    alice = manager.create_session("alice", "alice-token")
    headers = {"Cookie": cookie, **({"Origin": origin} if origin else {})}
    with client:
        r = client.request(method, "/auth/sessions", headers=headers)
    assert r.status_code in (200, 204, 400, 401, 403)
    if r.status_code == 200:
        assert [s["id"] for s in r.json()] == [str(alice.id)]
        assert f"{NAME}=alice-token" in cookie


def test_a_cookie_request_costs_no_second_look_up() -> None:
    manager, client, _ = logged_in()
    lookups: list[str] = []
    real = manager.session_db.get_by_token_digest

    async def counting(digest: str) -> Session | None:
        lookups.append(digest)
        return await real(digest)

    manager.session_db.get_by_token_digest = counting  # type: ignore[method-assign]
    with client:
        assert client.get("/auth/sessions").status_code == 200
    assert len(lookups) == 1


def test_cookie_helpers_without_a_cookie_say_how_to_configure_one() -> None:
    manager = SessionManager()
    session = manager.create_session("alice", "tok")
    with pytest.raises(ConfigurationError, match=r"cookie=SessionCookie"):
        manager.set_cookie(Response(), session, Request({"type": "http", "headers": []}))


@pytest.mark.parametrize(
    ("headers", "other"),
    [
        ([], False),  # curl: names no origin
        ([(b"origin", b"http://testserver")], False),
        ([(b"referer", b"http://testserver/login")], False),
        ([(b"origin", b"https://admin.example.com")], False),  # trusted
        ([(b"origin", b"null")], True),
        ([(b"origin", b"http://evil.example")], True),
        ([(b"origin", b"http://testserver"), (b"sec-fetch-site", b"cross-site")], True),
    ],
)
def test_from_other_origin_is_the_same_rule_for_requests_no_cookie_authenticates(
    headers: list[tuple[bytes, bytes]], other: bool
) -> None:
    from asgi_kit import from_other_origin

    scope = {
        "type": "http",
        "method": "POST",
        "scheme": "http",
        "headers": [(b"host", b"testserver"), *headers],
    }
    assert from_other_origin(Request(scope), ["https://admin.example.com"]) is other
