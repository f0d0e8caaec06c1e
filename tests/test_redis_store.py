"""RedisSessionDatabase against the real Redis server: what it writes, TTLs, clean-up, prefixes."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone
from typing import Any

import anyio
import pytest
import redis.asyncio as aioredis
from redis import exceptions as redis_errors

from asgi_kit import (
    ConfigurationError,
    RedisSessionDatabase,
    Session,
    SessionResolver,
    StoreUnavailableError,
    generate_token,
    token_digest,
    utcnow,
)

from .servers import REDIS_ADDRESS, REDIS_URL, free_port, require, unique_name, wait_until

pytestmark = [pytest.mark.anyio, pytest.mark.redis]

UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@pytest.fixture
async def raw() -> AsyncIterator[aioredis.Redis]:
    """A plain client on the same server, to look at what the store wrote."""
    require("Redis", REDIS_ADDRESS)
    client = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    yield client
    await client.aclose()


@asynccontextmanager
async def fresh_store(raw: aioredis.Redis, **options: Any) -> AsyncIterator[RedisSessionDatabase]:
    """A store under a prefix of its own, emptied and closed afterwards."""
    db = RedisSessionDatabase(REDIS_URL, key_prefix=f"test:{unique_name('redis')}:", **options)
    try:
        yield db
        await db.clear()
        assert await keys(raw, db) == set()
    finally:
        await db.aclose()


@pytest.fixture
async def store(raw: aioredis.Redis) -> AsyncIterator[RedisSessionDatabase]:
    async with fresh_store(raw) as db:
        yield db


@pytest.fixture
async def short_grace(raw: aioredis.Redis) -> AsyncIterator[RedisSessionDatabase]:
    """A store whose expired sessions' keys outlive their deadline by 0.1 s only."""
    async with fresh_store(raw, expired_grace=0.1) as db:
        yield db


def new(user_id: object = None, **kwargs: Any) -> Session:
    user = uuid.uuid4() if user_id is None else user_id
    return Session(user_id=user, token=generate_token(), **kwargs)  # type: ignore[arg-type]


def glob_escape(text: str) -> str:
    return "".join(f"\\{c}" if c in "*?[]\\" else c for c in text)


async def keys(raw: aioredis.Redis, store: RedisSessionDatabase) -> set[str]:
    return {k async for k in raw.scan_iter(match=f"{glob_escape(store.key_prefix)}*")}


async def dump(raw: aioredis.Redis, store: RedisSessionDatabase) -> dict[str, Any]:
    """Every key under the store's prefix with its value (strings and sorted sets)."""
    found: dict[str, Any] = {}
    for key in await keys(raw, store):
        kind = await raw.type(key)
        if kind == "string":
            found[key] = await raw.get(key)
        else:
            assert kind == "zset", key
            found[key] = await raw.zrange(key, 0, -1, withscores=True)
    return found


def member(session: Session) -> str:
    return f"{session.id}:{session.user_id}"


