"""SessionStrategy, SessionUserManagerMixin and the session lifecycle, on bad input.

The real proof runs FastAPI Users itself (test_fastapi_users_wheel.py); these are the fast
checks against small stand-ins with the shapes FastAPI Users gives: a user with an ``id``,
a user manager with ``parse_id`` and ``user_db.get``, and ``BaseUserManager``'s hooks.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from fastapi import Depends, FastAPI, HTTPException
from fastapi.testclient import TestClient
from starlette.requests import Request
from starlette.types import ASGIApp

from asgi_kit import (
    SCOPE_KEY,
    BearerAuthMiddleware,
    ConfigurationError,
    InMemorySessionDatabase,
    InvalidUserIdError,
    Session,
    SessionLimitError,
    StoreUnavailableError,
    utcnow,
)
from fastapi_users.extensions.session_manager import (
    AccountEvent,
    EndReason,
    LimitPolicy,
    SessionManager,
    SessionStrategy,
    SessionUserManagerMixin,
)

from .conftest import bearer

CLIENT = ("198.51.100.23", 51000)
MALFORMED = ["", "a b", "é", "x" * 2049, "tok\n", "tok;", "Bearer tok", "a=b", "\x00"]


# --- stand-ins with the shapes of FastAPI Users' objects -------------------------------


@dataclass
class User:
    id: uuid.UUID = field(default_factory=uuid.uuid4)
    email: str = "user@example.com"


class UserDatabase:
    def __init__(self, *users: User) -> None:
        self.users = {u.id: u for u in users}

    async def get(self, id: uuid.UUID) -> User | None:
        return self.users.get(id)


class InvalidID(Exception):
    """Like fastapi_users.exceptions.InvalidID."""


class UserManager:
    """``parse_id`` and ``user_db`` as ``UUIDIDMixin`` + ``BaseUserManager`` have them."""

    def __init__(self, user_db: UserDatabase) -> None:
        self.user_db = user_db

    def parse_id(self, value: Any) -> uuid.UUID:
        try:
            return uuid.UUID(value)
        except ValueError as exc:
            raise InvalidID from exc


class IntegerIdUserManager(UserManager):
    """``IntegerIDMixin``'s ``parse_id``: a UUID string does not parse."""

    def parse_id(self, value: Any) -> Any:
        try:
            return int(value)
        except ValueError as exc:
            raise InvalidID from exc


class BaseUserManager:
    """``BaseUserManager``'s three hooks, recording that they ran."""

    def __init__(self, user_db: UserDatabase) -> None:
        self.user_db = user_db
        self.calls: list[str] = []

    async def on_after_update(
        self, user: User, update_dict: dict[str, Any], request: Request | None = None
    ) -> None:
        self.calls.append("on_after_update")

    async def on_after_reset_password(self, user: User, request: Request | None = None) -> None:
        self.calls.append("on_after_reset_password")

    async def on_after_delete(self, user: User, request: Request | None = None) -> None:
        self.calls.append("on_after_delete")


class CountingStore(InMemorySessionDatabase):
    """The in-memory store, counting token look-ups."""

    def __init__(self) -> None:
        super().__init__()
        self.lookups = 0

    async def get_by_token_digest(self, digest: str) -> Session | None:
        self.lookups += 1
        return await super().get_by_token_digest(digest)


class DownStore(InMemorySessionDatabase):
    """A store whose server went away after the sessions were made."""

    down = False

    async def get_by_token_digest(self, digest: str) -> Session | None:
        if self.down:
            raise StoreUnavailableError("down")
        return await super().get_by_token_digest(digest)

    async def list_for_user(self, user_id: uuid.UUID) -> list[Session]:
        if self.down:
            raise StoreUnavailableError("down")
        return await super().list_for_user(user_id)

    async def create(self, session: Session) -> None:
        if self.down:
            raise StoreUnavailableError("down")
        await super().create(session)

    async def delete_for_user(self, user_id: uuid.UUID, *, keep: Any = ()) -> list[Session]:
        if self.down:
            raise StoreUnavailableError("down")
        return await super().delete_for_user(user_id, keep=keep)


