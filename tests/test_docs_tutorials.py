"""The tutorials' examples (docs/tutorial/*.md), run the way the pages say they work.

``docs_src/tutorial_fastapi/`` grows one FastAPI app step by step; ``docs_src/
tutorial_starlette/`` puts the middleware in front of Starlette and raw ASGI apps. The
complete FastAPI Users app of docs/tutorial/fastapi-users.md is run by
``test_fastapi_users_wheel.py`` (FastAPI Users is not installed here).
"""

from __future__ import annotations

import importlib
import socket
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from types import ModuleType

import httpx2
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from asgi_kit import (
    ConfigurationError,
    InvalidUserIdError,
    RedisSessionDatabase,
    Session,
    SessionAuthBackend,
    SessionLimitError,
    SQLAlchemySessionDatabase,
    SyncUsageError,
    coerce_user_id,
)
from fastapi_users.extensions.session_manager import (
    EndReason,
    SessionManager,
    UnknownEndReasonError,
)

ALICE = {"username": "alice", "password": "wonderland"}
BOB = {"username": "bob", "password": "builder"}
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"


def fresh(name: str) -> ModuleType:
    """Import the module ``name`` afresh: a new app with an empty in-memory store."""
    return importlib.reload(importlib.import_module(name))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def log_in(client: TestClient, credentials: dict[str, str], agent: str = FIREFOX) -> str:
    reply = client.post("/auth/login", json=credentials, headers={"User-Agent": agent})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["token_type"] == "bearer"
    return str(body["access_token"])


# --- docs/tutorial/fastapi.md ----------------------------------------------------------


@pytest.fixture(params=["docs_src.tutorial_fastapi.login", "docs_src.tutorial_fastapi.own_routes"])
def step(request: pytest.FixtureRequest) -> Iterator[TestClient]:
    """Steps 1 and 2 of the FastAPI tutorial (docs_src/tutorial_fastapi/login.py and
    docs_src/tutorial_fastapi/own_routes.py): the session routes work the same in both."""
    with TestClient(fresh(request.param).app) as client:
        yield client


def test_login_then_list_the_sessions(step: TestClient) -> None:
    first = log_in(step, ALICE)
    second = log_in(step, ALICE, agent="curl/8.5.0")
    log_in(step, BOB)
    listed = step.get("/auth/sessions", headers=bearer(second))
    assert listed.status_code == 200
    sessions = listed.json()
    assert [s["user_agent"] for s in sessions] == ["curl/8.5.0", FIREFOX]  # newest first
    assert [s["current"] for s in sessions] == [True, False]
    assert {s["user_id"] for s in sessions} == {"alice"}
    assert {"id", "user_id", "created_at", "expires_at", "last_seen_at", "user_agent"} <= set(
        sessions[0]
    )
    assert {"ip_address", "current", "device", "authenticated_at"} <= set(sessions[0])
    assert first not in listed.text  # never a token
    assert second not in listed.text


def test_wrong_password_is_refused(step: TestClient) -> None:
    for credentials in ({**ALICE, "password": "guess"}, {"username": "eve", "password": "x"}):
        reply = step.post("/auth/login", json=credentials)
        assert (reply.status_code, reply.json()) == (400, {"detail": "LOGIN_BAD_CREDENTIALS"})


def test_the_router_serves_refresh_and_says_when_it_is_off(step: TestClient) -> None:
    """POST /auth/sessions/refresh is manager.router's too: 400 while refresh tokens are off."""
    token = log_in(step, ALICE)
    reply = step.post("/auth/sessions/refresh", json={"refresh_token": "anything"})
    assert reply.status_code == 400
    assert reply.json() == {"error": "unsupported_grant_type", "detail": "REFRESH_NOT_ENABLED"}
    assert step.get("/auth/sessions", headers=bearer(token)).status_code == 200  # nothing ended