def ms_ceil(moment: datetime) -> int:
    return -(
        -((moment - datetime(1970, 1, 1, tzinfo=timezone.utc)) // timedelta(microseconds=1)) // 1000
    )


async def test_only_digests_are_written_never_tokens(
    store: RedisSessionDatabase, raw: aioredis.Redis
) -> None:
    user = uuid.uuid4()
    sessions = [
        new(user, user_agent="Mozilla/5.0 (X11)", ip_address="203.0.113.7"),
        new(user, expires_at=utcnow() + timedelta(hours=1), idle_timeout=timedelta(minutes=5)),
        new(),
    ]
    for s in sessions:
        await store.create(s)
    await store.touch(sessions[1], utcnow())
    text = repr(await dump(raw, store))
    digests = {s.token_digest for s in sessions}
    assert all(d in text for d in digests)  # the data is there, under its digest
    for s in sessions:
        assert s.token not in text
        # Not even a piece of it: every 12-character window of the token is absent.
        assert not any(s.token[i : i + 12] in text for i in range(len(s.token) - 11))
    # Every long token-like run of characters is a digest, a UUID or part of the prefix.
    allowed = digests | set(store.key_prefix.split(":"))
    for run in re.findall(r"[A-Za-z0-9_\-+/=]{20,}", text):
        assert run in allowed or UUID_RE.fullmatch(run), run


async def test_sessions_read_back_exactly(store: RedisSessionDatabase) -> None:
    india = timezone(timedelta(hours=5, minutes=30))
    s = new(
        created_at=datetime(2031, 1, 2, 3, 4, 5, 123456, tzinfo=india),
        expires_at=datetime(2031, 2, 3, 4, 5, 6, 654321, tzinfo=timezone.utc),
        idle_timeout=timedelta(days=30, microseconds=7),
        last_seen_at=datetime(2031, 1, 2, 3, 4, 6, 1, tzinfo=india),
        user_agent='agent \u2713 "quoted"',
        ip_address="2001:db8::1",
    )
    await store.create(s)
    for got in (
        await store.get(s.id),
        await store.get_by_token_digest(s.token_digest),
        *await store.list_for_user(s.user_id),
    ):
        assert got is not None
        for field in Session.__dataclass_fields__:
            if field != "token":
                assert getattr(got, field) == getattr(s, field), field
        assert got.token == ""
        assert got.created_at.tzinfo == timezone.utc
        assert got.created_at.microsecond == 123456
        assert got.idle_timeout == timedelta(days=30, microseconds=7)


async def test_pxat_is_the_deadline_plus_the_grace_and_touch_moves_it(
    store: RedisSessionDatabase, raw: aioredis.Redis
) -> None:
    p = store.key_prefix
    grace = store.expired_grace // timedelta(milliseconds=1)
    assert grace == 3_600_000  # the default: one hour
    forever = new()
    absolute = new(expires_at=utcnow() + timedelta(hours=1))
    sliding = new(
        idle_timeout=timedelta(minutes=5),
        created_at=utcnow() - timedelta(minutes=4),
        expires_at=utcnow() + timedelta(hours=1),
    )
    for s in (forever, absolute, sliding):
        await store.create(s)
    for s in (absolute, sliding):
        assert s.deadline is not None
        for key in (f"{p}s2:{s.token_digest}", f"{p}id:{s.id}"):
            assert await raw.pexpiretime(key) == ms_ceil(s.deadline) + grace
        assert await raw.zscore(f"{p}deadlines", member(s)) == s.deadline.timestamp() * 1e6
    assert await raw.pttl(f"{p}s2:{forever.token_digest}") == -1
    assert await raw.pttl(f"{p}id:{forever.id}") == -1
    assert await raw.zscore(f"{p}deadlines", member(forever)) is None

    now = utcnow()
    await store.touch(sliding, now)
    moved = now + timedelta(minutes=5)
    assert sliding.deadline is not None
    assert moved > sliding.deadline
    for key in (f"{p}s2:{sliding.token_digest}", f"{p}id:{sliding.id}"):
        assert await raw.pexpiretime(key) == ms_ceil(moved) + grace
    got = await store.get(sliding.id)
    assert got is not None
    assert got.last_seen_at == now
    assert got.deadline == moved
    await store.touch(forever, now)
    assert await raw.pttl(f"{p}s2:{forever.token_digest}") == -1


async def test_revoking_one_and_all_leaves_no_keys_behind(
    store: RedisSessionDatabase, raw: aioredis.Redis
) -> None:
    p = store.key_prefix
    user = uuid.uuid4()
    mine = [new(user), new(user, expires_at=utcnow() + timedelta(hours=1)), new(user), new(user)]
    other = new(expires_at=utcnow() + timedelta(hours=1))
    for s in [*mine, other]:
        await store.create(s)

    def keys_of(*sessions: Session) -> set[str]:
        return {k for s in sessions for k in (f"{p}s2:{s.token_digest}", f"{p}id:{s.id}")}

    others = keys_of(other) | {f"{p}u:{other.user_id}", f"{p}deadlines"}
    assert await keys(raw, store) == keys_of(*mine) | others | {f"{p}u:{user}"}

    assert await store.delete(mine[1].id) == mine[1]
    assert await keys(raw, store) == keys_of(mine[0], *mine[2:]) | others | {f"{p}u:{user}"}
    assert set(await raw.zrange(f"{p}u:{user}", 0, -1)) == {str(s.id) for s in mine if s != mine[1]}
    assert await raw.zrange(f"{p}deadlines", 0, -1) == [member(other)]

    ended = await store.delete_for_user(user, keep=[mine[0].id])
    assert {s.id for s in ended} == {mine[2].id, mine[3].id}
    assert await keys(raw, store) == keys_of(mine[0]) | others | {f"{p}u:{user}"}
    assert await raw.zrange(f"{p}u:{user}", 0, -1) == [str(mine[0].id)]

    assert await store.delete_for_user(user) == [mine[0]]
    assert await keys(raw, store) == others
    assert await store.delete(other.id) == other
    assert await keys(raw, store) == set()


async def test_touch_never_revives_a_revoked_session(
    store: RedisSessionDatabase, raw: aioredis.Redis
) -> None:
    s = new(idle_timeout=timedelta(minutes=5))
    await store.create(s)
    assert await store.delete(s.id) == s
    await store.touch(s, utcnow())
    assert await keys(raw, store) == set()
    assert await store.get_by_token_digest(s.token_digest) is None


async def test_sessions_gone_by_ttl_leave_index_entries_until_listed(
    short_grace: RedisSessionDatabase, raw: aioredis.Redis
) -> None:
    store = short_grace
    p = store.key_prefix
    user = uuid.uuid4()
    short = [new(user, expires_at=utcnow() + timedelta(milliseconds=150)) for _ in range(2)]
    lasting = new(user)
    for s in [*short, lasting]:
        await store.create(s)

    async def gone() -> bool:
        return not await raw.exists(*(f"{p}s2:{s.token_digest}" for s in short))

    await wait_until(gone, "Redis removed the data after the deadline and grace, by itself")
    assert await raw.zcard(f"{p}u:{user}") == 3  # the index still names them...
    assert await raw.zcard(f"{p}deadlines") == 2
    assert await store.list_for_user(user) == [lasting]  # ...until the user's list drops them
    assert await raw.zrange(f"{p}u:{user}", 0, -1) == [str(lasting.id)]
    assert await raw.exists(f"{p}deadlines") == 0
    assert await keys(raw, store) == {
        f"{p}s2:{lasting.token_digest}",
        f"{p}id:{lasting.id}",
        f"{p}u:{user}",
    }
    assert await store.purge_expired() == 0  # already dropped: not counted twice


async def test_an_expired_session_in_its_grace_is_never_read_but_is_popped(
    store: RedisSessionDatabase, raw: aioredis.Redis
) -> None:
    p, user, now = store.key_prefix, uuid.uuid4(), utcnow()
    expired = new(user, expires_at=now - timedelta(seconds=1))
    idle = new(user, idle_timeout=timedelta(minutes=5), last_seen_at=now - timedelta(minutes=6))
    alive = new(user, expires_at=now + timedelta(hours=1))
    for s in (expired, idle, alive):
        await store.create(s)
    for s in (expired, idle):
        assert await raw.exists(f"{p}s2:{s.token_digest}", f"{p}id:{s.id}") == 2  # still held
        assert await store.get(s.id) is None
        assert await store.get_by_token_digest(s.token_digest) is None
    assert await store.list_for_user(user) == [alive]
    assert await raw.zcard(f"{p}u:{user}") == 3  # listing leaves them for pop_expired

    assert await store.pop_expired() == [idle, expired]  # earliest deadline first
    assert await store.pop_expired() == []
    assert await keys(raw, store) == {
        f"{p}s2:{alive.token_digest}",
        f"{p}id:{alive.id}",
        f"{p}u:{user}",
        f"{p}deadlines",
    }


async def test_after_the_grace_the_keys_are_gone_and_nothing_is_reported(
    short_grace: RedisSessionDatabase, raw: aioredis.Redis
) -> None:
    store, p = short_grace, short_grace.key_prefix
    s = new(expires_at=utcnow() + timedelta(milliseconds=100))
    await store.create(s)

    async def gone() -> bool:
        return await raw.exists(f"{p}s2:{s.token_digest}", f"{p}id:{s.id}") == 0

    await wait_until(gone, "Redis removed the keys once the grace was over")
    assert await raw.zcard(f"{p}deadlines") == 1  # only the index entries are left
    assert await store.pop_expired() == []  # nothing left to report...
    assert await keys(raw, store) == set()  # ...and the entries are dropped


async def test_entries_already_gone_do_not_use_up_the_limit(
    store: RedisSessionDatabase, raw: aioredis.Redis
) -> None:
    p, past = store.key_prefix, utcnow() - timedelta(minutes=1)
    gone = [new(expires_at=past - timedelta(seconds=i)) for i in range(3)]  # due first
    held = [new(expires_at=past + timedelta(seconds=i)) for i in range(3)]
    for s in [*gone, *held]:
        await store.create(s)
    for s in gone:  # what TTL does once the grace is over
        await raw.delete(f"{p}s2:{s.token_digest}", f"{p}id:{s.id}")
    assert await store.pop_expired(limit=2) == held[:2]
    assert await store.pop_expired(limit=2) == held[2:]
    assert await keys(raw, store) == set()


def test_a_negative_grace_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="expired_grace"):
        RedisSessionDatabase(REDIS_URL, expired_grace=-1)


