"""Refresh tokens over HTTP: ``POST /auth/sessions/refresh`` as clients call it.

Short-lived access tokens, rotation, the reuse interval, reuse ending the session (with
its hook and audit line), browsers' refresh cookie, and every bad input answered 400 with
a precise code, changing nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx2
import pytest
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from fastapi.security import OAuth2PasswordBearer
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asgi_kit import (
    BearerAuthMiddleware,
    ConfigurationError,
    ErrorCode,
    InMemorySessionDatabase,
    RedisSessionDatabase,
    RefreshError,
    RefreshSecret,
    RefreshTokenReusedError,
    Session,
    SessionCookie,
    StoreUnavailableError,
    store_unavailable_handler,
)
from fastapi_users.extensions.session_manager import EndReason, SessionManager

from .conftest import bearer

SECRET = "a-test-secret-of-at-least-32-bytes!"
ORIGIN = "http://testserver"
REFRESH = "/auth/sessions/refresh"


class Recording(SessionManager):
    """A manager whose end hook also records what ended, and why."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ended: list[tuple[Session, EndReason]] = []

    async def on_after_end(self, session: Session, reason: EndReason) -> None:
        self.ended.append((session, reason))
        await super().on_after_end(session, reason)


def refreshing(**kwargs: Any) -> Recording:
    settings = {"access_token_lifetime": 300, "refresh_secret": SECRET, **kwargs}
    return Recording(**settings)


def app_of(manager: SessionManager) -> FastAPI:
    """The README's shape: the middleware handed the manager, the router, a login route."""
    app = FastAPI()
    app.add_middleware(BearerAuthMiddleware, session_db=manager)
    app.add_exception_handler(StoreUnavailableError, store_unavailable_handler)
    app.include_router(manager.router, prefix="/auth/sessions")

    @app.post("/login/{user}")
    async def login(user: str, request: Request, response: Response) -> dict[str, Any]:
        session = await manager.login(request, user)
        if manager.refresh_cookie is not None:
            manager.set_cookie(response, session, request)
        return {"access_token": session.token, "refresh_token": session.refresh_token}

    return app


@pytest.fixture
def manager() -> Recording:
    return refreshing()


@pytest.fixture
def client(manager: Recording) -> Iterator[TestClient]:
    with TestClient(app_of(manager)) as c:
        yield c


def login(client: TestClient, user: str = "alice") -> dict[str, Any]:
    r = client.post(f"/login/{user}")
    assert r.status_code == 200
    body: dict[str, Any] = r.json()
    return body


def refresh_json(client: TestClient, token: str, **headers: str) -> httpx2.Response:
    return client.post(REFRESH, json={"refresh_token": token}, headers=headers)


def test_a_refresh_answers_rfc_6749_and_rotates_both_tokens(client: TestClient) -> None:
    first = login(client)
    before = client.get("/auth/sessions", headers=bearer(first["access_token"])).json()
    r = refresh_json(client, first["refresh_token"])
    assert r.status_code == 200
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token"}
    assert body["token_type"] == "bearer"
    assert 295 <= body["expires_in"] <= 300
    assert body["access_token"] != first["access_token"]
    assert body["refresh_token"] != first["refresh_token"]
    # The previous access token stops working; the session is the same one, listed once.
    assert client.get("/auth/sessions", headers=bearer(first["access_token"])).status_code == 401
    after = client.get("/auth/sessions", headers=bearer(body["access_token"])).json()
    assert [s["id"] for s in after] == [s["id"] for s in before]
    assert after[0]["created_at"] == before[0]["created_at"]


def test_the_oauth_form_works_too(client: TestClient) -> None:
    first = login(client)
    form = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    r = client.post(REFRESH, data=form)
    assert r.status_code == 200
    assert client.get("/auth/sessions", headers=bearer(r.json()["access_token"])).status_code == 200


