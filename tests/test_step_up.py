"""Step-up (RFC 9470) over HTTP: sensitive actions ask for a recent sign-in.

``manager.recent_authentication(max_age)`` and ``RecentAuthentication`` (Starlette, raw
ASGI) answer a session whose user last proved who they are too long ago with 401
``REAUTHENTICATION_REQUIRED`` and RFC 9470's challenge; ``POST /reauthenticate`` (the
password, checked by the app's user manager) and ``manager.reauthenticated`` move that one
session's ``authenticated_at``; ``revoke_all_max_age`` guards "log out everywhere".
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import math
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import anyio
import httpx2
import pytest
from fastapi import Depends, FastAPI, Request
from fastapi.security import OAuth2PasswordRequestForm
from fastapi.testclient import TestClient
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from asgi_kit import (
    BearerAuthMiddleware,
    ConfigurationError,
    ErrorCode,
    InMemorySessionDatabase,
    RecentAuthentication,
    Session,
    StoreUnavailableError,
    generate_token,
    store_unavailable_handler,
    utcnow,
)
from fastapi_users.extensions.session_manager import (
    ReauthenticationLimit,
    ReauthenticationLimitError,
    SessionManager,
)

from .conftest import bearer

SECRET = "a-test-secret-of-at-least-32-bytes!"
PASSWORD = "correct horse battery staple"
REAUTH = "/auth/sessions/reauthenticate"
CHALLENGE = (
    'Bearer error="insufficient_user_authentication", '
    'error_description="A more recent authentication is required", max_age="{}"'
)


@dataclass
class User:
    id: uuid.UUID
    email: str
    salt: bytes
    hashed: bytes
    is_active: bool = True


def _hash(password: str, salt: bytes) -> bytes:
    return hashlib.pbkdf2_hmac("sha256", password.encode(), salt, 1000)


class Users:
    """A user manager shaped like FastAPI Users' (``parse_id``, ``get``, ``authenticate``),
    with real password hashes: the app's collaborator, not the code under test."""

    def __init__(self) -> None:
        self.by_id: dict[uuid.UUID, User] = {}
        self.checks = 0

    def add(self, email: str, password: str = PASSWORD, *, active: bool = True) -> User:
        salt = uuid.uuid4().bytes
        user = User(uuid.uuid4(), email, salt, _hash(password, salt), active)
        self.by_id[user.id] = user
        return user

    def parse_id(self, value: Any) -> uuid.UUID:
        return uuid.UUID(str(value))

    async def get(self, id: uuid.UUID) -> User:
        return self.by_id[id]

    async def authenticate(self, credentials: OAuth2PasswordRequestForm) -> User | None:
        self.checks += 1
        for user in self.by_id.values():
            if user.email == credentials.username:
                candidate = _hash(credentials.password, user.salt)
                return user if hmac.compare_digest(candidate, user.hashed) else None
        return None


def app_of(manager: SessionManager, users: Users, *, max_age: float = 300) -> FastAPI:
    """The README's shape, with a password change that asks for a recent sign-in."""
    app = FastAPI()
    app.add_middleware(BearerAuthMiddleware, session_db=manager)
    app.add_exception_handler(StoreUnavailableError, store_unavailable_handler)
    app.include_router(manager.router, prefix="/auth/sessions")
    app.include_router(manager.get_reauthenticate_router(lambda: users), prefix="/auth/sessions")
    recent = manager.recent_authentication(max_age)

    @app.post("/login/{user_id}")
    async def login(user_id: uuid.UUID, request: Request) -> dict[str, str]:
        session = await manager.login(request, user_id)
        return {"token": session.token, "id": str(session.id)}

    @app.post("/account/password")
    async def change_password(session: Session = Depends(recent)) -> dict[str, str]:
        return {"changed_by": str(session.id)}

    return app


def aged(store: InMemorySessionDatabase, user: User, seconds: float) -> tuple[Session, str]:
    """A session of ``user`` whose last proof of identity is ``seconds`` old; its token."""
    token = generate_token()
    at = utcnow() - timedelta(seconds=seconds)
    session = Session(user_id=user.id, token=token, created_at=at, authenticated_at=at)
    asyncio.run(store.create(session))  # the in-memory store never suspends
    return session, token


@pytest.fixture
def store() -> InMemorySessionDatabase:
    return InMemorySessionDatabase()


@pytest.fixture
def users() -> Users:
    return Users()