class RecordingManager(SessionManager):
    """Records each hook call and what the store held at that moment."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.events: list[tuple[str, uuid.UUID, str, bool]] = []

    async def on_after_create(self, session: Session) -> None:
        stored = await self.session_db.get(session.id) is not None
        self.events.append(("created", session.id, "", stored))

    async def on_after_end(self, session: Session, reason: EndReason) -> None:
        stored = await self.session_db.get(session.id) is not None
        self.events.append(("ended", session.id, reason.value, stored))


class RaisingManager(SessionManager):
    """Every hook raises."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.calls = 0

    async def on_after_create(self, session: Session) -> None:
        self.calls += 1
        raise RuntimeError("audit sink down")

    async def on_after_end(self, session: Session, reason: EndReason) -> None:
        self.calls += 1
        raise RuntimeError("audit sink down")


def login_app(manager: SessionManager, user: User, *, middleware: bool = True) -> ASGIApp:
    """A FastAPI app whose /login gets ``manager.strategy`` as FastAPI Users' login route
    does (a dependency of the request) and calls its write_token."""
    app = FastAPI()
    app.include_router(manager.router, prefix="/auth/sessions")

    # A default, not Annotated: this module's annotations are strings FastAPI resolves in
    # its globals, where the local ``manager`` is not.
    per_request = Depends(manager.strategy)

    @app.post("/login")
    async def login(strategy: SessionStrategy[User] = per_request) -> dict[str, str]:
        token = await strategy.write_token(user)
        return {"access_token": token, "token_type": "bearer"}

    return BearerAuthMiddleware(app, session_db=manager.session_db) if middleware else app


def request_with(token: str | None = None, session: Session | None = None) -> Request:
    """A request carrying ``token`` in its header and/or the middleware's ``session``."""
    headers = [(b"authorization", f"Bearer {token}".encode())] if token else []
    scope: dict[str, Any] = {"type": "http", "headers": headers}
    if session is not None:
        scope[SCOPE_KEY] = session
    return Request(scope)


# --- SessionStrategy ------------------------------------------------------------------


@pytest.mark.parametrize("middleware", [True, False], ids=["middleware", "no-middleware"])
def test_a_login_records_the_user_agent_and_ip_of_the_request(middleware: bool) -> None:
    manager, user = SessionManager(), User()
    with TestClient(login_app(manager, user, middleware=middleware), client=CLIENT) as client:
        reply = client.post("/login", headers={"User-Agent": "Firefox/140 (Linux)"})
        assert reply.status_code == 200
        token = reply.json()["access_token"]
        listed = client.get("/auth/sessions", headers=bearer(token)).json()
    assert len(token) >= 43
    assert [(s["user_agent"], s["ip_address"], s["current"]) for s in listed] == [
        ("Firefox/140 (Linux)", CLIENT[0], True)
    ]


@pytest.mark.anyio
async def test_a_strategy_made_without_a_request_records_no_device() -> None:
    manager, user = SessionManager(), User()
    token = await SessionStrategy(manager).write_token(user)
    (session,) = await manager.get_sessions(user.id)
    assert (session.user_agent, session.ip_address) == (None, None)
    assert (await manager.authenticate(token)) == session


@pytest.mark.anyio
async def test_read_write_destroy_round_trip() -> None:
    manager, user = SessionManager(), User()
    user_manager = UserManager(UserDatabase(user))
    strategy = SessionStrategy(manager)
    assert isinstance(strategy, SessionStrategy)
    token = await strategy.write_token(user)
    other = await strategy.write_token(user)
    assert await strategy.read_token(token, user_manager) is user
    assert await strategy.read_token(None, user_manager) is None
    assert await strategy.read_token("well-formed-but-unknown", user_manager) is None
    await strategy.destroy_token(token, user)
    assert await strategy.read_token(token, user_manager) is None
    assert await strategy.read_token(other, user_manager) is user  # only that one ended
    await strategy.destroy_token(token, user)  # already gone: a no-op