async def test_delete_for_user_drops_index_entries_of_expired_sessions(
    short_grace: RedisSessionDatabase, raw: aioredis.Redis
) -> None:
    store, user = short_grace, uuid.uuid4()
    expired = new(user, expires_at=utcnow() - timedelta(seconds=1))
    kept_but_expired = new(user, expires_at=utcnow() - timedelta(seconds=1))
    alive = new(user)
    for s in (expired, kept_but_expired, alive):
        await store.create(s)
    assert await raw.zcard(f"{store.key_prefix}u:{user}") == 3
    await anyio.sleep(0.3)  # the grace (0.1 s after the write, for these) is over: keys gone
    assert await store.delete_for_user(user, keep=[kept_but_expired.id]) == [alive]
    assert await keys(raw, store) == set()


async def test_purge_counts_every_expired_session_once(
    store: RedisSessionDatabase, raw: aioredis.Redis
) -> None:
    now = utcnow()
    user = uuid.uuid4()
    already_gone = [new(user, expires_at=now - timedelta(seconds=1)) for _ in range(3)]
    later = [new(expires_at=now + timedelta(hours=1)) for _ in range(2)]
    forever = new(user)
    for s in [*already_gone, *later, forever]:
        await store.create(s)
    assert await store.purge_expired() == 3
    assert await store.purge_expired() == 0
    assert await store.list_for_user(user) == [forever]
    # A purge "as of" later removes sessions Redis still holds (their TTL not yet reached).
    assert await store.purge_expired(now + timedelta(hours=2)) == 2
    p = store.key_prefix
    assert await keys(raw, store) == {
        f"{p}s2:{forever.token_digest}",
        f"{p}id:{forever.id}",
        f"{p}u:{user}",
    }