@pytest.fixture
def manager(store: InMemorySessionDatabase) -> SessionManager:
    return SessionManager(session_db=store)


@pytest.fixture
def client(manager: SessionManager, users: Users) -> TestClient:
    return TestClient(app_of(manager, users))


def test_a_fresh_login_may_act_and_an_old_one_gets_rfc_9470s_challenge(
    client: TestClient, store: InMemorySessionDatabase, users: Users
) -> None:
    alice = users.add("alice@example.com")
    fresh = client.post(f"/login/{alice.id}").json()
    r = client.post("/account/password", headers=bearer(fresh["token"]))
    assert r.status_code == 200
    assert r.json() == {"changed_by": fresh["id"]}

    _, token = aged(store, alice, 301)
    r = client.post("/account/password", headers=bearer(token))
    assert r.status_code == 401
    assert r.json() == {"detail": "REAUTHENTICATION_REQUIRED"}
    assert r.headers["www-authenticate"] == CHALLENGE.format(300)
    # Just inside the window still passes.
    _, recent = aged(store, alice, 290)
    assert client.post("/account/password", headers=bearer(recent)).status_code == 200


def test_an_old_session_acts_again_after_reauthenticating_with_its_password(
    client: TestClient, store: InMemorySessionDatabase, users: Users
) -> None:
    alice = users.add("alice@example.com")
    session, token = aged(store, alice, 3600)
    other, other_token = aged(store, alice, 3600)  # alice's other device
    assert client.post("/account/password", headers=bearer(token)).status_code == 401

    r = client.post(REAUTH, json={"password": PASSWORD}, headers=bearer(token))
    assert r.status_code == 204
    assert r.content == b""
    assert client.post("/account/password", headers=bearer(token)).status_code == 200
    # Only the session that proved it: the user's other device still has to.
    assert client.post("/account/password", headers=bearer(other_token)).status_code == 401
    listed = {s["id"]: s for s in client.get("/auth/sessions", headers=bearer(token)).json()}
    assert listed[str(other.id)]["authenticated_at"] == listed[str(other.id)]["created_at"]
    assert listed[str(session.id)]["authenticated_at"] > listed[str(session.id)]["created_at"]


def test_a_wrong_password_is_a_400_that_changes_nothing_and_ends_nothing(
    client: TestClient, store: InMemorySessionDatabase, users: Users
) -> None:
    alice = users.add("alice@example.com")
    session, token = aged(store, alice, 3600)
    r = client.post(REAUTH, json={"password": "wrong"}, headers=bearer(token))
    assert r.status_code == 400
    assert r.json() == {"detail": "REAUTHENTICATION_BAD_CREDENTIALS"}
    stored = asyncio.run(store.get(session.id))
    assert stored is not None
    assert stored.authenticated_at == session.authenticated_at
    assert client.get("/auth/sessions", headers=bearer(token)).status_code == 200
    assert client.post("/account/password", headers=bearer(token)).status_code == 401


def test_another_users_password_does_not_reauthenticate(
    client: TestClient, store: InMemorySessionDatabase, users: Users
) -> None:
    alice = users.add("alice@example.com")
    users.add("mallory@example.com", "mallorys own password")
    _, token = aged(store, alice, 3600)
    r = client.post(REAUTH, json={"password": "mallorys own password"}, headers=bearer(token))
    assert r.status_code == 400
    assert client.post("/account/password", headers=bearer(token)).status_code == 401


def test_an_inactive_or_vanished_user_cannot_reauthenticate(
    client: TestClient, store: InMemorySessionDatabase, users: Users
) -> None:
    gone = users.add("gone@example.com")
    inactive = users.add("inactive@example.com", active=False)
    for user in (gone, inactive):
        _, token = aged(store, user, 3600)
        if user is gone:
            del users.by_id[user.id]
        r = client.post(REAUTH, json={"password": PASSWORD}, headers=bearer(token))
        assert r.status_code == 400, user.email


