"""The contract every SessionDatabase must meet; runs unchanged on every store kind."""

from __future__ import annotations

import uuid
from datetime import timedelta

import anyio
import pytest

from asgi_kit import DuplicateSessionError, Session, SessionDatabase, token_digest, utcnow

pytestmark = pytest.mark.anyio


def new(user_id: uuid.UUID | None = None, **kwargs: object) -> Session:
    return Session(user_id=user_id or uuid.uuid4(), token=uuid.uuid4().hex, **kwargs)  # type: ignore[arg-type]


async def test_create_then_get_by_digest_and_id(store: SessionDatabase) -> None:
    s = new(user_agent="Firefox", ip_address="203.0.113.9")
    await store.create(s)
    by_digest = await store.get_by_token_digest(token_digest(s.token))
    by_id = await store.get(s.id)
    assert by_digest == by_id == s
    assert by_digest is not None
    assert by_digest.token == ""  # stores never hand back (or keep) the raw token
    assert by_digest.user_agent == "Firefox"
    assert by_digest.ip_address == "203.0.113.9"
    assert by_digest.created_at == s.created_at


async def test_unknown_lookups_return_none(store: SessionDatabase) -> None:
    assert await store.get_by_token_digest(token_digest("nope")) is None
    assert await store.get(uuid.uuid4()) is None
    assert await store.list_for_user(uuid.uuid4()) == []
    assert await store.delete(uuid.uuid4()) is None
    assert await store.delete_for_user(uuid.uuid4()) == []


async def test_duplicate_id_or_token_is_refused(store: SessionDatabase) -> None:
    s = new()
    await store.create(s)
    with pytest.raises(DuplicateSessionError):
        await store.create(Session(user_id=uuid.uuid4(), token=s.token))
    with pytest.raises(DuplicateSessionError):
        await store.create(Session(id=s.id, user_id=s.user_id, token="other"))
    assert await store.list_for_user(s.user_id) == [s]


async def test_list_is_per_user_and_newest_first(store: SessionDatabase) -> None:
    user, other = uuid.uuid4(), uuid.uuid4()
    start = utcnow()
    mine = [new(user, created_at=start + timedelta(seconds=i)) for i in range(5)]
    for s in [mine[2], mine[0], mine[4], mine[1], mine[3]]:
        await store.create(s)
    await store.create(new(other))
    assert [s.id for s in await store.list_for_user(user)] == [s.id for s in reversed(mine)]
    assert len(await store.list_for_user(other)) == 1


async def test_expired_sessions_are_never_returned(store: SessionDatabase) -> None:
    past = utcnow() - timedelta(seconds=1)
    expired = new(expires_at=past)
    idle = new(idle_timeout=timedelta(minutes=5), last_seen_at=utcnow() - timedelta(minutes=6))
    alive = new(expires_at=utcnow() + timedelta(hours=1), idle_timeout=timedelta(minutes=5))
    for s in (expired, idle, alive):
        await store.create(s)
    for s in (expired, idle):
        assert await store.get(s.id) is None
        assert await store.get_by_token_digest(s.token_digest) is None
        assert await store.list_for_user(s.user_id) == []
        assert await store.delete(s.id) is None
    assert await store.get(alive.id) == alive


async def test_touch_moves_last_seen_and_the_idle_deadline(store: SessionDatabase) -> None:
    then = utcnow() - timedelta(minutes=4)
    s = new(idle_timeout=timedelta(minutes=5), created_at=then)
    await store.create(s)
    now = utcnow()
    await store.touch(s, now)
    got = await store.get(s.id)
    assert got is not None
    assert got.last_seen_at == now
    assert got.deadline == now + timedelta(minutes=5)
    await store.touch(new(), now)  # unknown: no error, nothing created


async def test_delete_one(store: SessionDatabase) -> None:
    a, b = new(), new()
    await store.create(a)
    await store.create(b)
    assert await store.delete(a.id) == a
    assert await store.delete(a.id) is None
    assert await store.get(a.id) is None
    assert await store.get_by_token_digest(a.token_digest) is None
    assert await store.get(b.id) == b


async def test_delete_for_user_with_and_without_keep(store: SessionDatabase) -> None:
    user = uuid.uuid4()
    sessions = [new(user) for _ in range(4)]
    bystander = new()
    for s in [*sessions, bystander]:
        await store.create(s)
    ended = await store.delete_for_user(user, keep=[sessions[0].id])
    assert {s.id for s in ended} == {s.id for s in sessions[1:]}
    assert await store.list_for_user(user) == [sessions[0]]
    assert {s.id for s in await store.delete_for_user(user)} == {sessions[0].id}
    assert await store.list_for_user(user) == []
    assert await store.get(bystander.id) == bystander


async def test_purge_expired_removes_only_expired(store: SessionDatabase) -> None:
    now = utcnow()
    old = [new(expires_at=now - timedelta(seconds=5)) for _ in range(3)]
    fresh = [new(expires_at=now + timedelta(hours=1)), new()]
    for s in [*old, *fresh]:
        await store.create(s)
    assert await store.purge_expired() == 3
    assert await store.purge_expired() == 0
    for s in fresh:
        assert await store.get(s.id) == s
    later = now + timedelta(hours=2)
    assert await store.purge_expired(later) == 1


async def test_concurrent_creates_and_deletes_stay_consistent(store: SessionDatabase) -> None:
    user = uuid.uuid4()
    sessions = [new(user) for _ in range(200)]
    async with anyio.create_task_group() as tg:
        for s in sessions:
            tg.start_soon(store.create, s)
    assert len(await store.list_for_user(user)) == 200
    deleted: list[Session | None] = []

    async def delete(s: Session) -> None:
        deleted.append(await store.delete(s.id))

    async with anyio.create_task_group() as tg:
        for s in sessions[:100]:
            tg.start_soon(delete, s)
            tg.start_soon(delete, s)  # twice: exactly one of the two wins
    assert sum(d is not None for d in deleted) == 100
    remaining = await store.list_for_user(user)
    assert {s.id for s in remaining} == {s.id for s in sessions[100:]}