async def test_purge_periodically_drops_what_ttl_left_behind(
    store: RedisSessionDatabase, raw: aioredis.Redis
) -> None:
    user = uuid.uuid4()
    expired = new(user, expires_at=utcnow() - timedelta(seconds=1))  # Redis drops its data
    forever = new(user)
    for s in (expired, forever):
        await store.create(s)
    p = store.key_prefix
    assert await raw.zcard(f"{p}u:{user}") == 2

    async def cleaned() -> bool:
        return await raw.zrange(f"{p}u:{user}", 0, -1) == [str(forever.id)]

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(store.purge_periodically, 0.01)
        await wait_until(cleaned, "the loop drops the expired session's index entries")
        tasks.cancel_scope.cancel()
    assert await keys(raw, store) == {
        f"{p}s2:{forever.token_digest}",
        f"{p}id:{forever.id}",
        f"{p}u:{user}",
    }


async def test_purge_works_in_batches(store: RedisSessionDatabase, raw: aioredis.Redis) -> None:
    gone = utcnow() - timedelta(seconds=1)
    for _ in range(1203):  # more than two batches of 500
        await store.create(new(expires_at=gone))
    assert await store.purge_expired() == 1203
    assert await keys(raw, store) == set()


async def test_revoke_one_and_revoke_all_race_ends_each_session_once(
    store: RedisSessionDatabase, raw: aioredis.Redis
) -> None:
    user = uuid.uuid4()
    sessions = [new(user, expires_at=utcnow() + timedelta(hours=1)) for _ in range(60)]
    for s in sessions:
        await store.create(s)
    ended: list[Session] = []

    async def one(s: Session) -> None:
        if (gone := await store.delete(s.id)) is not None:
            ended.append(gone)

    async def everything() -> None:
        ended.extend(await store.delete_for_user(user))

    async with anyio.create_task_group() as tg:
        for i, s in enumerate(sessions):
            tg.start_soon(one, s)
            if i % 20 == 0:
                tg.start_soon(everything)
    assert sorted(s.id for s in ended) == sorted(s.id for s in sessions)
    assert await keys(raw, store) == set()


