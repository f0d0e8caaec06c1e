"""``purge_expired``: every expired session reaches ``on_after_end`` once, on every store."""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest

from asgi_kit import ConfigurationError, Session, SessionDatabase, generate_token, utcnow
from fastapi_users.extensions.session_manager import EndReason, SessionManager

from .proxy import TcpProxy
from .servers import wait_until
from .stores import open_instances, server_of, store_behind

pytestmark = pytest.mark.anyio

LATER = timedelta(hours=2)  # purging "two hours from now" finds the one-hour sessions expired


class Ends(SessionManager):
    """Records every ``on_after_end`` call, and whether the store still had the session."""

    def __init__(
        self, *args: Any, ended: list[tuple[uuid.UUID, EndReason]] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.ended = [] if ended is None else ended
        self.still_stored: list[bool] = []

    async def on_after_end(self, session: Session, reason: EndReason) -> None:
        self.ended.append((session.id, reason))
        self.still_stored.append(await self.session_db.get(session.id) is not None)


class Raising(Ends):
    """Records, then raises: an audit sink that is down."""

    async def on_after_end(self, session: Session, reason: EndReason) -> None:
        await super().on_after_end(session, reason)
        raise RuntimeError("audit sink down")


async def make_sessions(
    manager: SessionManager, user: uuid.UUID, count: int = 5
) -> tuple[list[Session], Session]:
    """``count`` sessions that expire within the hour, and one that never does."""
    soon = utcnow() + timedelta(hours=1)
    expiring = [
        await manager.create_session(user, generate_token(), expires_at=soon) for _ in range(count)
    ]
    return expiring, await manager.create_session(user, generate_token())


def expired_session() -> Session:
    return Session(
        user_id=uuid.uuid4(), token=generate_token(), expires_at=utcnow() - timedelta(seconds=1)
    )


async def test_each_purged_session_is_reported_as_expired_once(
    store: SessionDatabase, caplog: pytest.LogCaptureFixture
) -> None:
    manager, user = Ends(session_db=store), uuid.uuid4()
    expiring, forever = await make_sessions(manager, user)
    with caplog.at_level(logging.INFO, logger="asgi_kit"):
        count = await manager.purge_expired(utcnow() + LATER, batch_size=2)  # three batches
    assert count == 5
    assert sorted(manager.ended) == sorted((s.id, EndReason.EXPIRED) for s in expiring)
    assert manager.still_stored == [False] * 5  # the store is changed before the hooks run
    assert [s.id for s in await manager.get_sessions(user)] == [forever.id]
    assert "expired sessions purged count=5 reason=expired" in caplog.text
    assert await manager.purge_expired(utcnow() + LATER) == 0
    assert len(manager.ended) == 5


@pytest.mark.parametrize("kind", ["sqlite", "postgres", "redis"])
async def test_instances_purging_at_once_report_each_session_once(
    kind: str, tmp_path: Path
) -> None:
    ended: list[tuple[uuid.UUID, EndReason]] = []
    async with open_instances(kind, tmp_path) as (first, second):
        managers = [Ends(session_db=db, ended=ended) for db in (first, second)]
        expiring, forever = await make_sessions(managers[0], uuid.uuid4(), count=40)
        counts: list[int] = []

        async def purge(manager: SessionManager) -> None:
            counts.append(await manager.purge_expired(utcnow() + LATER, batch_size=3))

        async with anyio.create_task_group() as tg:
            for manager in managers * 2:
                tg.start_soon(purge, manager)
        assert sum(counts) == 40
        assert Counter(ended) == Counter((s.id, EndReason.EXPIRED) for s in expiring)
        assert await second.get(forever.id) == forever


async def test_a_raising_hook_does_not_stop_the_purge(
    store: SessionDatabase, caplog: pytest.LogCaptureFixture
) -> None:
    manager, user = Raising(session_db=store), uuid.uuid4()
    _, forever = await make_sessions(manager, user)
    assert await manager.purge_expired(utcnow() + LATER, batch_size=2) == 5
    assert len(manager.ended) == 5
    assert caplog.text.count("session hook on_after_end failed") == 5
    assert [s.id for s in await manager.get_sessions(user)] == [forever.id]


@pytest.mark.parametrize("batch_size", [0, -1, True, 2.5])
async def test_a_bad_batch_size_is_refused_before_anything_is_purged(
    store: SessionDatabase, batch_size: Any
) -> None:
    manager = Ends(session_db=store)
    expiring, _ = await make_sessions(manager, uuid.uuid4())
    with pytest.raises(ValueError, match="batch_size must be an int of at least 1"):
        await manager.purge_expired(utcnow() + LATER, batch_size=batch_size)
    assert await manager.purge_expired(utcnow() + LATER) == len(expiring)


async def test_purge_periodically_refuses_a_non_positive_interval() -> None:
    with pytest.raises(ConfigurationError, match="interval"):
        await SessionManager().purge_periodically(0)


@pytest.mark.parametrize("kind", ["postgres", "redis"])
async def test_purge_periodically_outlives_a_raising_hook_and_an_outage(
    kind: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="asgi_kit")
    first, second = expired_session(), expired_session()
    async with (
        TcpProxy(server_of(kind)) as proxy,
        store_behind(kind, proxy, wait=0.5) as store,
        anyio.create_task_group() as tasks,
    ):
        manager = Raising(session_db=store)
        await store.create(first)
        tasks.start_soon(manager.purge_periodically, 0.02)
        # The hook records, awaits the store, then raises: wait for the logged failure.
        failed = "session hook on_after_end failed"
        await wait_until(lambda: failed in caplog.text, "the first report fails and is logged")
        assert manager.ended == [(first.id, EndReason.EXPIRED)]

        await proxy.cut()
        await wait_until(lambda: "purging expired sessions failed" in caplog.text, "a failure")
        await proxy.restore()
        await store.create(second)
        await wait_until(lambda: len(manager.ended) == 2, "the loop, still running, goes on")
        tasks.cancel_scope.cancel()
    assert manager.ended == [(first.id, EndReason.EXPIRED), (second.id, EndReason.EXPIRED)]
    assert "session store unavailable" in caplog.text


async def test_purge_periodically_reports_expired_sessions(store: SessionDatabase) -> None:
    manager, session = Ends(session_db=store), expired_session()
    await store.create(session)
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(manager.purge_periodically, 0.01)
        await wait_until(lambda: len(manager.ended) == 1, "the loop reports the session")
        tasks.cancel_scope.cancel()
    assert manager.ended == [(session.id, EndReason.EXPIRED)]