def test_end_one_session_then_all(step: TestClient) -> None:
    laptop, phone, tablet = (log_in(step, ALICE) for _ in range(3))
    sessions = step.get("/auth/sessions", headers=bearer(laptop)).json()
    phone_id = next(
        s["id"] for s in step.get("/auth/sessions", headers=bearer(phone)).json() if s["current"]
    )
    assert step.delete(f"/auth/sessions/{phone_id}", headers=bearer(laptop)).status_code == 204
    assert step.get("/auth/sessions", headers=bearer(phone)).status_code == 401
    assert len(step.get("/auth/sessions", headers=bearer(laptop)).json()) == len(sessions) - 1
    # keep_current=true: log out the other devices only
    kept = step.delete("/auth/sessions?keep_current=true", headers=bearer(laptop))
    assert kept.status_code == 204
    assert step.get("/auth/sessions", headers=bearer(tablet)).status_code == 401
    assert len(step.get("/auth/sessions", headers=bearer(laptop)).json()) == 1
    # without it: log out everywhere, this device too
    assert step.delete("/auth/sessions", headers=bearer(laptop)).status_code == 204
    assert step.get("/auth/sessions", headers=bearer(laptop)).status_code == 401


def test_errors_are_json_with_rfc_6750_challenges(step: TestClient) -> None:
    alice = log_in(step, ALICE)
    bob = log_in(step, BOB)
    anonymous = step.get("/auth/sessions")
    assert (anonymous.status_code, anonymous.json()) == (401, {"detail": "NOT_AUTHENTICATED"})
    assert anonymous.headers["WWW-Authenticate"] == "Bearer"
    bad = step.get("/auth/sessions", headers=bearer("not-a-session"))
    assert (bad.status_code, bad.json()) == (401, {"detail": "INVALID_TOKEN"})
    assert bad.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    two = step.get(
        "/auth/sessions", headers=[("Authorization", f"Bearer {alice}"), ("Authorization", "x")]
    )
    assert (two.status_code, two.json()) == (400, {"detail": "INVALID_REQUEST"})
    assert two.headers["WWW-Authenticate"] == 'Bearer error="invalid_request"'
    # another user's session: 403, and it stays alive
    bobs = step.get("/auth/sessions", headers=bearer(bob)).json()[0]["id"]
    other = step.delete(f"/auth/sessions/{bobs}", headers=bearer(alice))
    assert (other.status_code, other.json()) == (403, {"detail": "SESSION_OF_ANOTHER_USER"})
    assert step.get("/auth/sessions", headers=bearer(bob)).status_code == 200
    # unknown, not a UUID, the trailing-slash form: 404, nothing changes
    for path in (f"/auth/sessions/{uuid.uuid4()}", "/auth/sessions/42", "/auth/sessions/"):
        missing = step.delete(path, headers=bearer(alice))
        assert (missing.status_code, missing.json()) == (404, {"detail": "SESSION_NOT_FOUND"})
    assert step.get("/auth/sessions", headers=bearer(alice)).status_code == 200
    # authentication first: an anonymous caller learns nothing about an id
    assert step.delete(f"/auth/sessions/{bobs}").status_code == 401


def test_own_routes_read_the_callers_session() -> None:
    tutorial = fresh("docs_src.tutorial_fastapi.own_routes")
    with TestClient(tutorial.app) as client:
        token = log_in(client, ALICE)
        me = client.get("/me", headers=bearer(token))
        assert me.status_code == 200
        assert me.json()["user_id"] == "alice"
        listed = client.get("/auth/sessions", headers=bearer(token)).json()
        assert me.json()["session_id"] == listed[0]["id"]
        anonymous = client.get("/me")
        assert (anonymous.status_code, anonymous.headers["WWW-Authenticate"]) == (401, "Bearer")
        assert client.post("/auth/logout", headers=bearer(token)).status_code == 204
        gone = client.get("/me", headers=bearer(token))
        assert gone.status_code == 401
        assert gone.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_store_that_is_down_is_a_503_never_a_401(monkeypatch: pytest.MonkeyPatch) -> None:
    """docs_src/tutorial_fastapi/store_down.py with its Redis unreachable."""
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{closed_port()}/0")
    tutorial = fresh("docs_src.tutorial_fastapi.store_down")
    with TestClient(tutorial.app) as client:
        wrong = client.post("/auth/login", json={**ALICE, "password": "guess"})
        assert (wrong.status_code, wrong.json()) == (400, {"detail": "LOGIN_BAD_CREDENTIALS"})
        answers = [
            client.post("/auth/login", json=ALICE),  # store_unavailable_handler
            client.get("/me", headers=bearer("some-token")),
            client.get("/auth/sessions", headers=bearer("some-token")),
            client.delete("/auth/sessions", headers=bearer("some-token")),
        ]
        for reply in answers:
            assert reply.status_code == 503
            assert reply.json() == {"detail": "SESSION_STORE_UNAVAILABLE"}
            assert reply.headers["Retry-After"] == "5"
        assert client.get("/me").status_code == 401  # no token: no store look-up at all


