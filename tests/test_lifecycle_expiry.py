"""``purge_expired``: expired sessions reach ``on_after_end`` when the store says which."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest

from asgi_kit import InMemorySessionDatabase, Session, SessionDatabase, utcnow
from fastapi_users.extensions.session_manager import (
    EndReason,
    ExpiringSessionDatabase,
    SessionManager,
)

LATER = timedelta(hours=2)  # purging "two hours from now" finds the one-hour sessions expired


class PoppingStore(InMemorySessionDatabase):
    """The in-memory store plus ``pop_expired``, the method ``ExpiringSessionDatabase`` adds.

    A reference implementation for these tests only: asgi-kit's stores do not have it yet.
    """

    def __init__(self) -> None:
        self.backing: dict[str, Session] = {}
        super().__init__(self.backing)
        self.batches: list[int] = []

    async def pop_expired(self, now: datetime, *, limit: int) -> list[Session]:
        expired = [s for s in self.backing.values() if not s.is_active(now)]
        expired = sorted(expired, key=lambda s: s.created_at)[:limit]
        for session in expired:
            await self.delete(session.id)
        self.batches.append(len(expired))
        return expired


class Ends(SessionManager):
    """Records every ``on_after_end`` call, and whether the store still had the session."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.ended: list[tuple[uuid.UUID, EndReason, bool]] = []

    async def on_after_end(self, session: Session, reason: EndReason) -> None:
        stored = await self.session_db.get(session.id) is not None
        self.ended.append((session.id, reason, stored))


async def make_sessions(manager: SessionManager, user: uuid.UUID) -> tuple[list[Session], Session]:
    """Five sessions that expire within the hour, and one that never does."""
    soon = utcnow() + timedelta(hours=1)
    expiring = [await manager.create_session(user, f"token-{i}", expires_at=soon) for i in range(5)]
    return expiring, await manager.create_session(user, "token-forever")


@pytest.mark.anyio
async def test_each_purged_session_is_reported_as_expired(caplog: pytest.LogCaptureFixture) -> None:
    store = PoppingStore()
    manager, user = Ends(session_db=store), uuid.uuid4()
    expiring, forever = await make_sessions(manager, user)
    assert isinstance(store, ExpiringSessionDatabase)
    with caplog.at_level(logging.INFO, logger="asgi_kit"):
        count = await manager.purge_expired(utcnow() + LATER, batch_size=2)
    assert count == 5
    assert store.batches == [2, 2, 1]  # in batches, until a short one
    assert sorted(manager.ended) == sorted((s.id, EndReason.EXPIRED, False) for s in expiring)
    assert [s.id for s in await manager.get_sessions(user)] == [forever.id]
    assert "expired sessions purged count=5 reason=expired reported=each" in caplog.text


@pytest.mark.anyio
async def test_a_raising_hook_does_not_stop_the_purge() -> None:
    class Raising(SessionManager):
        calls = 0

        async def on_after_end(self, session: Session, reason: EndReason) -> None:
            Raising.calls += 1
            raise RuntimeError("audit sink down")

    store = PoppingStore()
    manager, user = Raising(session_db=store), uuid.uuid4()
    await make_sessions(manager, user)
    assert await manager.purge_expired(utcnow() + LATER, batch_size=2) == 5
    assert Raising.calls == 5
    assert len(store) == 1


@pytest.mark.anyio
async def test_with_a_store_that_only_counts_the_count_is_logged(
    store: SessionDatabase, caplog: pytest.LogCaptureFixture
) -> None:
    manager, user = Ends(session_db=store), uuid.uuid4()
    _, forever = await make_sessions(manager, user)
    assert not isinstance(store, ExpiringSessionDatabase)
    with caplog.at_level(logging.INFO, logger="asgi_kit"):
        assert await manager.purge_expired(utcnow() + LATER) == 5
    assert manager.ended == []  # the store cannot say which sessions it purged
    assert "expired sessions purged count=5 reason=expired reported=count_only" in caplog.text
    assert [s.id for s in await manager.get_sessions(user)] == [forever.id]


@pytest.mark.anyio
@pytest.mark.parametrize("batch_size", [0, -1, True, 2.5])
async def test_a_bad_batch_size_is_refused_before_anything_is_purged(batch_size: Any) -> None:
    store = PoppingStore()
    manager = SessionManager(session_db=store)
    await make_sessions(manager, uuid.uuid4())
    with pytest.raises(ValueError, match="batch_size must be an int of at least 1"):
        await manager.purge_expired(utcnow() + LATER, batch_size=batch_size)
    assert len(store) == 6