@pytest.mark.anyio
async def test_logout_is_reported_with_reason_logout() -> None:
    manager, user = RecordingManager(), User()
    token = await SessionStrategy(manager).write_token(user)
    (session,) = await manager.get_sessions(user.id)
    await SessionStrategy(manager).destroy_token(token, user)
    assert manager.events[-1] == ("ended", session.id, "logout", False)


@pytest.mark.anyio
async def test_a_session_of_a_gone_or_unparsable_user_reads_as_no_user() -> None:
    manager, user = SessionManager(), User()
    token = await SessionStrategy(manager).write_token(user)
    assert await SessionStrategy(manager).read_token(token, UserManager(UserDatabase())) is None
    integer_ids = IntegerIdUserManager(UserDatabase(user))
    assert await SessionStrategy(manager).read_token(token, integer_ids) is None


@pytest.mark.anyio
async def test_malformed_tokens_never_reach_the_store() -> None:
    store = CountingStore()
    manager, user = SessionManager(session_db=store), User()
    user_manager = UserManager(UserDatabase(user))
    strategy = SessionStrategy(manager)
    for bad in MALFORMED:
        assert await strategy.read_token(bad, user_manager) is None
        await strategy.destroy_token(bad, user)
    assert store.lookups == 0
    assert await strategy.read_token("well-formed", user_manager) is None
    assert store.lookups == 1


@pytest.mark.anyio
async def test_destroy_token_never_ends_another_users_session() -> None:
    manager, alice, mallory = SessionManager(), User(), User()
    token = await SessionStrategy(manager).write_token(alice)
    await SessionStrategy(manager).destroy_token(token, mallory)
    assert len(await manager.get_sessions(alice.id)) == 1


@pytest.mark.anyio
@pytest.mark.parametrize("user_id", [42, 0, "auth0|5f7c8ec7c33c6c004bbafe82"])
async def test_users_with_integer_or_provider_ids_log_in_and_out(user_id: Any) -> None:
    manager, user = SessionManager(), User(id=user_id)
    integer = isinstance(user_id, int)
    user_manager = (IntegerIdUserManager if integer else UserManager)(UserDatabase(user))
    if not integer:
        user_manager.parse_id = lambda value: value  # type: ignore[method-assign]
    token = await SessionStrategy(manager).write_token(user)
    assert await SessionStrategy(manager).read_token(token, user_manager) is user
    assert [str(s.user_id) for s in await manager.get_sessions(user_id)] == [str(user_id)]
    await SessionStrategy(manager).destroy_token(token, User(id=43))  # another user: a no-op
    assert await SessionStrategy(manager).read_token(token, user_manager) is user
    await SessionStrategy(manager).destroy_token(token, user)
    assert await manager.get_sessions(user_id) == []


@pytest.mark.anyio
async def test_a_user_with_an_unusable_id_cannot_log_in() -> None:
    with pytest.raises(InvalidUserIdError, match="a UUID, an int, or a string"):
        await SessionStrategy(SessionManager()).write_token(User(id=4.2))  # type: ignore[arg-type]


def test_a_token_in_the_query_string_is_never_accepted() -> None:
    manager, user = SessionManager(), User()
    with TestClient(login_app(manager, user)) as client:
        token = client.post("/login").json()["access_token"]
        for name in ("access_token", "token", "bearer"):
            reply = client.get(f"/auth/sessions?{name}={token}")
            assert reply.status_code == 401, name
            assert reply.json() == {"detail": "NOT_AUTHENTICATED"}
        assert client.get("/auth/sessions", headers=bearer(token)).status_code == 200