def test_five_wrong_passwords_then_429_even_for_the_right_one_per_session(
    client: TestClient, store: InMemorySessionDatabase, users: Users
) -> None:
    alice = users.add("alice@example.com")
    _, token = aged(store, alice, 3600)
    _, other_token = aged(store, alice, 3600)
    for _ in range(5):
        r = client.post(REAUTH, json={"password": "guess"}, headers=bearer(token))
        assert r.status_code == 400
    checks = users.checks
    r = client.post(REAUTH, json={"password": PASSWORD}, headers=bearer(token))
    assert r.status_code == 429
    assert r.json() == {"detail": "REAUTHENTICATION_RATE_LIMITED"}
    assert 1 <= int(r.headers["retry-after"]) <= 900
    assert users.checks == checks  # the password was not even checked
    assert client.post("/account/password", headers=bearer(token)).status_code == 401
    assert client.get("/auth/sessions", headers=bearer(token)).status_code == 200  # not ended
    # The limit is the session's: the user's other session may still prove it.
    r = client.post(REAUTH, json={"password": PASSWORD}, headers=bearer(other_token))
    assert r.status_code == 204


def test_the_limit_forgets_failures_older_than_its_window_and_after_a_success() -> None:
    limit = ReauthenticationLimit(attempts=3, window=60)
    sid = uuid.uuid4()
    for moment in (0.0, 10.0, 20.0):
        limit.attempt(sid, now=moment)
    with pytest.raises(ReauthenticationLimitError) as caught:
        limit.attempt(sid, now=30.0)
    assert caught.value.retry_after == 30  # when the attempt at 0 leaves the window
    limit.attempt(sid, now=60.5)  # one slot free again (the refused one was not counted)
    with pytest.raises(ReauthenticationLimitError):
        limit.attempt(sid, now=61.0)
    limit.forget(sid)
    limit.attempt(sid, now=61.0)
    limit.attempt(uuid.uuid4(), now=61.0)  # another session's count is its own


@pytest.mark.anyio
async def test_a_burst_of_guesses_sent_at_once_gets_five_password_checks() -> None:
    users = SlowUsers()
    alice = users.add("alice@example.com")
    manager = SessionManager()
    app = app_of(manager, users)
    session = await manager.create_session(alice.id, generate_token())
    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://testserver") as http:

        async def guess(n: int) -> int:
            body = {"password": f"guess {n}"}
            r = await http.post(REAUTH, json=body, headers=bearer(session.token))
            return r.status_code

        statuses = await asyncio.gather(*(guess(n) for n in range(20)))
    assert sorted(statuses) == [400] * 5 + [429] * 15
    assert users.checks == 5


class SlowUsers(Users):
    """``Users`` whose password check takes a while, as a real hash does (argon2: ~0.1 s)."""

    async def authenticate(self, credentials: OAuth2PasswordRequestForm) -> User | None:
        await anyio.sleep(0.05)
        return await super().authenticate(credentials)


def test_reauthentication_is_for_the_callers_own_session_only(
    client: TestClient, store: InMemorySessionDatabase, users: Users
) -> None:
    alice, bob = users.add("alice@example.com"), users.add("bob@example.com")
    mine, token = aged(store, alice, 3600)
    my_other, _ = aged(store, alice, 3600)
    bobs, _ = aged(store, bob, 3600)
    for target in (my_other.id, bobs.id, uuid.uuid4()):
        body = {"password": PASSWORD, "session_id": str(target)}
        r = client.post(REAUTH, json=body, headers=bearer(token))
        assert r.status_code == 403
        assert r.json() == {"detail": "SESSION_NOT_CURRENT"}
    for session in (mine, my_other, bobs):
        stored = asyncio.run(store.get(session.id))
        assert stored is not None
        assert stored.authenticated_at == session.authenticated_at
    # Naming its own session is fine.
    body = {"password": PASSWORD, "session_id": str(mine.id)}
    assert client.post(REAUTH, json=body, headers=bearer(token)).status_code == 204


def test_reauthentication_needs_a_valid_session(
    client: TestClient, store: InMemorySessionDatabase, users: Users
) -> None:
    alice = users.add("alice@example.com")
    ended, token = aged(store, alice, 3600)
    asyncio.run(store.delete(ended.id))
    for headers in ({}, bearer(token), bearer("not-a-session")):
        r = client.post(REAUTH, json={"password": PASSWORD}, headers=headers)
        assert r.status_code == 401
        assert r.headers["www-authenticate"].startswith("Bearer")
    assert users.checks == 0


@pytest.mark.parametrize(
    "body",
    [None, {}, {"password": ""}, {"password": "x" * 1025}, {"password": 7}, "not json"],
)
def test_a_malformed_reauthentication_is_a_422(
    client: TestClient, store: InMemorySessionDatabase, users: Users, body: Any
) -> None:
    alice = users.add("alice@example.com")
    _, token = aged(store, alice, 3600)
    if isinstance(body, str):
        r = client.post(REAUTH, content=body, headers=bearer(token))
    else:
        r = client.post(REAUTH, json=body, headers=bearer(token))
    assert r.status_code == 422
    assert users.checks == 0