def test_the_sync_test_of_the_page_passes() -> None:
    fresh("docs_src.tutorial_fastapi.own_routes")
    fresh("docs_src.tutorial_fastapi.test_sync").test_me()


@pytest.mark.anyio
async def test_the_async_test_of_the_page_passes() -> None:
    fresh("docs_src.tutorial_fastapi.own_routes")
    await fresh("docs_src.tutorial_fastapi.test_async").test_me()


def test_a_server_store_needs_await_in_sync_code(tmp_path: Path) -> None:
    store = SQLAlchemySessionDatabase(f"sqlite:///{tmp_path}/sessions.sqlite3")
    with pytest.raises(SyncUsageError, match=r"await manager\.create_session"):
        SessionManager(session_db=store).create_session("alice", "a-test-token")


@pytest.mark.anyio
async def test_a_server_store_needs_await_in_async_code(tmp_path: Path) -> None:
    store = SQLAlchemySessionDatabase(f"sqlite+aiosqlite:///{tmp_path}/sessions.sqlite3")
    await store.create_table()
    manager = SessionManager(session_db=store)
    try:
        pending = manager.create_session("alice", "a-test-token")
        with pytest.raises(SyncUsageError, match=r"await manager\.create_session"):
            _ = pending.user_id
        assert await manager.get_sessions("alice") == []  # nothing until it is awaited
        session = await pending
        assert await manager.get_sessions("alice") == [session]
    finally:
        await store.aclose()


def test_an_already_expired_session_is_never_valid() -> None:
    tutorial = fresh("docs_src.tutorial_fastapi.own_routes")
    past = tutorial.manager.create_session("alice", "old-token").created_at - timedelta(1)
    tutorial.manager.create_session("alice", "expired-token", expires_at=past)
    with TestClient(tutorial.app) as client:
        assert client.get("/me", headers=bearer("expired-token")).status_code == 401
        assert len(client.get("/auth/sessions", headers=bearer("old-token")).json()) == 1


@pytest.mark.anyio
async def test_the_python_api_of_the_page() -> None:
    """The signatures in the table: refresh_token needs refresh tokens on; reason= is checked."""

    class Audited(SessionManager):
        ended: list[tuple[str, EndReason]] = []

        async def on_after_end(self, session: Session, reason: EndReason) -> None:
            await super().on_after_end(session, reason)
            self.ended.append((str(session.user_id), reason))

    manager = Audited()
    with pytest.raises(ConfigurationError):
        await manager.create_session("alice", "t-0", refresh_token=True)
    one = await manager.create_session("alice", "t-1", user_agent=FIREFOX, ip_address="192.0.2.7")
    assert (one.user_agent, one.ip_address) == (FIREFOX, "192.0.2.7")
    assert one.device is not None
    kept = await manager.create_session("alice", "t-2")
    await manager.create_session("alice", "t-3")
    with pytest.raises(UnknownEndReasonError):
        await manager.revoke_session(one.id, reason="bored")
    assert len(await manager.get_sessions("alice")) == 3  # nothing ended
    assert await manager.revoke_session(one.id, reason="revoked_by_admin") == one
    ended = await manager.revoke_all("alice", keep=(kept.id,), reason=EndReason.REVOKED_BY_USER)
    assert len(ended) == 1
    assert [s.id for s in await manager.get_sessions("alice")] == [kept.id]
    assert manager.ended == [
        ("alice", EndReason.REVOKED_BY_ADMIN),
        ("alice", EndReason.REVOKED_BY_USER),
    ]