def test_a_login_over_the_cap_with_refuse_answers_409() -> None:
    manager = SessionManager(max_sessions_per_user=1, limit_policy="refuse")
    user = User()
    with TestClient(login_app(manager, user)) as client:
        first = client.post("/login")
        refused = client.post("/login")
        assert first.status_code == 200
        assert refused.status_code == 409
        assert refused.json() == {"detail": "SESSION_LIMIT_REACHED"}
        token = first.json()["access_token"]
        assert len(client.get("/auth/sessions", headers=bearer(token)).json()) == 1


@pytest.mark.anyio
async def test_an_unreachable_store_is_a_503_not_a_logout() -> None:
    store = DownStore()
    manager, user = SessionManager(session_db=store), User()
    token = await SessionStrategy(manager).write_token(user)
    store.down = True
    user_manager = UserManager(UserDatabase(user))
    strategy = SessionStrategy(manager)
    attempts: list[Callable[[], Awaitable[object]]] = [
        lambda: strategy.read_token(token, user_manager),
        lambda: strategy.write_token(user),
        lambda: strategy.destroy_token(token, user),
    ]
    for attempt in attempts:
        with pytest.raises(HTTPException) as caught:
            await attempt()
        assert caught.value.status_code == 503
        assert caught.value.detail == "SESSION_STORE_UNAVAILABLE"


# --- the lifecycle through the public API ---------------------------------------------


@pytest.mark.parametrize("cap", [0, -1, -100])
def test_a_cap_below_one_is_a_configuration_error(cap: int) -> None:
    with pytest.raises(ConfigurationError, match="max_sessions_per_user must be at least 1"):
        SessionManager(max_sessions_per_user=cap)


def test_an_unknown_limit_policy_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="limit_policy must be one of"):
        SessionManager(max_sessions_per_user=2, limit_policy="drop_oldest")


@pytest.mark.anyio
async def test_the_cap_evicts_the_least_recently_used_session() -> None:
    store = InMemorySessionDatabase()
    manager = RecordingManager(session_db=store, max_sessions_per_user=3)
    user, other = User(), User()
    a, b, c = [await manager.create_session(user.id, f"token-{n}") for n in "abc"]
    await manager.create_session(other.id, "token-other")  # other users do not count
    now = utcnow()
    for session, age in ((a, 10), (b, 30), (c, 20)):  # b is the least recently used
        await store.touch(session, now - timedelta(seconds=age))
    d = await manager.create_session(user.id, "token-d")
    assert {s.id for s in await manager.get_sessions(user.id)} == {a.id, c.id, d.id}
    assert await manager.authenticate("token-b") is None
    assert manager.events[-2:] == [
        ("created", d.id, "", True),  # the new session stored first,
        ("ended", b.id, "evicted", False),  # then room made: a failed login evicts nothing
    ]
    assert len(await manager.get_sessions(other.id)) == 1


@pytest.mark.anyio
async def test_the_refuse_policy_keeps_every_existing_session() -> None:
    manager = RecordingManager(max_sessions_per_user=2, limit_policy=LimitPolicy.REFUSE)
    user = User()
    kept = [await manager.create_session(user.id, f"token-{n}") for n in "ab"]
    with pytest.raises(SessionLimitError, match="maximum of 2"):
        await manager.create_session(user.id, "token-c")
    assert await manager.authenticate("token-c") is None
    assert {s.id for s in await manager.get_sessions(user.id)} == {s.id for s in kept}
    assert [e[0] for e in manager.events] == ["created", "created"]


@pytest.mark.anyio
async def test_hooks_run_after_the_change_is_made() -> None:
    manager, user = RecordingManager(), User()
    session = await manager.create_session(user.id, "token-a")
    await manager.revoke_session(session.id, reason=EndReason.REVOKED_BY_USER)
    assert manager.events == [
        ("created", session.id, "", True),  # already stored
        ("ended", session.id, "revoked_by_user", False),  # already gone
    ]