async def test_user_ids_come_last_in_every_key_and_value(
    store: RedisSessionDatabase, raw: aioredis.Redis
) -> None:
    p, user = store.key_prefix, "tenant:{x} ユーザー 🙂:"
    s = new(user, expires_at=utcnow() + timedelta(hours=1))
    await store.create(s)
    assert await dump(raw, store) == {
        f"{p}s2:{s.token_digest}": await raw.get(f"{p}s2:{s.token_digest}"),
        f"{p}id:{s.id}": f"{s.token_digest}:{user}",
        f"{p}u:{user}": [(str(s.id), s.created_at.timestamp() * 1e6)],
        f"{p}deadlines": [(f"{s.id}:{user}", pytest.approx(s.deadline.timestamp() * 1e6))],
    }
    assert await store.get_by_token_digest(s.token_digest) == s
    assert await store.delete(s.id) == s
    assert await keys(raw, store) == set()


async def as_previous_layout(raw: aioredis.Redis, store: RedisSessionDatabase, s: Session) -> None:
    """Move ``s``'s keys to the previous layout: ``s:`` key, user id first in each value."""
    p = store.key_prefix
    await raw.rename(f"{p}s2:{s.token_digest}", f"{p}s:{s.token_digest}")
    await raw.set(f"{p}id:{s.id}", f"{s.user_id}:{s.token_digest}", keepttl=True)
    if s.deadline is not None:
        await raw.zrem(f"{p}deadlines", member(s))
        await raw.zadd(f"{p}deadlines", {f"{s.user_id}:{s.id}": s.deadline.timestamp() * 1e6})


async def test_sessions_of_the_previous_layout_are_never_read(
    store: RedisSessionDatabase, raw: aioredis.Redis
) -> None:
    p, user = store.key_prefix, uuid.uuid4()
    past = utcnow() - timedelta(seconds=1)
    old = [
        new(user),
        new(user, expires_at=past),
        new(user, expires_at=utcnow() + timedelta(hours=1)),
    ]
    for s in old:
        await store.create(s)
        await as_previous_layout(raw, store, s)
    current = new(user)
    await store.create(current)
    for s in old:  # not by token, not by id, not in the user's list: a revoked-looking session
        assert await store.get_by_token_digest(s.token_digest) is None
        assert await store.get(s.id) is None
    assert await store.list_for_user(user) == [current]  # the old entries are dropped...
    assert await raw.zrange(f"{p}u:{user}", 0, -1) == [str(current.id)]
    assert await store.pop_expired(utcnow() + timedelta(days=1)) == []  # ...and these too
    assert await raw.exists(f"{p}deadlines") == 0
    assert await store.delete_for_user(user) == [current]
    # What is left is inert: the old sessions' own keys, until their TTL or a flush.
    left = {k for s in old for k in (f"{p}s:{s.token_digest}", f"{p}id:{s.id}")}
    assert await keys(raw, store) == left


