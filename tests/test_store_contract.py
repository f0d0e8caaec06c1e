"""The contract every SessionDatabase must meet; runs unchanged on every store kind."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path
from typing import Protocol, runtime_checkable

import anyio
import pytest

from asgi_kit import (
    DuplicateSessionError,
    Session,
    SessionDatabase,
    coerce_user_id,
    token_digest,
    utcnow,
)

from .stores import open_instances

pytestmark = pytest.mark.anyio


@runtime_checkable
class Closable(Protocol):
    async def aclose(self) -> None: ...


def new(user_id: object = None, **kwargs: object) -> Session:
    """A session of ``user_id`` (any form an app may give it; a new UUID by default)."""
    user = uuid.uuid4() if user_id is None else user_id
    return Session(user_id=user, token=uuid.uuid4().hex, **kwargs)  # type: ignore[arg-type]


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


# Opaque user ids, each as an app may give it: every store must return it exactly.
_UUID = uuid.UUID("6a1ef8b0-61f1-4d0c-9f7c-3f1e2d6b9a10")
GIVEN_IDS: dict[str, object] = {
    "plain": "user1",
    "auth0": "auth0|5f7c8ec7c33c6c004bbafe82",
    "unicode": "ユーザー名 ü 🙂",  # a space, a character outside the BMP
    "longest-emoji": "🙂" * 255,  # 255 characters, 1,020 bytes in UTF-8
    "longest-ascii": "x" * 255,
    "colons": "a:b:c",
    "hash-tag": "{sessions}:x",
    "braces": "tenant:{x}:{}",
    "spaces": " leading and trailing ",
    "int": 42,  # becomes "42"
    "negative-int": -7,
    "uuid": _UUID,
    "uuid-string": str(_UUID),  # becomes the UUID
    "uuid-upper": str(_UUID).upper(),  # stays a string: not the canonical form
    "uuid-hex": _UUID.hex,  # 32 hex digits: a string (the old SQLite column held UUIDs so)
}


def exactly(got: Session | None, given: object) -> None:
    """``got`` holds the id ``given`` became: equal, of the same type, same text."""
    assert got is not None
    expected = coerce_user_id(given)
    assert got.user_id == expected
    assert type(got.user_id) is type(expected)
    assert str(got.user_id) == str(given)


@pytest.mark.parametrize("given", GIVEN_IDS.values(), ids=GIVEN_IDS.keys())
async def test_opaque_user_ids_read_back_exactly(store: SessionDatabase, given: object) -> None:
    user = coerce_user_id(given)
    s = new(given, idle_timeout=timedelta(minutes=5), expires_at=utcnow() + timedelta(hours=1))
    await store.create(s)
    exactly(await store.get_by_token_digest(s.token_digest), given)
    exactly(await store.get(s.id), given)
    listed = await store.list_for_user(user)
    assert listed == [s]
    exactly(listed[0], given)
    await store.touch(s, utcnow())
    exactly(await store.get(s.id), given)
    ended = await store.delete_for_user(user)
    assert [e.id for e in ended] == [s.id]
    exactly(ended[0], given)
    assert await store.list_for_user(user) == []
    expired = new(given, expires_at=utcnow() - timedelta(seconds=1))
    await store.create(expired)
    popped = await store.pop_expired()
    assert [p.id for p in popped] == [expired.id]
    exactly(popped[0], given)


async def test_a_user_given_in_two_forms_is_one_user(store: SessionDatabase) -> None:
    pairs = [(_UUID, str(_UUID)), (42, "42")]
    for a, b in pairs:
        first, second = new(a), new(b)
        await store.create(first)
        await store.create(second)
        assert {s.id for s in await store.list_for_user(first.user_id)} == {first.id, second.id}
    upper = new(str(_UUID).upper())  # not the canonical form: another user
    await store.create(upper)
    assert len(await store.list_for_user(_UUID)) == 2
    assert await store.list_for_user(str(_UUID).upper()) == [upper]
    assert len(await store.delete_for_user(coerce_user_id("42"))) == 2
    assert len(await store.list_for_user(_UUID)) == 2


# Ids that are prefixes, suffixes or separator-joined pieces of one another.
NEIGHBOURS = ["user1", "user10", "user", "1", "u", "u:", "u:1", "user1:", ":user1", "{u}", "{u}:1"]


async def test_users_with_neighbouring_ids_never_meet(store: SessionDatabase) -> None:
    expired_at = utcnow() - timedelta(seconds=1)
    mine = {u: [new(u), new(u), new(u, expires_at=expired_at)] for u in NEIGHBOURS}
    for sessions in mine.values():
        for s in sessions:
            await store.create(s)
    for u, sessions in mine.items():
        assert {s.id for s in await store.list_for_user(u)} == {s.id for s in sessions[:2]}, u
    popped = await store.pop_expired()
    assert {(p.user_id, p.id) for p in popped} == {(u, s[2].id) for u, s in mine.items()}
    ended = await store.delete_for_user("user1", keep=[mine["user1"][0].id])
    assert [s.id for s in ended] == [mine["user1"][1].id]
    for u, sessions in mine.items():
        alive = sessions[:1] if u == "user1" else sessions[:2]
        assert {s.id for s in await store.list_for_user(u)} == {s.id for s in alive}, u
        assert [s.id for s in await store.delete_for_user(u)] != [], u
    for u in NEIGHBOURS:
        assert await store.list_for_user(u) == []


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
    updated = await store.touch(s, now)
    got = await store.get(s.id)
    assert got is not None
    assert got.last_seen_at == now
    assert got.deadline == now + timedelta(minutes=5)
    assert updated == got  # the store's updated session: the resolver builds no other
    assert updated is not None
    assert updated.token == ""
    assert await store.touch(new(), now) is None  # unknown: no error, nothing created


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


async def test_pop_expired_returns_exactly_the_expired_sessions(store: SessionDatabase) -> None:
    now = utcnow()
    expired = new(expires_at=now - timedelta(seconds=1))
    idle = new(idle_timeout=timedelta(minutes=5), last_seen_at=now - timedelta(minutes=6))
    later = new(expires_at=now + timedelta(hours=1), idle_timeout=timedelta(hours=2))
    forever = new()
    for s in (expired, idle, later, forever):
        await store.create(s)
    popped = await store.pop_expired()
    assert popped == [idle, expired]  # earliest deadline first
    assert all(s.token == "" for s in popped)
    assert await store.pop_expired() == []
    assert await store.get(later.id) == later
    assert await store.pop_expired(now + timedelta(hours=2)) == [later]
    assert await store.pop_expired(now + timedelta(days=999)) == []
    assert await store.get(forever.id) == forever
    assert await store.list_for_user(expired.user_id) == []


async def test_pop_expired_respects_the_limit(store: SessionDatabase) -> None:
    past = utcnow() - timedelta(minutes=1)
    expired = [new(expires_at=past + timedelta(seconds=i)) for i in range(5)]
    for s in [expired[3], expired[0], expired[4], expired[2], expired[1]]:
        await store.create(s)
    batches = [await store.pop_expired(limit=2) for _ in range(4)]
    assert batches == [expired[:2], expired[2:4], expired[4:], []]


async def test_pop_expired_follows_the_deadline_that_touch_moves(store: SessionDatabase) -> None:
    start = utcnow() - timedelta(minutes=4)
    s = new(idle_timeout=timedelta(minutes=5), created_at=start)
    await store.create(s)
    for i in range(70):  # many moves of one deadline (the in-memory heap compacts itself)
        await store.touch(s, start + timedelta(seconds=i))
    now = utcnow()
    await store.touch(s, now)
    assert await store.pop_expired(now + timedelta(minutes=2)) == []  # the old deadline passed
    popped = await store.pop_expired(now + timedelta(minutes=5))
    assert [p.id for p in popped] == [s.id]
    assert popped[0].last_seen_at == now


async def pop_all(store: SessionDatabase, into: list[Session]) -> None:
    """Pop ``store``'s expired sessions in small batches until none is left for this caller."""
    while batch := await store.pop_expired(limit=7):
        into.extend(batch)