def test_an_expired_access_token_is_refused_with_the_reason_and_the_session_lives_on() -> None:
    manager = refreshing(access_token_lifetime=0.2)
    with TestClient(app_of(manager)) as client:
        first = login(client)
        time.sleep(0.3)
        r = client.get("/auth/sessions", headers=bearer(first["access_token"]))
        assert r.status_code == 401
        assert r.json() == {"detail": "INVALID_TOKEN"}
        assert r.headers["www-authenticate"] == (
            'Bearer error="invalid_token", error_description="The access token expired"'
        )
        renewed = refresh_json(client, first["refresh_token"]).json()
        listed = client.get("/auth/sessions", headers=bearer(renewed["access_token"]))
        assert listed.status_code == 200
        assert len(listed.json()) == 1
    assert manager.ended == []


def test_a_refresh_counts_as_activity_and_keeps_the_idle_session_alive() -> None:
    manager = refreshing(idle_timeout=0.6, touch_interval=0)
    with TestClient(app_of(manager)) as client:
        tokens = login(client)
        for _ in range(4):  # 4 x 0.25 s: past the idle timeout, but never idle that long
            time.sleep(0.25)
            r = refresh_json(client, tokens["refresh_token"])
            assert r.status_code == 200, r.text
            tokens = r.json()
        time.sleep(0.7)
        assert refresh_json(client, tokens["refresh_token"]).json() == {
            "error": "invalid_grant",
            "detail": "REFRESH_TOKEN_INVALID",
        }


def test_within_the_interval_a_consumed_token_gets_the_same_current_pair(
    client: TestClient, manager: Recording
) -> None:
    first = login(client)
    one = refresh_json(client, first["refresh_token"]).json()
    two = refresh_json(client, first["refresh_token"]).json()  # a retry after a lost answer
    assert one == two
    assert refresh_json(client, one["refresh_token"]).status_code == 200
    assert manager.ended == []


@pytest.mark.anyio
async def test_fifty_concurrent_refreshes_converge_on_one_rotation() -> None:
    manager = refreshing()
    transport = httpx2.ASGITransport(app=app_of(manager))
    async with httpx2.AsyncClient(transport=transport, base_url=ORIGIN) as http:
        first = (await http.post("/login/alice")).json()
        answers = await asyncio.gather(
            *(http.post(REFRESH, json={"refresh_token": first["refresh_token"]}) for _ in range(50))
        )
        assert [a.status_code for a in answers] == [200] * 50
        assert len({(a.json()["access_token"], a.json()["refresh_token"]) for a in answers}) == 1
        current = answers[0].json()
        (session,) = await manager.get_sessions("alice")
        assert session.refresh_generation == 1  # one rotation
        me = await http.get("/auth/sessions", headers=bearer(current["access_token"]))
        assert me.status_code == 200
        again = await http.post(REFRESH, json={"refresh_token": current["refresh_token"]})
        assert again.status_code == 200


def test_reuse_after_the_interval_ends_the_session_with_its_hook_and_one_audit_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    manager = refreshing(refresh_reuse_interval=0)
    with TestClient(app_of(manager)) as client:
        stolen = login(client)
        (session,) = asyncio.run(manager.get_sessions("alice"))
        thief = refresh_json(client, stolen["refresh_token"]).json()
        caplog.set_level(logging.INFO, logger="asgi_kit.sessions")
        r = refresh_json(client, stolen["refresh_token"])  # the victim's copy comes back
        assert r.status_code == 400
        assert r.json() == {"error": "invalid_grant", "detail": "REFRESH_TOKEN_REUSED"}
        assert r.headers["cache-control"] == "no-store"
        # Both parties' current tokens are dead: the thief's access and refresh token.
        assert (
            client.get("/auth/sessions", headers=bearer(thief["access_token"])).status_code == 401
        )
        assert refresh_json(client, thief["refresh_token"]).json()["detail"] == (
            "REFRESH_TOKEN_INVALID"
        )
    assert [(s.id, reason) for s, reason in manager.ended] == [(session.id, EndReason.TOKEN_REUSED)]
    lines = [r for r in caplog.records if r.name == "asgi_kit.sessions"]
    assert len(lines) == 1
    assert lines[0].levelno == logging.WARNING
    assert str(session.id) in lines[0].getMessage()
    assert "reason=token_reused" in lines[0].getMessage()
    for record in caplog.records:  # no token, of either party, in any line
        for token in (*stolen.values(), thief["access_token"], thief["refresh_token"]):
            assert token not in record.getMessage()


