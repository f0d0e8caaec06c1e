"""``max_sessions_per_user`` when the store fails, the per-user lock, and the setting."""

from __future__ import annotations

import logging
import uuid

import anyio
import pytest
from anyio import wait_all_tasks_blocked

from asgi_kit import (
    ConfigurationError,
    InMemorySessionDatabase,
    Session,
    SessionLimitError,
    StoreUnavailableError,
)
from fastapi_users.extensions._cap import UserLocks
from fastapi_users.extensions.session_manager import EndReason, SessionManager

from .test_lifecycle_cap import Recorder

# --- failures never lose a session ---------------------------------------------------


class FailingStore(InMemorySessionDatabase):
    """The in-memory store, failing the calls a test names."""

    def __init__(self) -> None:
        self.backing: dict[str, Session] = {}
        super().__init__(self.backing)
        self.fail_create = self.fail_list = False
        self.fail_delete_call: int | None = None
        self.deletes = 0

    async def list_for_user(self, user_id: uuid.UUID) -> list[Session]:
        if self.fail_list:
            raise StoreUnavailableError("down")
        return await super().list_for_user(user_id)

    async def create(self, session: Session) -> None:
        if self.fail_create:
            raise StoreUnavailableError("down")
        await super().create(session)

    async def delete(self, session_id: uuid.UUID) -> Session | None:
        self.deletes += 1
        if self.deletes == self.fail_delete_call:
            raise StoreUnavailableError("down")
        return await super().delete(session_id)


@pytest.mark.anyio
async def test_a_failed_create_evicts_nothing() -> None:
    store = FailingStore()
    manager = Recorder(session_db=store, max_sessions_per_user=2)
    user = uuid.uuid4()
    kept = [await manager.create_session(user, f"token-{n}") for n in "ab"]
    store.fail_create = True
    with pytest.raises(StoreUnavailableError):
        await manager.create_session(user, "token-c")
    assert {s.id for s in await store.list_for_user(user)} == {s.id for s in kept}
    assert manager.ended == []


@pytest.mark.anyio
async def test_a_failure_while_evicting_withdraws_the_new_session_and_reports_the_evicted() -> None:
    store, user = FailingStore(), uuid.uuid4()
    uncapped = SessionManager(session_db=store)  # three sessions from before a cap of one
    old = [await uncapped.create_session(user, f"token-{n}") for n in "abc"]
    manager = Recorder(session_db=store, max_sessions_per_user=1)
    store.fail_delete_call = 2  # the first eviction works, the second fails
    with pytest.raises(StoreUnavailableError):
        await manager.create_session(user, "token-new")
    assert manager.ended == [(old[0].id, EndReason.EVICTED)]  # the one that did end
    assert manager.created == []
    assert await manager.authenticate("token-new") is None  # withdrawn
    assert {s.id for s in await store.list_for_user(user)} == {old[1].id, old[2].id}


@pytest.mark.anyio
async def test_a_session_that_cannot_be_withdrawn_is_logged_by_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = FailingStore()
    manager = Recorder(session_db=store, max_sessions_per_user=1)
    store.fail_list, store.fail_delete_call = True, 1  # the check fails, then the withdrawal
    with caplog.at_level(logging.WARNING, logger="asgi_kit"), pytest.raises(StoreUnavailableError):
        await manager.create_session(uuid.uuid4(), "token-orphan")
    (stored,) = store.backing.values()
    assert f"could not withdraw session {stored.id} of a failed login" in caplog.text
    assert "token-orphan" not in caplog.text
    assert (manager.created, manager.ended) == ([], [])


@pytest.mark.anyio
async def test_a_refused_login_stores_nothing_and_reports_nothing() -> None:
    manager = Recorder(max_sessions_per_user=1, limit_policy="refuse")
    user = uuid.uuid4()
    first = await manager.create_session(user, "token-a")
    with pytest.raises(SessionLimitError, match="maximum of 1"):
        await manager.create_session(user, "token-b")
    assert [s.id for s in await manager.get_sessions(user)] == [first.id]
    assert (manager.created, manager.ended) == ([first.id], [])


@pytest.mark.anyio
async def test_lowering_the_cap_on_a_running_manager_applies_at_the_next_login() -> None:
    manager = Recorder(max_sessions_per_user=3)
    user = uuid.uuid4()
    for n in "abc":
        await manager.create_session(user, f"token-{n}")
    manager.max_sessions_per_user = 1
    last = await manager.create_session(user, "token-d")
    assert [s.id for s in await manager.get_sessions(user)] == [last.id]
    assert len(manager.ended) == 3


# --- the per-user lock ---------------------------------------------------------------


@pytest.mark.anyio
async def test_user_locks_serialize_one_user_and_are_dropped_when_unused() -> None:
    locks = UserLocks()
    alice, bob = uuid.uuid4(), uuid.uuid4()
    inside: list[str] = []
    release = anyio.Event()

    async def hold(user: uuid.UUID, name: str) -> None:
        async with locks.hold(user):
            inside.append(name)
            await release.wait()

    async with anyio.create_task_group() as tg:
        tg.start_soon(hold, alice, "alice-1")
        tg.start_soon(hold, alice, "alice-2")
        tg.start_soon(hold, bob, "bob")
        await wait_all_tasks_blocked()
        assert sorted(inside) == ["alice-1", "bob"]  # the second of Alice's waits
        assert len(locks) == 2
        release.set()
    assert sorted(inside) == ["alice-1", "alice-2", "bob"]
    assert len(locks) == 0  # nothing kept for users no longer logging in


@pytest.mark.anyio
async def test_a_cancelled_wait_for_a_user_lock_leaks_nothing() -> None:
    locks = UserLocks()
    user = uuid.uuid4()

    async def wait_for_it(scope: anyio.CancelScope) -> None:
        with scope:
            async with locks.hold(user):
                pytest.fail("the lock is held")  # pragma: no cover

    async with locks.hold(user), anyio.create_task_group() as tg:
        waiting = anyio.CancelScope()
        tg.start_soon(wait_for_it, waiting)
        await wait_all_tasks_blocked()
        waiting.cancel()
    assert len(locks) == 0


# --- settings ------------------------------------------------------------------------


@pytest.mark.parametrize("cap", [True, False, 1.5, 2.0, "2", b"2"])
def test_a_cap_that_is_not_an_int_is_a_configuration_error(cap: object) -> None:
    with pytest.raises(ConfigurationError, match=r"max_sessions_per_user must be an int .* got"):
        SessionManager(max_sessions_per_user=cap)  # type: ignore[arg-type]
