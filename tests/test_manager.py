"""SessionManager's Python API: sync and async creation, lifetimes, revocation."""

from __future__ import annotations

import logging
import uuid
from collections.abc import MutableMapping
from datetime import timedelta

import anyio
import pytest

from asgi_kit import (
    ConfigurationError,
    InMemorySessionDatabase,
    Session,
    SyncUsageError,
    token_digest,
    utcnow,
)
from fastapi_users.extensions.session_manager import (
    EndReason,
    SessionManager,
    UnknownEndReasonError,
)

USER = uuid.uuid4()


def test_create_session_from_sync_code_returns_the_session() -> None:
    manager = SessionManager()
    session = manager.create_session(str(USER), "token-1")
    assert isinstance(session, Session)
    assert session.user_id == USER
    assert session.token == "token-1"


@pytest.mark.anyio
async def test_create_session_is_awaitable_in_async_code() -> None:
    manager = SessionManager()
    session = await manager.create_session(USER, "token-1")
    assert session.token == "token-1"
    assert await manager.authenticate("token-1") == session


@pytest.mark.anyio
async def test_a_session_made_in_sync_code_can_be_awaited_too() -> None:
    manager = SessionManager()
    session = await anyio.to_thread.run_sync(manager.create_session, USER, "token-1")
    assert isinstance(session, Session)  # made synchronously, in a thread with no loop
    assert (await session) is session


class RemoteStore:
    """A store that is not the in-memory one (it only delegates to it)."""

    def __init__(self) -> None:
        self.inner = InMemorySessionDatabase()

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


def test_sync_use_of_an_async_store_is_refused() -> None:
    manager = SessionManager(session_db=RemoteStore())  # type: ignore[arg-type]
    with pytest.raises(SyncUsageError, match=r"await manager\.create_session"):
        manager.create_session(USER, "token-1")


def test_plain_dict_is_the_backing_map_and_holds_no_raw_token() -> None:
    backing: MutableMapping[str, Session] = {}
    manager = SessionManager(session_db=backing)
    session = manager.create_session(USER, "raw-token-value")
    assert list(backing) == [token_digest("raw-token-value")]
    assert "raw-token-value" not in repr(backing)
    assert backing[session.token_digest].token == ""


def test_backing_map_with_existing_sessions_is_indexed() -> None:
    s = Session(user_id=USER, token="t1")
    store = InMemorySessionDatabase({s.token_digest: s})
    assert len(store) == 1
    with pytest.raises(TypeError, match="digest"):
        InMemorySessionDatabase({"not-the-digest": s})


@pytest.mark.parametrize("bad", ["", "has space", "é", "x" * 3000])
def test_bad_token_raises_value_error(bad: str) -> None:
    with pytest.raises(ValueError, match="b64token"):
        SessionManager().create_session(USER, bad)


def test_a_naive_expires_at_is_refused() -> None:
    with pytest.raises(ValueError, match="time zone"):
        SessionManager().create_session(USER, "t", expires_at=utcnow().replace(tzinfo=None))


def test_lifetime_caps_expiry() -> None:
    manager = SessionManager(lifetime=timedelta(hours=1))
    s = manager.create_session(USER, "a")
    assert s.expires_at is not None
    assert s.expires_at - s.created_at == timedelta(hours=1)
    late = manager.create_session(USER, "b", expires_at=utcnow() + timedelta(days=9))
    assert late.expires_at is not None
    assert late.expires_at - late.created_at == timedelta(hours=1)
    soon = utcnow() + timedelta(minutes=5)
    assert manager.create_session(USER, "c", expires_at=soon).expires_at == soon


@pytest.mark.parametrize("kwargs", [{"lifetime": 0}, {"idle_timeout": -1}, {"touch_interval": -5}])
def test_bad_settings_raise_configuration_error(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigurationError):
        SessionManager(**kwargs)


@pytest.mark.anyio
async def test_idle_timeout_ends_unused_sessions() -> None:
    store = InMemorySessionDatabase()
    manager = SessionManager(session_db=store, idle_timeout=300, touch_interval=0)
    session = await manager.create_session(USER, "tok")
    assert session.idle_timeout == timedelta(seconds=300)
    await store.touch(session, utcnow() - timedelta(seconds=301))
    assert await manager.authenticate("tok") is None
    assert await manager.get_sessions(USER) == []