def test_sessions_created_the_classic_way_are_unchanged(manager: Recording) -> None:
    created = manager.create_session(uuid.uuid4(), "classic-token")
    assert created.refresh_token == ""
    assert created.refresh_digest is None
    assert created.access_expires_at is None
    with TestClient(app_of(manager)) as client:
        assert client.get("/auth/sessions", headers=bearer("classic-token")).status_code == 200


def test_refresh_tokens_off_answers_unsupported_grant_type() -> None:
    manager = SessionManager()
    with pytest.raises(ConfigurationError, match="access_token_lifetime"):
        manager.create_session("bob", "tok", refresh_token=True)
    with TestClient(app_of(manager)) as client:
        login(client)
        r = client.post(REFRESH, json={"refresh_token": "anything"})
    assert r.status_code == 400
    assert r.json() == {"error": "unsupported_grant_type", "detail": "REFRESH_NOT_ENABLED"}


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"refresh_secret": None}, "server secret"),
        ({"refresh_secret": "short"}, "too short"),
        ({"refresh_secret": [SECRET, b"x" * 31]}, "number 2 is too short"),
        ({"access_token_lifetime": 0}, "positive"),
        ({"access_token_lifetime": -5}, "must be positive"),
        ({"access_token_lifetime": float("nan")}, "finite"),
        ({"access_token_lifetime": "300"}, "seconds or a timedelta"),
        ({"access_token_lifetime": True}, "seconds or a timedelta"),
        ({"refresh_reuse_interval": -1}, "must not be negative"),
        ({"refresh_reuse_interval": float("inf")}, "finite"),
    ],
)
def test_bad_settings_fail_at_start_up(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message) as caught:
        refreshing(**settings)
    assert SECRET not in str(caught.value)


def test_a_store_that_cannot_rotate_is_refused_at_start_up() -> None:
    inner = InMemorySessionDatabase()

    class OldStore:  # a custom store written before refresh tokens: everything but rotate()
        create = inner.create
        get_by_token_digest = inner.get_by_token_digest
        get = inner.get
        list_for_user = inner.list_for_user
        touch = inner.touch
        delete = inner.delete
        delete_for_user = inner.delete_for_user
        purge_expired = inner.purge_expired
        pop_expired = inner.pop_expired

    SessionManager(session_db=OldStore())  # fine without refresh tokens
    with pytest.raises(ConfigurationError, match="OldStore cannot rotate"):
        refreshing(session_db=OldStore())


def test_the_secret_rotates_tokens_signed_with_the_old_one_still_refresh() -> None:
    old, new = "o" * 32, "n" * 32
    store = InMemorySessionDatabase()
    with TestClient(app_of(refreshing(session_db=store, refresh_secret=old))) as client:
        first = login(client)
    rotated = refreshing(session_db=store, refresh_secret=[new, old])
    with TestClient(app_of(rotated)) as client:
        r = refresh_json(client, first["refresh_token"])
        assert r.status_code == 200
    only_new = refreshing(session_db=store, refresh_secret=new)
    with TestClient(app_of(only_new)) as client:
        assert refresh_json(client, r.json()["refresh_token"]).status_code == 200
        assert refresh_json(client, first["refresh_token"]).json()["detail"] == (
            "REFRESH_TOKEN_MALFORMED"
        )


def test_an_unreachable_store_answers_503_never_400() -> None:
    store = RedisSessionDatabase("redis://127.0.0.1:9/0", timeout=0.5)
    manager = refreshing(session_db=store)
    token = refreshing().refresher
    assert token is not None
    genuine = token.secret.mint(uuid.uuid4(), 0)  # same secret: passes the signature check
    with TestClient(app_of(manager)) as client:
        r = refresh_json(client, genuine)
    assert r.status_code == 503
    assert r.json() == {"detail": "SESSION_STORE_UNAVAILABLE"}
    assert r.headers["retry-after"]


# -- bad input: 400 with a precise code, and the session is never touched ---------------


