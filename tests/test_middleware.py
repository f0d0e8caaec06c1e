"""BearerAuthMiddleware and SessionAuthBackend, through FastAPI, Starlette and raw ASGI."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.authentication import requires
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.types import Message, Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from asgi_kit import (
    AnonymousReason,
    AuthResult,
    BearerAuthMiddleware,
    InMemorySessionDatabase,
    Session,
    SessionAuthBackend,
    SessionResolver,
    StoreUnavailableError,
    get_auth_result,
    request_session,
    utcnow,
)
from fastapi_users.extensions.session_manager import SessionManager

from .asgi import call
from .conftest import bearer


class CountingStore(InMemorySessionDatabase):
    """The in-memory store, counting the look-ups and writes made through it."""

    def __init__(self) -> None:
        super().__init__()
        self.lookups = 0
        self.touches = 0

    async def get_by_token_digest(self, digest: str) -> Any:
        self.lookups += 1
        return await super().get_by_token_digest(digest)

    async def touch(self, session: Any, last_seen_at: Any) -> None:
        self.touches += 1
        await super().touch(session, last_seen_at)


class DownStore(InMemorySessionDatabase):
    """A store whose server is unreachable."""

    async def get_by_token_digest(self, digest: str) -> Any:
        raise StoreUnavailableError("connection refused")


@requires("authenticated")
async def protected(request: Any) -> PlainTextResponse:
    return PlainTextResponse(request.user.identity)


async def whoami(request: Any) -> JSONResponse:
    result = get_auth_result(request)
    return JSONResponse(
        {
            "authenticated": request.user.is_authenticated,
            "identity": request.user.identity if request.user.is_authenticated else None,
            "display": request.user.display_name,
            "scopes": request.auth.scopes,
            "error": result.error if result else None,
            "session": str(request_session(request).id) if request_session(request) else None,
        }
    )


async def ws_echo(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_text(websocket.user.identity if websocket.user.is_authenticated else "-")
    await websocket.close()


ROUTES = [Route("/", whoami), Route("/protected", protected), WebSocketRoute("/ws", ws_echo)]


def starlette_app(store: InMemorySessionDatabase, **options: Any) -> Starlette:
    return Starlette(
        routes=ROUTES, middleware=[Middleware(BearerAuthMiddleware, session_db=store, **options)]
    )


@pytest.fixture
def session_of(memory_store: InMemorySessionDatabase) -> Callable[[], tuple[uuid.UUID, str]]:
    manager = SessionManager(session_db=memory_store)

    def _new() -> tuple[uuid.UUID, str]:
        user, token = uuid.uuid4(), uuid.uuid4().hex
        manager.create_session(user, token)
        return user, token

    return _new


def test_authenticated_request_gets_user_auth_and_session(
    memory_store: InMemorySessionDatabase, session_of: Callable[[], tuple[uuid.UUID, str]]
) -> None:
    user, token = session_of()
    with TestClient(starlette_app(memory_store)) as client:
        body = client.get("/", headers=bearer(token)).json()
        assert body["authenticated"] is True
        assert body["identity"] == body["display"] == str(user)
        assert body["scopes"] == ["authenticated"]
        assert body["error"] is None
        assert body["session"] is not None
        assert client.get("/protected", headers=bearer(token)).text == str(user)


@pytest.mark.parametrize(
    ("headers", "error"),
    [
        ({}, AnonymousReason.MISSING),
        ({"Authorization": "Basic YTpi"}, AnonymousReason.OTHER_SCHEME),
        ({"Authorization": "Bearer"}, AnonymousReason.EMPTY),
        ({"Authorization": "Bearer a b"}, AnonymousReason.MALFORMED),
        ({"Authorization": "Bearer unknown"}, AnonymousReason.INVALID),
    ],
)
def test_anonymous_by_default_with_the_reason_kept(
    memory_store: InMemorySessionDatabase, headers: dict[str, str], error: AnonymousReason
) -> None:
    with TestClient(starlette_app(memory_store)) as client:
        body = client.get("/", headers=headers).json()
        assert body["authenticated"] is False
        assert body["scopes"] == []
        assert body["error"] == error.value
        assert body["session"] is None
        assert client.get("/protected", headers=headers).status_code == 403  # Starlette's @requires


def test_revoked_and_expired_tokens_are_anonymous(
    memory_store: InMemorySessionDatabase,
) -> None:
    manager = SessionManager(session_db=memory_store)
    user = uuid.uuid4()
    revoked = manager.create_session(user, "revoked")
    manager.create_session(user, "expiring", expires_at=utcnow() + timedelta(milliseconds=50))
    with TestClient(starlette_app(memory_store)) as client:
        client.portal.call(manager.revoke_session, revoked.id)  # type: ignore[union-attr]
        assert client.get("/", headers=bearer("revoked")).json()["error"] == "invalid"
        import time

        time.sleep(0.06)
        assert client.get("/", headers=bearer("expiring")).json()["error"] == "invalid"


def test_reject_invalid_answers_401_itself(
    memory_store: InMemorySessionDatabase, session_of: Callable[[], tuple[uuid.UUID, str]]
) -> None:
    _, token = session_of()
    with TestClient(starlette_app(memory_store, reject_invalid=True)) as client:
        r = client.get("/", headers=bearer("unknown"))
        assert r.status_code == 401
        assert r.headers["www-authenticate"] == 'Bearer error="invalid_token"'
        assert r.json() == {"detail": "INVALID_TOKEN"}
        assert client.get("/").json()["authenticated"] is False  # no token: still public
        assert client.get("/", headers=bearer(token)).json()["authenticated"] is True


def test_websocket_user_and_rejection(
    memory_store: InMemorySessionDatabase, session_of: Callable[[], tuple[uuid.UUID, str]]
) -> None:
    user, token = session_of()
    with TestClient(starlette_app(memory_store)) as client:
        with client.websocket_connect("/ws", headers=bearer(token)) as ws:
            assert ws.receive_text() == str(user)
        with client.websocket_connect("/ws", headers=bearer("nope")) as ws:
            assert ws.receive_text() == "-"
    with (
        TestClient(starlette_app(memory_store, reject_invalid=True)) as client,
        pytest.raises(WebSocketDisconnect) as closed,
        client.websocket_connect("/ws", headers=bearer("nope")),
    ):
        pass
    assert closed.value.code == 1008


def test_unreachable_store_is_503_not_401() -> None:
    store = DownStore()
    with TestClient(starlette_app(store)) as client:
        r = client.get("/", headers=bearer("whatever"))
        assert r.status_code == 503
        assert r.json() == {"detail": "SESSION_STORE_UNAVAILABLE"}
        assert client.get("/").json()["authenticated"] is False  # no token: no look-up
        with (
            pytest.raises(WebSocketDisconnect) as closed,
            client.websocket_connect("/ws", headers=bearer("x")),
        ):
            pass
        assert closed.value.code == 1013


@pytest.mark.anyio
async def test_lifespan_and_other_scopes_pass_through_untouched() -> None:
    seen: list[Scope] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope)

    middleware = BearerAuthMiddleware(app, session_db=DownStore())
    scope: Scope = {"type": "lifespan", "asgi": {"version": "3.0"}}

    async def receive() -> Message:
        return {"type": "lifespan.startup"}

    async def send(message: Message) -> None:
        pass

    await middleware(scope, receive, send)
    assert seen == [{"type": "lifespan", "asgi": {"version": "3.0"}}]


@pytest.mark.anyio
async def test_the_resolver_answers_the_session_or_why_there_is_none() -> None:
    store = InMemorySessionDatabase()
    manager = SessionManager(session_db=store)
    session = await manager.create_session(uuid.uuid4(), "live-token")
    revoked = await manager.create_session(uuid.uuid4(), "revoked-token")
    await manager.revoke_session(revoked.id)
    resolver = SessionResolver(store)
    cases = {
        b"Bearer live-token": session,
        b"bearer  live-token": session,  # the full grammar: other casing, two spaces
        b"Bearer revoked-token": AnonymousReason.INVALID,
        b"Bearer": AnonymousReason.EMPTY,
        b"Basic dXNlcjpwdw==": AnonymousReason.OTHER_SCHEME,
        b"Bearer a b": AnonymousReason.MALFORMED,
    }
    for value, expected in cases.items():
        found = await resolver.authenticate([(b"host", b"x"), (b"authorization", value)])
        assert found == expected, value
        result = AuthResult.of(found)
        assert result == (
            (expected, None) if isinstance(expected, Session) else (None, expected)
        ), value
    assert await resolver.authenticate([]) is AnonymousReason.MISSING
    twice = [(b"authorization", b"Bearer live-token")] * 2
    assert await resolver.authenticate(twice) is AnonymousReason.REPEATED


def test_get_session_without_middleware_fails_loudly() -> None:
    async def endpoint(request: Any) -> PlainTextResponse:
        request_session(request)
        return PlainTextResponse("unreachable")

    app = Starlette(routes=[Route("/", endpoint)])
    with (
        TestClient(app) as client,
        pytest.raises(RuntimeError, match="BearerAuthMiddleware must be installed"),
    ):
        client.get("/")


def test_router_reuses_the_middlewares_session_without_a_second_lookup() -> None:
    store = CountingStore()
    manager = SessionManager(session_db=store)
    manager.create_session(uuid.uuid4(), "tok")
    app = FastAPI()
    app.add_middleware(BearerAuthMiddleware, session_db=store)
    app.include_router(manager.router, prefix="/auth/sessions")
    with TestClient(app) as client:
        assert client.get("/auth/sessions", headers=bearer("tok")).status_code == 200
        assert store.lookups == 1
        r = client.get("/auth/sessions", headers=bearer("bad"))
        assert (r.status_code, store.lookups) == (401, 2)
        assert r.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    bare = FastAPI()
    bare.include_router(manager.router, prefix="/auth/sessions")
    with TestClient(bare) as client:  # without the middleware the router resolves itself
        assert client.get("/auth/sessions", headers=bearer("tok")).status_code == 200
        assert store.lookups == 3


def test_last_seen_is_written_at_most_once_per_interval() -> None:
    store = CountingStore()
    manager = SessionManager(session_db=store)
    session = manager.create_session(uuid.uuid4(), "tok")
    with TestClient(starlette_app(store, touch_interval=60)) as client:
        for _ in range(50):
            assert client.get("/", headers=bearer("tok")).json()["authenticated"]
        assert store.touches == 0
        client.portal.call(store.touch, session, utcnow() - timedelta(seconds=61))  # type: ignore[union-attr]
        store.touches = 0
        for _ in range(50):
            client.get("/", headers=bearer("tok"))
        assert store.touches == 1


def test_starlette_authentication_backend_adapter(
    memory_store: InMemorySessionDatabase, session_of: Callable[[], tuple[uuid.UUID, str]]
) -> None:
    user, token = session_of()
    backend = SessionAuthBackend(memory_store)
    app = Starlette(
        routes=ROUTES,
        middleware=[
            Middleware(AuthenticationMiddleware, backend=backend, on_error=backend.on_error)
        ],
    )
    with TestClient(app) as client:
        assert client.get("/protected", headers=bearer(token)).text == str(user)
        body = client.get("/", headers=bearer(token)).json()
        assert body["session"] is not None
        assert body["scopes"] == ["authenticated"]
        assert body["identity"] == str(user)
        anonymous = client.get("/", headers=bearer("nope")).json()
        assert (anonymous["authenticated"], anonymous["error"]) == (False, "invalid")
    down = SessionAuthBackend(DownStore())
    app = Starlette(
        routes=ROUTES,
        middleware=[Middleware(AuthenticationMiddleware, backend=down, on_error=down.on_error)],
    )
    with TestClient(app) as client:
        r = client.get("/", headers=bearer("x"))
        assert (r.status_code, r.json()) == (503, {"detail": "SESSION_STORE_UNAVAILABLE"})


def test_raw_asgi_app_reads_the_session_from_the_scope(
    memory_store: InMemorySessionDatabase, session_of: Callable[[], tuple[uuid.UUID, str]]
) -> None:
    user, token = session_of()

    async def raw(scope: Scope, receive: Receive, send: Send) -> None:
        session = request_session(scope)
        body = str(session.user_id).encode() if session else b"anonymous"
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    client = TestClient(BearerAuthMiddleware(raw, session_db=memory_store))  # no lifespan
    assert client.get("/", headers=bearer(token)).text == str(user)
    assert client.get("/").text == "anonymous"


BAD_HEADERS = [
    [(b"authorization", b"Bearer GOOD"), (b"authorization", b"Bearer GOOD")],
    [(b"authorization", b"Bearer \xe9\xff\xfe")],
    [(b"authorization", b"Bearer " + b"A" * 65_536)],
    [(b"authorization", b"Bearer")],
    [(b"authorization", b"Bearer\tGOOD")],
    [(b"authorization", b"Bearer \t GOOD")],
    [(b"authorization", b"Bearer GO OD")],
]


@pytest.mark.anyio
@pytest.mark.parametrize("headers", BAD_HEADERS)
async def test_bad_headers_are_anonymous_or_401_never_500(
    memory_store: InMemorySessionDatabase, headers: list[tuple[bytes, bytes]]
) -> None:
    token = "good-token"
    await SessionManager(session_db=memory_store).create_session(uuid.uuid4(), token)
    headers = [(n, v.replace(b"GOOD", token.encode())) for n, v in headers]
    lenient = await call(starlette_app(memory_store), headers)
    assert (lenient.status, lenient.json()["authenticated"]) == (200, False)
    strict = await call(starlette_app(memory_store, reject_invalid=True), headers)
    assert strict.status in (200, 401, 400)  # 400: two Authorization headers
    if strict.status == 200:
        assert strict.json()["authenticated"] is False


def fastapi_me_app(store: InMemorySessionDatabase) -> FastAPI:
    app = FastAPI()
    app.add_middleware(BearerAuthMiddleware, session_db=store)

    @app.get("/")
    async def me(request: Request) -> dict[str, str | None]:
        return {"identity": request.user.identity if request.user.is_authenticated else None}

    return app


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    prefix=st.sampled_from([b"", b"Bearer ", b"bearer  ", b"Bearer\t", b"Basic "]),
    noise=st.binary(max_size=80),
    suffix=st.sampled_from([b"", b" ", b"\t", b"=", b" x"]),
    extra=st.booleans(),
)
@pytest.mark.anyio
async def test_hypothesis_header_bytes_never_crash_nor_impersonate(
    prefix: bytes, noise: bytes, suffix: bytes, extra: bool
) -> None:
    store = InMemorySessionDatabase()
    manager = SessionManager(session_db=store)
    alice = await manager.create_session(uuid.uuid4(), "alice-token")
    await manager.create_session(uuid.uuid4(), "bob-token")
    headers = [(b"authorization", prefix + noise + suffix)]
    if extra:
        headers.append((b"authorization", b"Bearer alice-token"))
    reply = await call(fastapi_me_app(store), headers)
    assert reply.status == 200
    identity = reply.json()["identity"]
    if identity is not None:  # only a header that really is alice's token may say alice
        assert identity == str(alice.user_id)
        assert not extra
        assert headers[0][1].strip(b" \t").split(b" ")[-1] == b"alice-token"