@pytest.mark.anyio
async def test_a_raising_hook_neither_loses_nor_half_revokes_sessions(
    caplog: pytest.LogCaptureFixture,
) -> None:
    manager = RaisingManager(max_sessions_per_user=3)
    user = User()
    with caplog.at_level(logging.ERROR, logger="asgi_kit"):
        made = [await manager.create_session(user.id, f"token-{n}") for n in "abc"]
        for session in made:  # created despite on_after_create raising
            assert await manager.authenticate(session.token) == session
        await manager.create_session(user.id, "token-d")  # evicts one; on_after_end raises
        assert len(await manager.get_sessions(user.id)) == 3
        ended = await manager.revoke_all(user.id, reason=EndReason.REVOKED_BY_ADMIN)
    assert len(ended) == 3  # every one, though each hook call raised
    assert await manager.get_sessions(user.id) == []
    assert manager.calls == 4 + 1 + 3
    assert "session hook on_after_end failed; the change it reports stands" in caplog.text
    assert "session hook on_after_create failed" in caplog.text


async def an_eviction(
    caplog: pytest.LogCaptureFixture,
) -> tuple[SessionManager, User, Session, Session]:
    """A manager capped at one session, logging; a user's first session evicted by a second."""
    manager, user = SessionManager(max_sessions_per_user=1), User()
    caplog.set_level(logging.INFO, logger="asgi_kit")
    first = await manager.create_session(user.id, "secret-token-1")
    second = await manager.create_session(user.id, "secret-token-2")
    return manager, user, first, second


@pytest.mark.anyio
async def test_audit_lines_identify_sessions_by_id_never_by_token(
    caplog: pytest.LogCaptureFixture,
) -> None:
    manager, user, first, second = await an_eviction(caplog)
    await manager.end_sessions_for_account_event(user.id, AccountEvent.PASSWORD_RESET)
    lines = [r.getMessage() for r in caplog.records]
    assert f"session created id={first.id} user={user.id}" in lines
    assert f"session ended id={first.id} user={user.id} reason=evicted" in lines
    assert f"session ended id={second.id} user={user.id} reason=account_event" in lines
    assert f"account event=password_reset user={user.id} sessions_ended=1" in lines
    assert "secret-token" not in caplog.text
    assert first.token_digest not in caplog.text


@pytest.mark.anyio
async def test_audit_lines_carry_their_fields_as_extra_never_a_token_or_digest(
    caplog: pytest.LogCaptureFixture,
) -> None:
    manager, user, first, second = await an_eviction(caplog)
    await manager.end_sessions_for_account_event(user.id, AccountEvent.ACCOUNT_DELETED)
    await manager.purge_expired()
    fields = [
        {k: getattr(r, k, None) for k in ("session_id", "user_id", "reason")}
        for r in caplog.records
    ]
    assert fields[:3] == [
        {"session_id": str(first.id), "user_id": str(user.id), "reason": None},
        {"session_id": str(second.id), "user_id": str(user.id), "reason": None},
        {"session_id": str(first.id), "user_id": str(user.id), "reason": "evicted"},
    ]
    assert {
        "session_id": str(second.id),
        "user_id": str(user.id),
        "reason": "account_event",
    } in fields
    assert getattr(caplog.records[-1], "reason", None) == "expired"
    hidden = ("secret-token", first.token_digest, second.token_digest)
    for record in caplog.records:
        for value in (record.getMessage(), *map(str, vars(record).values())):
            assert not any(secret in value for secret in hidden), record


@pytest.mark.anyio
async def test_account_events_keep_the_current_session_only_for_a_password_change() -> None:
    manager, user = SessionManager(), User()
    a, b = [await manager.create_session(user.id, f"token-{n}") for n in "ab"]
    ended = await manager.end_sessions_for_account_event(
        user.id, AccountEvent.PASSWORD_CHANGED, keep_current=a.id
    )
    assert [s.id for s in ended] == [b.id]
    for event in (AccountEvent.ACCOUNT_DISABLED, AccountEvent.ACCOUNT_DELETED):
        with pytest.raises(ValueError, match="keep_current is not allowed"):
            await manager.end_sessions_for_account_event(user.id, event, keep_current=a.id)
    assert [s.id for s in await manager.get_sessions(user.id)] == [a.id]