def bad_requests(
    client: TestClient, manager: SessionManager, mine: dict[str, Any]
) -> list[tuple[str, httpx2.Response]]:
    """Every kind of bad refresh request, with the code it must get."""
    other = login(client, "mallory")
    ended = login(client, "carol")
    (carol,) = asyncio.run(manager.get_sessions("carol"))
    asyncio.run(manager.revoke_session(carol.id))
    token = mine["refresh_token"]
    flipped = token[:-5] + ("A" if token[-5] != "A" else "B") + token[-4:]
    form = "application/x-www-form-urlencoded"
    post = client.post
    return [
        ("REFRESH_TOKEN_MALFORMED", refresh_json(client, "not-a-refresh-token")),
        ("REFRESH_TOKEN_MALFORMED", refresh_json(client, "r1." + "A" * 112)),
        ("REFRESH_TOKEN_MALFORMED", refresh_json(client, flipped)),
        ("REFRESH_TOKEN_MALFORMED", refresh_json(client, token + " ")),
        ("REFRESH_TOKEN_MALFORMED", post(REFRESH, json={"refresh_token": 12})),
        ("REFRESH_TOKEN_MISSING", refresh_json(client, "")),
        ("REFRESH_TOKEN_MISSING", post(REFRESH, json={})),
        ("REFRESH_TOKEN_MISSING", post(REFRESH)),
        ("REFRESH_TOKEN_INVALID", refresh_json(client, ended["refresh_token"])),
        (
            "REFRESH_TOKEN_OF_ANOTHER_SESSION",
            refresh_json(client, token, Authorization=f"Bearer {other['access_token']}"),
        ),
        (
            "REFRESH_TOKEN_REPEATED",
            post(
                REFRESH,
                content=f"grant_type=refresh_token&refresh_token={token}&refresh_token={token}",
                headers={"content-type": form},
            ),
        ),
        (
            "REFRESH_TOKEN_REPEATED",
            post(
                REFRESH,
                content=f'{{"refresh_token":"{token}","refresh_token":"{token}"}}',
                headers={"content-type": "application/json"},
            ),
        ),
        ("GRANT_TYPE_MISSING", post(REFRESH, data={"refresh_token": token})),
        (
            "UNSUPPORTED_GRANT_TYPE",
            post(REFRESH, data={"grant_type": "password", "refresh_token": token}),
        ),
        (
            "INVALID_REQUEST",
            post(REFRESH, content=b"{", headers={"content-type": "application/json"}),
        ),
        ("INVALID_REQUEST", post(REFRESH, json=[token])),
        ("INVALID_REQUEST", post(REFRESH, content=token, headers={"content-type": "text/plain"})),
        ("INVALID_REQUEST", post(REFRESH, json={"refresh_token": token, "pad": "x" * 5000})),
        ("INVALID_REQUEST", post(REFRESH, content=b"\xff\xfe", headers={"content-type": form})),
    ]


def test_every_bad_refresh_gets_its_400_and_changes_nothing(manager: Recording) -> None:
    with TestClient(app_of(manager)) as client:
        mine = login(client)
        for code, r in bad_requests(client, manager, mine):
            assert r.status_code == 400, (code, r.status_code, r.text)
            assert r.json()["detail"] == code, (code, r.text)
            assert r.json()["error"] in (
                "invalid_grant",
                "invalid_request",
                "unsupported_grant_type",
            )
            assert r.headers["cache-control"] == "no-store"
        # Nothing was revoked or rotated: the session and its original tokens still work.
        assert client.get("/auth/sessions", headers=bearer(mine["access_token"])).status_code == 200
        assert refresh_json(client, mine["refresh_token"]).status_code == 200
    assert [reason for _, reason in manager.ended] == [EndReason.LOGOUT]  # carol's, on purpose


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    body=st.one_of(
        st.binary(max_size=300),
        st.text(max_size=300).map(str.encode),
        st.dictionaries(
            st.text(max_size=20),
            st.one_of(
                st.text(max_size=150),
                st.integers(),
                st.none(),
                st.lists(st.text(max_size=5), max_size=3),
            ),
            max_size=4,
        ).map(lambda d: httpx2.Request("POST", "/", json=d).content),
    ),
    kind=st.sampled_from(
        ["application/json", "application/x-www-form-urlencoded", "text/plain", ""]
    ),
)
def test_no_body_ever_gets_a_500_or_harms_the_session(
    shared_client: tuple[TestClient, dict[str, Any]], body: bytes, kind: str
) -> None:
    client, mine = shared_client
    headers = {"content-type": kind} if kind else {}
    r = client.post(REFRESH, content=body, headers=headers)
    assert r.status_code == 400, r.text
    assert r.json()["detail"].isupper()
    assert client.get("/auth/sessions", headers=bearer(mine["access_token"])).status_code == 200