async def test_key_prefixes_isolate_stores(raw: aioredis.Redis) -> None:
    base = f"test:{unique_name('iso')}:"
    # "a*" would match "ab:..." keys if clear() did not escape glob characters.
    wild = RedisSessionDatabase(REDIS_URL, key_prefix=f"{base}a*")
    plain = RedisSessionDatabase(REDIS_URL, key_prefix=f"{base}ab:")
    try:
        s = new()
        await wild.create(s)
        await plain.create(s)  # same id and token: no conflict across prefixes
        assert await wild.delete(s.id) == s
        assert await plain.get(s.id) == s
        await wild.create(s)
        await wild.clear()
        assert await keys(raw, wild) == set()
        assert await plain.get_by_token_digest(s.token_digest) == s
        assert await plain.list_for_user(s.user_id) == [s]
    finally:
        await plain.clear()
        await wild.clear()
        await wild.aclose()
        await plain.aclose()
    assert {k async for k in raw.scan_iter(match=f"{base}*")} == set()


async def clients_named(raw: aioredis.Redis, name: str) -> int:
    return sum(c["name"] == name for c in await raw.client_list())


async def test_a_store_made_from_a_url_closes_its_client(raw: aioredis.Redis) -> None:
    name = unique_name("owned")
    store = RedisSessionDatabase(f"{REDIS_URL}?client_name={name}", key_prefix=f"test:{name}:")
    s = new()
    await store.create(s)
    assert await store.get(s.id) == s
    assert await clients_named(raw, name) == 1
    await store.clear()
    await store.aclose()

    async def closed() -> bool:
        return await clients_named(raw, name) == 0

    await wait_until(closed, "the store's connection is closed")


async def test_a_store_given_a_client_leaves_it_open(raw: aioredis.Redis) -> None:
    name = unique_name("given")
    client = aioredis.Redis.from_url(REDIS_URL, client_name=name, decode_responses=True)
    try:
        store = RedisSessionDatabase(client, key_prefix=f"test:{name}:")
        s = new(user_agent="str replies", expires_at=utcnow() + timedelta(hours=1))
        await store.create(s)  # decode_responses=True: replies are str, not bytes
        assert await store.get(s.id) == s
        assert await SessionResolver(store).resolve(s.token) == s
        assert await store.list_for_user(s.user_id) == [s]
        await store.clear()
        await store.aclose()
        assert await client.ping() is True
        assert await clients_named(raw, name) == 1
    finally:
        await client.aclose()


def test_an_empty_prefix_is_refused() -> None:
    with pytest.raises(ConfigurationError):
        RedisSessionDatabase(REDIS_URL, key_prefix="")


async def test_an_unreachable_server_raises_store_unavailable() -> None:
    store = RedisSessionDatabase(f"redis://127.0.0.1:{free_port()}/0", key_prefix="test:down:")
    s = new()
    calls: list[Callable[[], Awaitable[object]]] = [
        lambda: store.create(s),
        lambda: store.get_by_token_digest(s.token_digest),
        lambda: store.get(s.id),
        lambda: store.list_for_user(s.user_id),
        lambda: store.touch(s, utcnow()),
        lambda: store.delete(s.id),
        lambda: store.delete_for_user(s.user_id),
        store.purge_expired,
        store.pop_expired,
        store.clear,
    ]
    try:
        for call in calls:
            with pytest.raises(StoreUnavailableError) as info:
                await call()
            assert isinstance(info.value.__cause__, redis_errors.ConnectionError)
    finally:
        await store.aclose()


async def test_the_resolver_accepts_a_token_until_its_session_is_revoked(
    store: RedisSessionDatabase,
) -> None:
    s = new(expires_at=utcnow() + timedelta(hours=1))
    await store.create(s)
    assert await SessionResolver(store).resolve(s.token) == s
    assert await store.get_by_token_digest(token_digest(s.token)) == s
    assert await store.delete(s.id) == s
    assert await SessionResolver(store).resolve(s.token) is None