# --- SessionUserManagerMixin ----------------------------------------------------------


class SessionUserManager(SessionUserManagerMixin, BaseUserManager):
    """As an app writes it: ``class UserManager(SessionUserManagerMixin, ..., BaseUserManager)``."""


async def two_sessions(manager: SessionManager, user: User) -> tuple[Session, Session]:
    a = await manager.create_session(user.id, f"a-{uuid.uuid4().hex}")
    b = await manager.create_session(user.id, f"b-{uuid.uuid4().hex}")
    return a, b


def test_the_mixin_needs_a_session_manager() -> None:
    with pytest.raises(ConfigurationError, match="needs a SessionManager"):
        SessionUserManager(UserDatabase())
    with pytest.raises(ConfigurationError, match="needs a SessionManager"):
        SessionUserManager(UserDatabase(), session_manager="not a manager")  # type: ignore[arg-type]
    manager = SessionManager()
    assert SessionUserManager(UserDatabase(), session_manager=manager).session_manager is manager

    class WithAttribute(SessionUserManager):
        session_manager = manager

    assert WithAttribute(UserDatabase()).session_manager is manager


def test_the_mixin_listed_after_base_user_manager_is_refused_at_class_definition() -> None:
    with pytest.raises(ConfigurationError, match="list SessionUserManagerMixin before"):

        class Wrong(BaseUserManager, SessionUserManagerMixin):
            pass


def test_mixins_without_hooks_may_come_before_it() -> None:
    class IdMixin:
        def parse_id(self, value: Any) -> uuid.UUID:
            return uuid.UUID(value)

    class Fine(IdMixin, SessionUserManagerMixin, BaseUserManager):
        session_manager = SessionManager()

    assert Fine(UserDatabase()).parse_id(str(uuid.UUID(int=1))) == uuid.UUID(int=1)


@pytest.mark.anyio
async def test_account_events_end_the_sessions_of_integer_id_users_too() -> None:
    manager = SessionManager()
    user = User(id=7)  # type: ignore[arg-type]
    a, _ = await two_sessions(manager, user)
    user_manager = SessionUserManager(UserDatabase(user), session_manager=manager)
    await user_manager.on_after_update(user, {"password": "x"}, request_with(a.token, a))
    assert [s.id for s in await manager.get_sessions(7)] == [a.id]  # the current one stays
    await user_manager.on_after_delete(user)
    assert await manager.get_sessions("7") == []
    assert user_manager.calls == ["on_after_update", "on_after_delete"]


@pytest.mark.anyio
async def test_users_with_unusable_ids_are_refused_and_the_base_hooks_still_run() -> None:
    manager = SessionManager()
    user = User(id=b"7")  # type: ignore[arg-type]
    user_manager = SessionUserManager(UserDatabase(user), session_manager=manager)
    with pytest.raises(InvalidUserIdError):
        await user_manager.on_after_update(user, {"password": "x"}, request_with("some-token"))
    with pytest.raises(InvalidUserIdError):
        await user_manager.on_after_delete(user)
    assert user_manager.calls == ["on_after_update", "on_after_delete"]


@pytest.mark.anyio
async def test_a_password_reset_ends_every_session_then_runs_the_base_hook() -> None:
    manager, user = SessionManager(), User()
    a, _ = await two_sessions(manager, user)
    user_manager = SessionUserManager(UserDatabase(user), session_manager=manager)
    await user_manager.on_after_reset_password(user, request_with(a.token, a))
    assert await manager.get_sessions(user.id) == []
    assert user_manager.calls == ["on_after_reset_password"]