@pytest.mark.anyio
async def test_activity_is_written_back_at_most_once_per_interval() -> None:
    store = InMemorySessionDatabase()
    manager = SessionManager(session_db=store, touch_interval=60)
    session = await manager.create_session(USER, "tok")
    seen = session.last_seen_at
    await manager.authenticate("tok")
    stored = await store.get(session.id)
    assert stored is not None
    assert stored.last_seen_at == seen  # within the interval: no write
    old = utcnow() - timedelta(seconds=61)
    await store.touch(session, old)
    resolved = await manager.authenticate("tok")
    assert resolved is not None
    assert resolved.last_seen_at is not None
    assert resolved.last_seen_at > old
    stored = await store.get(session.id)
    assert stored is not None
    assert stored.last_seen_at == resolved.last_seen_at


@pytest.mark.anyio
async def test_revoke_and_revoke_all(caplog: pytest.LogCaptureFixture) -> None:
    manager = SessionManager()
    a = await manager.create_session(USER, "token-a")
    b = await manager.create_session(USER, "token-b")
    c = await manager.create_session(USER, "token-c")
    caplog.set_level(logging.INFO, logger="asgi_kit")
    assert await manager.revoke_session(a.id) == a
    assert await manager.revoke_session(a.id) is None
    ended = await manager.revoke_all(str(USER), keep=[c.id], reason=EndReason.REVOKED_BY_USER)
    assert [s.id for s in ended] == [b.id]
    assert [s.id for s in await manager.get_sessions(USER)] == [c.id]
    assert await manager.get_session(c.id) == c
    assert f"id={a.id}" in caplog.text
    assert "reason=revoked_by_user" in caplog.text
    assert "token-" not in caplog.text  # the audit trail never holds a token


@pytest.mark.anyio
async def test_login_helper_records_device() -> None:
    from starlette.requests import Request

    manager = SessionManager()
    scope = {
        "type": "http",
        "headers": [(b"user-agent", b"Mozilla/5.0 " + b"x" * 1000)],
        "client": ("198.51.100.7", 5000),
    }
    session = await manager.login(Request(scope), USER)
    assert len(session.token) >= 43
    assert session.ip_address == "198.51.100.7"
    assert session.user_agent is not None
    assert session.user_agent.startswith("Mozilla/5.0")
    assert len(session.user_agent) == 512
    no_client = await manager.login(Request({"type": "http", "headers": []}), USER)
    assert no_client.ip_address is None
    assert no_client.user_agent is None


@pytest.mark.anyio
async def test_resolver_refuses_malformed_tokens_without_a_lookup() -> None:
    from asgi_kit import SessionResolver

    class Counting(InMemorySessionDatabase):
        lookups = 0

        async def get_by_token_digest(self, digest: str) -> Session | None:
            Counting.lookups += 1
            return await super().get_by_token_digest(digest)

    resolver = SessionResolver(Counting())
    for bad in ("", "a b", "é", "x" * 5000, "a\tb"):
        assert await resolver.resolve(bad) is None
    assert Counting.lookups == 0
    assert await resolver.resolve("well-formed") is None
    assert Counting.lookups == 1


@pytest.mark.anyio
async def test_a_failed_activity_write_is_logged_and_the_request_still_succeeds(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from asgi_kit import StoreUnavailableError

    class FlakyTouch(InMemorySessionDatabase):
        async def touch(self, session: Session, last_seen_at: object) -> None:
            raise StoreUnavailableError("down")

    manager = SessionManager(session_db=FlakyTouch(), touch_interval=0)
    await manager.create_session(USER, "tok")
    with caplog.at_level(logging.WARNING, logger="asgi_kit"):
        resolved = await manager.authenticate("tok")
    assert resolved is not None
    assert "could not record activity" in caplog.text
    assert "tok" not in caplog.text


class Ends(SessionManager):
    """Records every ``on_after_end`` call."""

    def __init__(self) -> None:
        super().__init__()
        self.ended: list[tuple[uuid.UUID, EndReason]] = []

    async def on_after_end(self, session: Session, reason: EndReason) -> None:
        self.ended.append((session.id, reason))


@pytest.mark.anyio
async def test_an_unknown_end_reason_is_refused_before_anything_ends() -> None:
    manager = Ends()
    session = await manager.create_session(USER, "token-a")
    with pytest.raises(UnknownEndReasonError, match=r"'bogus'.*'logout'") as caught:
        await manager.revoke_session(session.id, reason="bogus")
    assert isinstance(caught.value, ValueError)
    with pytest.raises(UnknownEndReasonError):
        await manager.revoke_all(USER, reason="bogus")
    assert await manager.authenticate("token-a") == session  # still alive
    assert manager.ended == []
    await manager.revoke_session(session.id, reason="revoked_by_admin")  # a valid string works
    assert manager.ended == [(session.id, EndReason.REVOKED_BY_ADMIN)]