@pytest.fixture(scope="module")
def shared_client() -> Iterator[tuple[TestClient, dict[str, Any]]]:
    with TestClient(app_of(refreshing())) as client:
        yield client, login(client)


# -- browsers: the refresh cookie ---------------------------------------------------------


def test_a_browser_login_sets_a_refresh_cookie_for_the_refresh_path_only() -> None:
    manager = refreshing(cookie=SessionCookie("sid"))
    with TestClient(app_of(manager)) as client:
        r = client.post("/login/alice")
    cookies = [v for k, v in r.headers.multi_items() if k == "set-cookie"]
    (access,) = [c for c in cookies if c.startswith("sid=")]
    (refresh,) = [c for c in cookies if c.startswith("sid_refresh=")]
    assert "Path=/;" in access
    assert f"Path={REFRESH}" in refresh
    assert "HttpOnly" in refresh
    assert "SameSite=lax" in refresh


def test_a_browser_refreshes_with_its_cookie_and_never_sees_the_tokens() -> None:
    manager = refreshing(cookie=SessionCookie("sid"))
    with TestClient(app_of(manager), base_url=ORIGIN) as client:
        first = login(client)
        r = client.post(REFRESH, headers={"Origin": ORIGIN})
        assert r.status_code == 200, r.text
        assert r.json() == {"token_type": "bearer", "expires_in": 300}
        assert r.headers["cache-control"] == "no-store"
        assert client.cookies["sid"] != first["access_token"]
        # The renewed cookie authenticates; the old access token does not.
        assert client.get("/auth/sessions").status_code == 200
        assert (
            client.get("/auth/sessions", headers=bearer(first["access_token"])).status_code == 401
        )
        # Another refresh, from the renewed refresh cookie.
        assert client.post(REFRESH, headers={"Origin": ORIGIN}).status_code == 200