@pytest.mark.anyio
@pytest.mark.parametrize("via", ["middleware", "header"])
async def test_a_password_change_keeps_only_the_session_that_made_it(via: str) -> None:
    manager, user = SessionManager(), User()
    a, _ = await two_sessions(manager, user)
    user_manager = SessionUserManager(UserDatabase(user), session_manager=manager)
    request = request_with(session=a) if via == "middleware" else request_with(a.token)
    await user_manager.on_after_update(user, {"password": "new password"}, request)
    assert [s.id for s in await manager.get_sessions(user.id)] == [a.id]
    assert user_manager.calls == ["on_after_update"]


@pytest.mark.anyio
async def test_a_password_change_without_the_users_own_session_ends_them_all() -> None:
    manager, user, admin = SessionManager(), User(), User()
    admin_session = await manager.create_session(admin.id, "admin-token")
    await two_sessions(manager, user)
    user_manager = SessionUserManager(UserDatabase(user, admin), session_manager=manager)
    for request in (request_with("admin-token"), request_with(), None):
        await user_manager.on_after_update(user, {"password": "new password"}, request)
        assert await manager.get_sessions(user.id) == []
        await two_sessions(manager, user)
    assert await manager.get_sessions(admin.id) == [admin_session]


@pytest.mark.anyio
async def test_disabling_the_account_ends_every_session_even_the_current_one() -> None:
    manager, user = SessionManager(), User()
    a, _ = await two_sessions(manager, user)
    user_manager = SessionUserManager(UserDatabase(user), session_manager=manager)
    update = {"is_active": False, "password": "new password"}
    await user_manager.on_after_update(user, update, request_with(a.token, a))
    assert await manager.get_sessions(user.id) == []


@pytest.mark.anyio
@pytest.mark.parametrize(
    "update",
    [{}, {"password": None}, {"is_active": True}, {"email": "new@example.com"}, {"is_verified": 1}],
)
async def test_other_updates_end_no_session(update: dict[str, Any]) -> None:
    manager, user = SessionManager(), User()
    await two_sessions(manager, user)
    user_manager = SessionUserManager(UserDatabase(user), session_manager=manager)
    await user_manager.on_after_update(user, update, None)
    assert len(await manager.get_sessions(user.id)) == 2
    assert user_manager.calls == ["on_after_update"]


@pytest.mark.anyio
async def test_deleting_the_user_ends_every_session() -> None:
    manager, user = SessionManager(), User()
    await two_sessions(manager, user)
    user_manager = SessionUserManager(UserDatabase(user), session_manager=manager)
    await user_manager.on_after_delete(user, None)
    assert await manager.get_sessions(user.id) == []
    assert user_manager.calls == ["on_after_delete"]


@pytest.mark.anyio
async def test_the_base_hooks_run_even_when_the_store_is_down() -> None:
    store = DownStore()
    manager, user = SessionManager(session_db=store), User()
    a, _ = await two_sessions(manager, user)
    store.down = True
    user_manager = SessionUserManager(UserDatabase(user), session_manager=manager)
    with pytest.raises(StoreUnavailableError):
        await user_manager.on_after_reset_password(user)
    with pytest.raises(StoreUnavailableError):
        await user_manager.on_after_update(user, {"password": "x"}, request_with(a.token))
    with pytest.raises(StoreUnavailableError):
        await user_manager.on_after_delete(user)
    assert user_manager.calls == [
        "on_after_reset_password",
        "on_after_update",
        "on_after_delete",
    ]


@pytest.mark.anyio
async def test_an_apps_own_hooks_chain_through_super() -> None:
    manager, user = SessionManager(), User()
    await two_sessions(manager, user)
    seen: list[int] = []

    class AppUserManager(SessionUserManager):
        session_manager = manager

        async def on_after_delete(self, user: User, request: Request | None = None) -> None:
            await super().on_after_delete(user, request)
            seen.append(len(await manager.get_sessions(user.id)))

    user_manager = AppUserManager(UserDatabase(user))
    await user_manager.on_after_delete(user)
    assert seen == [0]  # the mixin had ended them by the time the app's code ran
    assert user_manager.calls == ["on_after_delete"]