@pytest.mark.anyio
async def test_reauthenticated_moves_one_session_and_reports_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    manager = SessionManager()
    first = await manager.create_session(7, generate_token())
    second = await manager.create_session(7, generate_token())
    with caplog.at_level(logging.INFO, "asgi_kit.sessions"):
        moved = await manager.reauthenticated(first.id)
    assert moved is not None
    assert moved.id == first.id
    assert moved.authenticated > first.authenticated
    again = await manager.get_session(second.id)
    assert again is not None
    assert again.authenticated_at == second.authenticated_at
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [f"session reauthenticated id={first.id} user=7"]
    assert first.token not in caplog.text
    # An ended or unknown session: None, nothing recorded.
    await manager.revoke_session(second.id)
    assert await manager.reauthenticated(second.id) is None
    assert await manager.reauthenticated(uuid.uuid4()) is None


@pytest.mark.anyio
async def test_a_refresh_never_moves_authenticated_at() -> None:
    manager = SessionManager(access_token_lifetime=300, refresh_secret=SECRET)
    session = await manager.create_session("u", generate_token(), refresh_token=True)
    refreshed = await manager.refresh(session.refresh_token)
    assert refreshed.authenticated_at == session.authenticated_at
    proven = await manager.reauthenticated(session.id)
    assert proven is not None
    again = await manager.refresh(refreshed.refresh_token)
    assert again.authenticated_at == proven.authenticated_at


@pytest.mark.anyio
async def test_a_store_without_record_authentication_is_a_configuration_error() -> None:
    class OldStore(InMemorySessionDatabase):
        record_authentication = None  # type: ignore[assignment]

    manager = SessionManager(session_db=OldStore())
    session = await manager.create_session("u", generate_token())
    with pytest.raises(ConfigurationError, match="record_authentication"):
        await manager.reauthenticated(session.id)


BAD_MAX_AGES = [0, -1, -0.5, math.nan, math.inf, "300", None, True, timedelta(0), [300]]


@pytest.mark.parametrize("max_age", BAD_MAX_AGES, ids=repr)
def test_a_bad_max_age_is_a_configuration_error_at_start_up(max_age: Any) -> None:
    manager = SessionManager()
    with pytest.raises(ConfigurationError, match="max_age"):
        manager.recent_authentication(max_age)
    with pytest.raises(ConfigurationError, match="max_age"):
        RecentAuthentication(max_age)
    if max_age is not None:  # None is "off" for revoke_all_max_age
        with pytest.raises(ConfigurationError, match="revoke_all_max_age"):
            SessionManager(revoke_all_max_age=max_age)


@pytest.mark.parametrize(
    ("max_age", "shown"), [(300, "300"), (timedelta(hours=2), "7200"), (0.5, "1"), (90.9, "90")]
)
def test_the_challenge_says_max_age_in_whole_seconds(max_age: Any, shown: str) -> None:
    rule = RecentAuthentication(max_age)
    assert rule.challenge.headers["WWW-Authenticate"] == CHALLENGE.format(shown)
    assert rule.challenge.status == 401
    assert rule.challenge.detail is ErrorCode.REAUTHENTICATION_REQUIRED


def test_log_out_everywhere_asks_a_recent_sign_in_only_when_configured(
    store: InMemorySessionDatabase, users: Users
) -> None:
    alice = users.add("alice@example.com")
    # Off by default: the seed's contract is unchanged.
    plain = TestClient(app_of(SessionManager(session_db=store), users))
    _, token = aged(store, alice, 3600)
    aged(store, alice, 3600)
    assert plain.delete("/auth/sessions", headers=bearer(token)).status_code == 204
    assert asyncio.run(store.list_for_user(alice.id)) == []

    guarded = SessionManager(session_db=store, revoke_all_max_age=600)
    client = TestClient(app_of(guarded, users))
    _, token = aged(store, alice, 3600)
    aged(store, alice, 3600)
    r = client.delete("/auth/sessions", headers=bearer(token))
    assert r.status_code == 401
    assert r.json() == {"detail": "REAUTHENTICATION_REQUIRED"}
    assert r.headers["www-authenticate"] == CHALLENGE.format(600)
    assert len(asyncio.run(store.list_for_user(alice.id))) == 2  # nothing ended
    # Logging the other devices out could lock the user out just as well: asked too.
    r = client.delete("/auth/sessions", params={"keep_current": "true"}, headers=bearer(token))
    assert r.status_code == 401
    assert len(asyncio.run(store.list_for_user(alice.id))) == 2
    r = client.post(REAUTH, json={"password": PASSWORD}, headers=bearer(token))
    assert r.status_code == 204
    assert client.delete("/auth/sessions", headers=bearer(token)).status_code == 204
    assert asyncio.run(store.list_for_user(alice.id)) == []