@pytest.mark.anyio
async def test_the_settings_of_the_page() -> None:
    manager = fresh("docs_src.tutorial_fastapi.settings").manager
    first = await manager.create_session("alice", "token-0")
    assert first.expires_at is not None
    assert first.expires_at - first.created_at == timedelta(days=30)  # lifetime
    far = first.created_at + timedelta(days=90)
    capped = await manager.create_session("alice", "token-1", expires_at=far)
    assert capped.expires_at == capped.created_at + timedelta(days=30)  # only shortens
    for n in range(2, 5):
        await manager.create_session("alice", f"token-{n}")
    with pytest.raises(SessionLimitError):
        await manager.create_session("alice", "token-5")  # limit_policy="refuse"
    assert len(await manager.get_sessions("alice")) == 5
    assert len(await manager.get_sessions("bob")) == 0


@pytest.mark.parametrize(
    "bad",
    [
        {"max_sessions_per_user": 0},
        {"max_sessions_per_user": -1},
        {"max_sessions_per_user": 2.5},
        {"limit_policy": "newest_wins"},
    ],
)
def test_bad_settings_fail_at_construction(bad: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        SessionManager(**bad)  # type: ignore[arg-type]


USER = uuid.UUID("5f7c8ec7-c33c-4c00-8bba-fe82a1b2c3d4")


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        (USER, USER),
        (str(USER), USER),
        (str(USER).upper(), str(USER).upper()),
        ("alice", "alice"),
        ("auth0|5f7c8ec7c33c6c004bbafe82", "auth0|5f7c8ec7c33c6c004bbafe82"),
        ("42", "42"),
        (42, "42"),
        ("x" * 255, "x" * 255),
    ],
)
def test_user_ids_are_opaque(given: object, kept: object) -> None:
    assert coerce_user_id(given) == kept  # type: ignore[arg-type]
    assert type(coerce_user_id(given)) is type(kept)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [None, "", "x" * 256, "a\x00b", "a\nb", 4.2, b"alice", True])
def test_other_user_ids_are_refused(bad: object) -> None:
    with pytest.raises(InvalidUserIdError) as refused:
        coerce_user_id(bad)  # type: ignore[arg-type]
    assert isinstance(refused.value, ValueError)


@pytest.mark.anyio
async def test_a_user_is_one_user_however_its_id_is_given() -> None:
    manager = SessionManager()
    await manager.create_session(USER, "as-uuid")
    await manager.create_session(str(USER), "as-string")
    await manager.create_session(42, "as-int")
    await manager.create_session("42", "as-decimal-string")
    assert len(await manager.get_sessions(USER)) == 2
    sessions = await manager.get_sessions(42)
    assert len(sessions) == 2
    assert {str(s.user_id) for s in sessions} == {"42"}
    assert all(s.token == "" for s in sessions)  # read back from the store: no token


# --- docs/tutorial/starlette.md --------------------------------------------------------


def test_starlette_with_the_manager() -> None:
    """docs_src/tutorial_starlette/with_manager.py: request.user, @requires, request_session."""
    tutorial = fresh("docs_src.tutorial_starlette.with_manager")
    with TestClient(tutorial.app) as client:
        assert client.get("/me").status_code == 403  # @requires answers 403 to anonymous
        anonymous = client.get("/session")
        assert (anonymous.status_code, anonymous.json()) == (401, {"detail": "anonymous"})
        token = client.post("/login", headers={"User-Agent": FIREFOX}).text
        assert client.get("/me", headers=bearer(token)).text == "alice"
        session = client.get("/session", headers=bearer(token)).json()
        assert session["user_agent"] == FIREFOX
        with client.websocket_connect("/greet", headers=bearer(token)) as websocket:
            assert websocket.receive_text() == "hello alice"
        with client.websocket_connect("/greet") as websocket:
            assert websocket.receive_text() == "hello anonymous"
        # a bad token leaves the request anonymous (reject_invalid is off)
        assert client.get("/session", headers=bearer("nope")).status_code == 401
        assert client.get("/me", headers=bearer("nope")).status_code == 403


