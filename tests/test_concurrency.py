"""Hundreds of concurrent creates and deletes, from threads and from tasks, and store invariants."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import anyio
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, consumes, invariant, rule

from asgi_kit import InMemorySessionDatabase, Session, token_digest
from fastapi_users.extensions.session_manager import SessionManager


def test_threads_creating_and_revoking_leave_the_store_consistent() -> None:
    store = InMemorySessionDatabase()
    manager = SessionManager(session_db=store)
    users = [uuid.uuid4() for _ in range(8)]

    def create(i: int) -> Session:
        return manager.create_session(users[i % 8], f"token-{i}")

    with ThreadPoolExecutor(max_workers=16) as pool:
        sessions = list(pool.map(create, range(400)))
    assert len(store) == 400

    def revoke(session: Session) -> bool:
        return anyio.run(manager.revoke_session, session.id) is not None

    doomed = sessions[::2] * 2  # every other session, each revoked twice concurrently
    with ThreadPoolExecutor(max_workers=16) as pool:
        outcomes = list(pool.map(revoke, doomed))
    assert sum(outcomes) == 200  # each revoked exactly once
    survivors = {s.id for s in sessions[1::2]}
    listed = {s.id for u in users for s in anyio.run(manager.get_sessions, u)}
    assert listed == survivors
    assert len(store) == 200


@pytest.mark.anyio
async def test_tasks_creating_revoking_all_and_listing_add_up() -> None:
    store = InMemorySessionDatabase()
    manager = SessionManager(session_db=store)
    user = uuid.uuid4()
    ended: list[int] = []

    async def create(i: int) -> None:
        await manager.create_session(user, f"t{i}")

    async with anyio.create_task_group() as tg:
        for i in range(300):
            tg.start_soon(create, i)
    assert len(await manager.get_sessions(user)) == 300

    async def revoke_all() -> None:
        ended.append(len(await manager.revoke_all(user)))

    async with anyio.create_task_group() as tg:
        for _ in range(10):
            tg.start_soon(revoke_all)
    assert sum(ended) == 300  # no session ended twice, none missed
    assert await manager.get_sessions(user) == []
    for i in range(300):
        assert await store.get_by_token_digest(token_digest(f"t{i}")) is None


class StoreMachine(RuleBasedStateMachine):
    """The in-memory store against a plain model: what was created and not deleted is there."""

    sessions = Bundle("sessions")

    def __init__(self) -> None:
        super().__init__()
        self.store = InMemorySessionDatabase()
        self.model: dict[uuid.UUID, Session] = {}
        self.users = [uuid.uuid4() for _ in range(3)]

    @rule(target=sessions, user=st.integers(0, 2))
    def create(self, user: int) -> Session:
        session = Session(user_id=self.users[user], token=uuid.uuid4().hex)
        anyio.run(self.store.create, session)
        self.model[session.id] = session
        return session

    @rule(session=consumes(sessions))
    def delete(self, session: Session) -> None:
        ended = anyio.run(self.store.delete, session.id)
        assert (ended is not None) == (session.id in self.model)
        self.model.pop(session.id, None)

    @rule(user=st.integers(0, 2), keep=sessions)
    def delete_for_user(self, user: int, keep: Session) -> None:
        uid = self.users[user]
        ended = anyio.run(lambda: self.store.delete_for_user(uid, keep=[keep.id]))
        expected = {i for i, s in self.model.items() if s.user_id == uid and i != keep.id}
        assert {s.id for s in ended} == expected
        for i in expected:
            del self.model[i]

    @invariant()
    def store_matches_model(self) -> None:
        assert len(self.store) == len(self.model)
        for uid in self.users:
            listed = anyio.run(self.store.list_for_user, uid)
            assert {s.id for s in listed} == {i for i, s in self.model.items() if s.user_id == uid}
        for session in self.model.values():
            found = anyio.run(self.store.get_by_token_digest, session.token_digest)
            assert found is not None
            assert found.id == session.id


StoreMachine.TestCase.settings = settings(max_examples=40, stateful_step_count=20, deadline=None)
test_store_invariants = StoreMachine.TestCase