def test_the_openapi_schema_has_the_reauthenticate_route(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    operation = schema["paths"][REAUTH]["post"]
    assert set(operation["responses"]) >= {"204", "400", "401", "403", "422", "429", "503"}


# Starlette and raw ASGI: the same rule, as a decorator and as a check of the scope.


def starlette_app(store: InMemorySessionDatabase) -> Starlette:
    rule = RecentAuthentication(300)

    @rule
    async def delete_account(request: Request) -> PlainTextResponse:
        return PlainTextResponse("deleted")

    @rule
    def export(request: Request) -> PlainTextResponse:  # a sync endpoint, in a thread
        return PlainTextResponse("exported")

    routes = [Route("/delete", delete_account, methods=["POST"]), Route("/export", export)]
    return Starlette(routes=routes, middleware=[Middleware(BearerAuthMiddleware, session_db=store)])


def test_starlette_endpoints_take_the_same_rule_as_a_decorator(
    store: InMemorySessionDatabase, users: Users
) -> None:
    client = TestClient(starlette_app(store))
    alice = users.add("alice@example.com")
    _, fresh = aged(store, alice, 5)
    _, stale = aged(store, alice, 3600)
    assert client.post("/delete", headers=bearer(fresh)).text == "deleted"
    assert client.get("/export", headers=bearer(fresh)).text == "exported"
    for method, path in (("POST", "/delete"), ("GET", "/export")):
        r = client.request(method, path, headers=bearer(stale))
        assert r.status_code == 401
        assert r.json() == {"detail": "REAUTHENTICATION_REQUIRED"}
        assert r.headers["www-authenticate"] == CHALLENGE.format(300)
        r = client.request(method, path)
        assert r.status_code == 401
        assert r.json() == {"detail": "NOT_AUTHENTICATED"}
        r = client.request(method, path, headers=bearer("unknown-token"))
        assert r.json() == {"detail": "INVALID_TOKEN"}


def test_a_raw_asgi_app_checks_its_scope(store: InMemorySessionDatabase, users: Users) -> None:
    rule = RecentAuthentication(timedelta(minutes=5))

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        answer = rule.check(scope)
        if answer is not None:
            await answer.response()(scope, receive, send)
            return
        await PlainTextResponse("sensitive")(scope, receive, send)

    client = TestClient(BearerAuthMiddleware(app, session_db=store))
    alice = users.add("alice@example.com")
    _, fresh = aged(store, alice, 1)
    _, stale = aged(store, alice, 301)
    assert client.get("/", headers=bearer(fresh)).text == "sensitive"
    r = client.get("/", headers=bearer(stale))
    assert (r.status_code, r.headers["www-authenticate"]) == (401, CHALLENGE.format(300))
    # Without the middleware nothing resolved the request: an error, never "too old".
    bare = TestClient(app, raise_server_exceptions=True)
    with pytest.raises(RuntimeError, match="BearerAuthMiddleware"):
        bare.get("/")


def test_a_store_outage_during_reauthentication_is_a_503(users: Users) -> None:
    class FailingStore(InMemorySessionDatabase):
        async def record_authentication(self, session_id: uuid.UUID, at: Any) -> Session | None:
            raise StoreUnavailableError("the store is down")

    store = FailingStore()
    client = TestClient(app_of(SessionManager(session_db=store), users))
    alice = users.add("alice@example.com")
    session, token = aged(store, alice, 3600)
    r = client.post(REAUTH, json={"password": PASSWORD}, headers=bearer(token))
    assert r.status_code == 503
    assert r.json() == {"detail": "SESSION_STORE_UNAVAILABLE"}
    assert r.headers["retry-after"]
    stored = asyncio.run(store.get(session.id))
    assert stored is not None
    assert stored.authenticated_at == session.authenticated_at