@pytest.mark.parametrize(
    "headers",
    [{"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}, {}],
)
def test_a_cookie_refresh_from_another_site_is_refused_403(headers: dict[str, str]) -> None:
    manager = refreshing(cookie=SessionCookie("sid"))
    with TestClient(app_of(manager), base_url=ORIGIN) as client:
        login(client)
        r = client.post(REFRESH, headers=headers)
        assert r.status_code == 403
        assert r.json() == {"detail": "CSRF_FAILED"}
        assert client.post(REFRESH, headers={"Origin": ORIGIN}).status_code == 200


def test_a_body_token_wins_over_a_refresh_cookie_kept_by_the_client() -> None:
    """A client that keeps cookies (requests.Session) sends its cookie with a body token."""
    manager = refreshing(cookie=SessionCookie("sid"))
    with TestClient(app_of(manager), base_url=ORIGIN) as client:
        first = login(client)
        # No Origin header (an API client): the cookie is neither read nor CSRF-checked.
        r = client.post(REFRESH, json={"refresh_token": first["refresh_token"]})
        assert r.status_code == 200, r.text
        assert set(r.json()) == {"access_token", "token_type", "expires_in", "refresh_token"}


def test_a_refused_refresh_cookie_is_cleared() -> None:
    manager = refreshing(cookie=SessionCookie("sid"), refresh_reuse_interval=0)
    with TestClient(app_of(manager), base_url=ORIGIN) as client:
        first = login(client)
        assert refresh_json(client, first["refresh_token"]).status_code == 200  # a thief
        r = client.post(REFRESH, headers={"Origin": ORIGIN})  # the browser's copy: reused
        assert r.json() == {"error": "invalid_grant", "detail": "REFRESH_TOKEN_REUSED"}
        cleared = [v for k, v in r.headers.multi_items() if k == "set-cookie"]
        assert any(c.startswith("sid=") and "Max-Age=0" in c for c in cleared)
        assert any(c.startswith("sid_refresh=") and "Max-Age=0" in c for c in cleared)


def test_logout_clears_the_refresh_cookie_too() -> None:
    manager = refreshing(cookie=SessionCookie("sid"))
    app = app_of(manager)

    @app.post("/logout")
    async def logout(request: Request, response: Response) -> None:
        manager.clear_cookie(response, request)

    with TestClient(app) as client:
        r = client.post("/logout")
    cookies = [v for k, v in r.headers.multi_items() if k == "set-cookie"]
    assert any(c.startswith("sid_refresh=") and "Max-Age=0" in c for c in cookies)


def test_a_refresh_cookie_without_the_router_is_a_configuration_error() -> None:
    manager = refreshing(cookie=SessionCookie("sid"))
    app = FastAPI()

    @app.post("/login")
    async def login_route(request: Request, response: Response) -> None:
        manager.set_cookie(response, await manager.login(request, "a"), request)

    with (
        TestClient(app, raise_server_exceptions=True) as client,
        pytest.raises(ConfigurationError, match=r"include manager\.router"),
    ):
        client.post("/login")


def test_the_access_token_lifetime_takes_a_timedelta() -> None:
    manager = refreshing(access_token_lifetime=timedelta(minutes=2))
    with TestClient(app_of(manager)) as client:
        first = login(client)
        assert 115 <= refresh_json(client, first["refresh_token"]).json()["expires_in"] <= 120


# -- FastAPI Users' login through manager.transport() -----------------------------------
# The released FastAPI Users runs these for real (tests/fastapi_users_env/check.py); here
# two transports shaped as its BearerTransport and CookieTransport drive the same code.


class BearerLike:
    """What FastAPI Users' ``BearerTransport`` answers at login."""

    scheme = OAuth2PasswordBearer("auth/login", auto_error=False)

    async def get_login_response(self, token: str) -> Response:
        return JSONResponse({"access_token": token, "token_type": "bearer"})

    async def get_logout_response(self) -> Response:
        raise NotImplementedError  # FastAPI Users' TransportLogoutNotSupportedError

    @staticmethod
    def get_openapi_login_responses_success() -> dict[int | str, dict[str, Any]]:
        return {200: {"model": None}}

    @staticmethod
    def get_openapi_logout_responses_success() -> dict[int | str, dict[str, Any]]:
        return {}


class CookieLike(BearerLike):
    """What FastAPI Users' ``CookieTransport`` answers at login and logout."""

    cookie_name = "fastapiusersauth"
    cookie_secure = False
    cookie_samesite = "strict"

    async def get_login_response(self, token: str) -> Response:
        response = Response(status_code=204)
        response.set_cookie(self.cookie_name, token, httponly=True, samesite="strict")
        return response

    async def get_logout_response(self) -> Response:
        response = Response(status_code=204)
        response.delete_cookie(self.cookie_name)
        return response


class User:
    def __init__(self, id: str) -> None:
        self.id = id


def fastapi_users_like_app(manager: SessionManager, inner: BearerLike) -> FastAPI:
    """Login and logout as FastAPI Users' ``AuthenticationBackend`` runs them."""
    transport = manager.transport(inner)
    app = app_of(manager)

    @app.post("/auth/login")
    async def fu_login(request: Request) -> Response:
        strategy = await manager.strategy(request)
        token = await strategy.write_token(User("alice"))
        return await transport.get_login_response(token)

    @app.post("/auth/logout")
    async def fu_logout(request: Request) -> Response:
        strategy = await manager.strategy(request)
        token = request.headers.get("authorization", "")[7:] or request.cookies["fastapiusersauth"]
        await strategy.destroy_token(token, User("alice"))
        return await transport.get_logout_response()

    return app


def test_a_bearer_login_through_the_transport_answers_the_refresh_token_too() -> None:
    manager = refreshing()
    with TestClient(fastapi_users_like_app(manager, BearerLike())) as client:
        r = client.post("/auth/login")
        body = r.json()
        assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token"}
        assert r.headers["cache-control"] == "no-store"
        renewed = refresh_json(client, body["refresh_token"])
        assert renewed.status_code == 200
    assert manager.transport(BearerLike()).get_openapi_login_responses_success()[200]


def test_with_refresh_tokens_off_the_transport_answers_as_its_inner_one() -> None:
    manager = Recording()
    with TestClient(fastapi_users_like_app(manager, BearerLike())) as client:
        assert set(client.post("/auth/login").json()) == {"access_token", "token_type"}


def test_a_cookie_login_through_the_transport_sets_the_refresh_cookie_and_logout_clears_it() -> (
    None
):
    manager = refreshing()
    with TestClient(fastapi_users_like_app(manager, CookieLike()), base_url=ORIGIN) as client:
        r = client.post("/auth/login")
        assert r.status_code == 204
        cookies = [v for k, v in r.headers.multi_items() if k == "set-cookie"]
        (refresh,) = [c for c in cookies if c.startswith("fastapiusersauth_refresh=")]
        assert f"Path={REFRESH}" in refresh
        assert "SameSite=strict" in refresh  # the transport's own settings
        refreshed = client.post(REFRESH, headers={"Origin": ORIGIN})
        assert refreshed.status_code == 200, refreshed.text
        # The renewed access cookie holds a working access token (FastAPI Users reads it).
        renewed = client.cookies["fastapiusersauth"]
        assert client.get("/auth/sessions", headers=bearer(renewed)).status_code == 200
        out = client.post("/auth/logout", headers={"Origin": ORIGIN})
        cleared = [v for k, v in out.headers.multi_items() if k == "set-cookie"]
        assert any(c.startswith("fastapiusersauth_refresh=") and "Max-Age=0" in c for c in cleared)
    assert [reason for _, reason in manager.ended] == [EndReason.LOGOUT]


def test_a_raw_asgi_app_refuses_an_expired_access_token_with_the_reason() -> None:
    """``BearerAuthMiddleware(reject_invalid=True)`` in front of a plain ASGI app."""
    manager = refreshing(access_token_lifetime=0.2)

    async def hello(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"hello"})

    app = BearerAuthMiddleware(hello, session_db=manager, reject_invalid=True)
    session = manager.create_session("alice", "access-token-1", refresh_token=True)
    client = TestClient(app)  # no lifespan: the plain app answers http only
    assert client.get("/", headers=bearer(session.token)).text == "hello"
    time.sleep(0.3)
    r = client.get("/", headers=bearer(session.token))
    assert r.status_code == 401
    assert 'error_description="The access token expired"' in r.headers["www-authenticate"]


# -- what the secret alone can do: at most end a session whose id it knows ---------------


@pytest.mark.anyio
async def test_a_leaked_secret_cannot_use_a_session_only_end_it() -> None:
    manager = refreshing()
    refresher = manager.refresher
    assert refresher is not None
    session = await manager.create_session("alice", "access-token-1", refresh_token=True)
    current = await manager.refresh(session.refresh_token)  # generation 1
    forge = refresher.secret.mint  # what a holder of the secret can make, with no store dump
    for forged in (forge(session.id, 1), forge(session.id, 7), forge(session.id, 0)):
        with pytest.raises(RefreshError) as caught:
            await manager.refresh(forged)  # the current generation, a future one, the last one
        assert caught.value.code == ErrorCode.REFRESH_TOKEN_INVALID
    assert manager.ended == []
    assert (await manager.refresh(current.refresh_token)).refresh_generation == 2
    # Past the reuse interval, an old generation ends the session: the one harm it can do.
    refresher.reuse_interval = timedelta(0)
    with pytest.raises(RefreshTokenReusedError):
        await manager.refresh(forge(session.id, 0))
    assert [reason for _, reason in manager.ended] == [EndReason.TOKEN_REUSED]


def test_the_secret_never_shows() -> None:
    secret = RefreshSecret([SECRET, "another-secret-of-32-bytes-or-more"])
    assert SECRET not in repr(secret)
    assert repr(secret) == "RefreshSecret(<2 secret(s) hidden>)"
    with pytest.raises(ValueError, match="generation"):
        secret.mint(uuid.uuid4(), -1)