async def test_concurrent_pops_never_return_a_session_twice(store: SessionDatabase) -> None:
    past = utcnow() - timedelta(seconds=1)
    expired = [new(expires_at=past) for _ in range(60)]
    alive = new(expires_at=utcnow() + timedelta(hours=1))
    for s in [*expired, alive]:
        await store.create(s)
    popped: list[Session] = []
    async with anyio.create_task_group() as tg:
        for _ in range(4):
            tg.start_soon(pop_all, store, popped)
    assert len(popped) == len(expired)  # each once...
    assert {s.id for s in popped} == {s.id for s in expired}  # ...and all of them
    assert await store.get(alive.id) == alive


@pytest.mark.parametrize("kind", ["sqlite", "postgres", "redis"])
async def test_two_instances_popping_at_once_share_the_expired_sessions(
    kind: str, tmp_path: Path
) -> None:
    async with open_instances(kind, tmp_path) as (first, second):
        past = utcnow() - timedelta(seconds=1)
        expired = [new(expires_at=past) for _ in range(100)]
        for s in expired:
            await first.create(s)
        popped: list[Session] = []
        async with anyio.create_task_group() as tg:
            for instance in (first, second, first, second):
                tg.start_soon(pop_all, instance, popped)
        assert len(popped) == len(expired)
        assert {s.id for s in popped} == {s.id for s in expired}
        assert await second.pop_expired() == []


async def test_every_store_closes_as_an_app_shutdown_calls_it_and_serves_after(
    store: SessionDatabase,
) -> None:
    # An app's lifespan ends with ``await session_store.aclose()`` whatever the store (the
    # README's FastAPI Users app does); a test client may run the lifespan again after it.
    s = new()
    await store.create(s)
    assert isinstance(store, Closable)  # not in the protocol: apps call it on their store
    await store.aclose()
    await store.aclose()  # twice is harmless
    assert await store.get(s.id) == s