@pytest.mark.anyio
async def test_starlette_with_the_manager_lists_what_it_made() -> None:
    tutorial = fresh("docs_src.tutorial_starlette.with_manager")
    transport = httpx2.ASGITransport(tutorial.app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://test") as client:
        token = (await client.post("/login")).text
        mine = (await client.get("/session", headers=bearer(token))).json()
    assert [str(s.id) for s in await tutorial.manager.get_sessions("alice")] == [mine["id"]]


def test_raw_asgi_reads_the_scope() -> None:
    """examples/raw_asgi_app.py (also run by test_examples.py): request_session(scope)."""
    example = fresh("examples.raw_asgi_app")
    with TestClient(example.app) as client:
        assert client.get("/").status_code == 401
        token = client.post("/login").text
        assert client.get("/", headers=bearer(token)).text.startswith("user ")
        assert client.get("/", headers=bearer("unknown")).status_code == 401  # anonymous


def test_reject_invalid_refuses_bad_tokens_and_lets_anonymous_through() -> None:
    """docs_src/tutorial_starlette/reject_invalid.py: 401 over HTTP, 1008 for a WebSocket."""
    tutorial = fresh("docs_src.tutorial_starlette.reject_invalid")
    with TestClient(tutorial.app) as client:
        assert client.get("/hello").text == "hello anonymous"  # no token: public routes work
        token = client.post("/login").text
        user = client.get("/hello", headers=bearer(token)).text.removeprefix("hello ")
        uuid.UUID(user)
        for bad in ("unknown-token", "not a b64token"):
            refused = client.get("/hello", headers=bearer(bad))
            assert (refused.status_code, refused.json()) == (401, {"detail": "INVALID_TOKEN"})
            assert refused.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
        refused_handshake = client.websocket_connect("/greet", headers=bearer("unknown-token"))
        with pytest.raises(WebSocketDisconnect) as closed, refused_handshake:
            pass
        assert closed.value.code == 1008
        with client.websocket_connect("/greet", headers=bearer(token)) as websocket:
            assert websocket.receive_text() == f"hello {user}"
        with client.websocket_connect("/greet") as websocket:
            assert websocket.receive_text() == "hello anonymous"


def test_starlettes_own_authentication_middleware() -> None:
    """docs_src/tutorial_starlette/auth_backend.py: SessionAuthBackend and get_auth_result."""
    tutorial = fresh("docs_src.tutorial_starlette.auth_backend")
    tutorial.manager.create_session("alice", "alice-token")
    with TestClient(tutorial.app) as client:
        assert client.get("/whoami", headers=bearer("alice-token")).json() == {"user_id": "alice"}
        for headers, reason in [
            ({}, "missing"),
            (bearer("unknown-token"), "invalid"),
            (bearer("not a b64token"), "malformed"),
            ({"Authorization": "Basic YWxpY2U6cGFzcw=="}, "other_scheme"),
        ]:
            anonymous = client.get("/whoami", headers=headers)
            assert anonymous.status_code == 401
            assert anonymous.json() == {"detail": "anonymous", "reason": reason}


def test_starlettes_middleware_answers_503_when_the_store_is_down() -> None:
    tutorial = fresh("docs_src.tutorial_starlette.auth_backend")
    down = RedisSessionDatabase(f"redis://127.0.0.1:{closed_port()}/0")
    app = Starlette(
        routes=tutorial.app.routes,
        middleware=[
            Middleware(
                AuthenticationMiddleware,
                backend=SessionAuthBackend(down),
                on_error=SessionAuthBackend.on_error,
            )
        ],
    )
    with TestClient(app) as client:
        reply = client.get("/whoami", headers=bearer("some-token"))
    assert (reply.status_code, reply.json()) == (503, {"detail": "SESSION_STORE_UNAVAILABLE"})
    assert reply.headers["Retry-After"] == "5"
