"""Step-up and device names on every store: ``authenticated_at``, ``device`` and
``record_authentication``, over a real store of every kind (the ``store`` fixture).

``record_authentication`` writes ``authenticated_at`` alone: a touch or a rotation made
from a session read before it (the race a store guards against) must not undo it, and it
changes nothing of a session that is not active. Where it matters the tests look at what
the store wrote: the Redis JSON and its TTL, the SQL row.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import anyio
import pytest
import redis.asyncio as aioredis
from anyio.lowlevel import checkpoint
from sqlalchemy import update

from asgi_kit import (
    Device,
    ReauthenticatingSessionDatabase,
    RedisSessionDatabase,
    RotatingSessionDatabase,
    Session,
    SessionDatabase,
    SQLAlchemySessionDatabase,
    TokenRefresher,
    generate_token,
    utcnow,
)

from .stores import (
    ACCESS_LIFETIME as LIFETIME,
)
from .stores import (
    KIND_MARKS,
    STORE_KINDS,
    cluster_for,
    next_pair,
    open_store,
    raw_redis,
)
from .stores import (
    REFRESH_SECRET as SECRET,
)

pytestmark = pytest.mark.anyio

#: Server stores: those that keep records written by a previous version.
SHARED_KINDS = [pytest.param(k, marks=KIND_MARKS.get(k, ())) for k in STORE_KINDS if k != "memory"]
REDIS_KINDS = [pytest.param(k, marks=KIND_MARKS.get(k, ())) for k in ("redis", "redis-cluster")]
DEVICE = Device("Firefox 133", "Windows 11", "desktop", "Firefox on Windows")
#: Text a user agent or a device may hold that a store must keep as it is: JSON's special
#: characters, and the very field record_authentication rewrites, spelled out in it.
TRICKY = {
    "field": '"authenticated_at":"2000-01-01T00:00:00+00:00"',
    "escaped": '\\"authenticated_at\\":\\"x\\" ends in \\',
    "json": '{"authenticated_at":"x"}},"device":null,"authenticated_at":"y"}',
    "unicode": 'é ü 中文 🙂 "authenticated_at":"ü" \\u0022',
}
#: The keys step-up and device names (issue 23) added to every Redis record.
NEW_KEYS = ("authenticated_at", "device")
#: A known bug: the Redis script of record_authentication does not check the deadline, so
#: it writes into an expired session's record (kept ``expired_grace`` for pop_expired),
#: which pop_expired then reports with the new time; the store returns None all the same.


@runtime_checkable
class StepUpStore(ReauthenticatingSessionDatabase, RotatingSessionDatabase, Protocol):
    """What these tests use of a store: ``record_authentication`` and ``rotate``."""


def reauthenticating(store: SessionDatabase) -> StepUpStore:
    """``store`` as a ``StepUpStore`` (every asgi-kit store is one: checked here)."""
    assert isinstance(store, StepUpStore)
    return store


def refresher_over(store: SessionDatabase) -> TokenRefresher:
    """The refresher an app configures over ``store`` (5-minute access tokens)."""
    return TokenRefresher(store, access_token_lifetime=LIFETIME, secret=SECRET)


async def login(
    store: SessionDatabase, *, refresher: TokenRefresher | None = None, **fields: Any
) -> Session:
    """Create a session as a login does (with refresh tokens if ``refresher``); return it.

    Created a minute ago and ending in a day unless ``fields`` say otherwise, so that a
    touch or an authentication time of now visibly moves a field.
    """
    now = utcnow()
    sid = uuid.uuid4()
    fields.setdefault("created_at", now - timedelta(minutes=1))
    fields.setdefault("expires_at", now + timedelta(days=1))
    fields.setdefault("user_id", uuid.uuid4())
    tokens = {} if refresher is None else refresher.new_tokens(sid, now)
    session = Session(id=sid, token=generate_token(), **tokens, **fields)
    await store.create(session)
    return session


async def stored(store: SessionDatabase, session: Session) -> Session:
    """What the store holds of ``session`` now (it must be there)."""
    found = await store.get(session.id)
    assert found is not None
    return found


async def assert_reads_back(store: SessionDatabase, session: Session) -> None:
    """``session`` comes back equal by id, by token digest and in its user's listing."""
    assert await store.get(session.id) == session
    assert await store.get_by_token_digest(session.token_digest) == session
    assert session in await store.list_for_user(session.user_id)


def session_key(store: RedisSessionDatabase, session: Session) -> str:
    """The key of ``session``'s JSON record (its current access token's digest)."""
    return f"{store.key_prefix}s2:{session.token_digest}"


async def record_of(
    client: aioredis.Redis | aioredis.RedisCluster, store: RedisSessionDatabase, session: Session
) -> dict[str, Any]:
    """The JSON record ``store`` keeps of ``session`` (it must be there), decoded."""
    raw = await client.get(session_key(store, session))
    assert raw is not None
    record: dict[str, Any] = json.loads(raw)
    return record


async def expiry_of(
    client: aioredis.Redis | aioredis.RedisCluster, store: RedisSessionDatabase, session: Session
) -> tuple[int, int, float | None]:
    """When ``session``'s record and id key expire (PEXPIRETIME, ms; -1: never) and its
    score in the deadlines index (None: not there)."""
    record = await client.pexpiretime(session_key(store, session))
    id_key = await client.pexpiretime(f"{store.key_prefix}id:{session.id}")
    member = f"{session.id}:{session.user_id}"
    return record, id_key, await client.zscore(f"{store.key_prefix}deadlines", member)


async def write_as_before_the_upgrade(
    request: pytest.FixtureRequest, store: SessionDatabase, session: Session
) -> None:
    """Make the stored ``session`` what the previous version wrote: without the new fields.

    Redis: its JSON without the two keys, set back with the same TTL. SQL: NULL in the
    five new columns.
    """
    if isinstance(store, SQLAlchemySessionDatabase):
        c = store.table.c
        nulls = dict.fromkeys(
            ("authenticated_at", "device_browser", "device_os", "device_kind", "device_label")
        )
        async with store.engine.begin() as conn:
            done = await conn.execute(update(store.table).where(c.id == session.id).values(nulls))
            assert done.rowcount == 1
        return
    assert isinstance(store, RedisSessionDatabase)
    async with raw_redis(request, store) as client:
        key = session_key(store, session)
        expiry = await expiry_of(client, store, session)
        record = await record_of(client, store, session)
        assert set(NEW_KEYS) <= record.keys()
        previous = {k: v for k, v in record.items() if k not in NEW_KEYS}
        assert await client.set(key, json.dumps(previous, separators=(",", ":")), keepttl=True)
        assert await expiry_of(client, store, session) == expiry


# 1. What a session is created with reads back


async def test_authentication_time_and_device_read_back_on_every_path(
    store: SessionDatabase,
) -> None:
    user = uuid.uuid4()
    then = utcnow() - timedelta(seconds=30)  # a step-up since the login, a minute ago
    first = await login(store, user_id=user, authenticated_at=then, device=DEVICE)
    other_device = Device("Safari 18", "iOS 18", "mobile", "Safari on iPhone")
    second = await login(
        store,
        user_id=user,
        created_at=utcnow() - timedelta(seconds=10),
        authenticated_at=utcnow() - timedelta(seconds=5),
        device=other_device,
    )
    assert (first.authenticated_at, first.device) == (then, DEVICE)
    assert first.authenticated_at != first.created_at

    for session in (first, second):
        got = await stored(store, session)
        assert got == session
        assert (got.authenticated_at, got.device) == (session.authenticated_at, session.device)
        assert await store.get_by_token_digest(session.token_digest) == session
    assert await store.list_for_user(user) == [second, first]  # newest first
    assert await store.delete(first.id) == first
    assert await store.pop_expired(utcnow() + timedelta(days=2)) == [second]
    assert await store.list_for_user(user) == []


async def test_a_session_created_without_an_authentication_time_was_authenticated_at_login(
    store: SessionDatabase,
) -> None:
    session = await login(store)
    assert session.authenticated_at == session.created_at
    got = await stored(store, session)
    assert got.authenticated_at == got.created_at == session.created_at
    assert got.device is None
    await assert_reads_back(store, session)
    assert await store.delete_for_user(session.user_id) == [session]


# 2. record_authentication


async def test_record_authentication_moves_that_session_only_and_returns_it(
    store: SessionDatabase,
) -> None:
    db = reauthenticating(store)
    user = uuid.uuid4()
    mine = await login(db, user_id=user, device=DEVICE, idle_timeout=timedelta(hours=1))
    other = await login(db, user_id=user, created_at=utcnow() - timedelta(seconds=30))
    before_mine, before_other = await stored(db, mine), await stored(db, other)
    at = utcnow()

    returned = await db.record_authentication(mine.id, at)

    assert returned is not None
    assert returned.authenticated_at == at
    # That field alone: last_seen_at, the deadline, the device... are as they were.
    assert returned == before_mine.replace(authenticated_at=at)
    assert returned.deadline == before_mine.deadline
    await assert_reads_back(db, returned)
    assert await stored(db, other) == before_other
    assert await db.list_for_user(user) == [other, returned]

    later = at + timedelta(seconds=5)
    again = await db.record_authentication(mine.id, later)
    assert again == before_mine.replace(authenticated_at=later) == await stored(db, mine)


async def test_a_touch_from_a_read_before_the_record_keeps_it(store: SessionDatabase) -> None:
    db = reauthenticating(store)
    session = await login(db, device=DEVICE, idle_timeout=timedelta(hours=1))
    read = await stored(db, session)  # as a request resolved it, before the step-up
    at = utcnow()
    assert await db.record_authentication(session.id, at) is not None
    seen = at + timedelta(seconds=1)

    await db.touch(read, seen)

    current = await stored(db, session)
    assert current.last_seen_at == seen  # the touch did happen
    assert current.deadline == seen + timedelta(hours=1)
    assert current.authenticated_at == at  # and did not undo the step-up
    assert current == read.replace(authenticated_at=at, last_seen_at=seen)
    await assert_reads_back(db, current)


async def test_a_rotation_from_a_read_before_the_record_keeps_it(store: SessionDatabase) -> None:
    db = reauthenticating(store)
    refresher = refresher_over(db)
    session = await login(db, refresher=refresher, device=DEVICE)
    read = await stored(db, session)  # as a refresh read it, before the step-up
    at = utcnow()
    assert await db.record_authentication(session.id, at) is not None
    rotated = next_pair(read)
    assert rotated.authenticated_at == read.authenticated_at != at

    assert await db.rotate(read, rotated) is True

    current = await stored(db, session)
    assert current.refresh_digest == rotated.refresh_digest  # the rotation did happen
    assert current.authenticated_at == at  # and did not undo the step-up
    assert current == rotated.replace(authenticated_at=at)
    assert await db.get_by_token_digest(rotated.token_digest) == current
    assert await db.get_by_token_digest(session.token_digest) is None

    # A refresh through the refresher never moves it either, nor its device.
    refreshed = await refresher.refresh(rotated.refresh_token)
    assert refreshed.refresh_generation == 2
    assert (refreshed.authenticated_at, refreshed.device) == (at, DEVICE)
    assert await stored(db, session) == refreshed


@pytest.mark.parametrize("deadline", ["idle timeout", "none"])
@pytest.mark.parametrize("kind", REDIS_KINDS)
async def test_record_authentication_keeps_the_redis_ttl(
    kind: str, deadline: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    async with open_store(kind, tmp_path, cluster=cluster_for(request, kind)) as store:
        assert isinstance(store, RedisSessionDatabase)
        fields: dict[str, Any] = {"expires_at": None}
        if deadline == "idle timeout":
            fields["idle_timeout"] = timedelta(hours=1)
        session = await login(store, **fields)
        async with raw_redis(request, store) as client:
            before = await expiry_of(client, store, session)
            ttl = await client.pttl(session_key(store, session))
            if deadline == "none":
                assert before == (-1, -1, None)
                assert ttl == -1
            else:
                assert before[0] == before[1] > 0
                assert ttl > 0
            await anyio.sleep(0.05)  # a SET that set the TTL again would now set another

            assert await store.record_authentication(session.id, utcnow()) is not None

            assert await expiry_of(client, store, session) == before
            after = await client.pttl(session_key(store, session))
            if deadline == "none":
                assert after == -1
            else:
                assert 0 < ttl - after < 5_000  # the same expiry, counted down a little


@pytest.mark.parametrize("gone", ["unknown", "deleted", "expired", "idle"])
async def test_record_authentication_of_no_active_session_changes_nothing(
    store: SessionDatabase, gone: str
) -> None:
    db = reauthenticating(store)
    bystander = await login(db, device=DEVICE)
    now = utcnow()
    ended: Session | None = None
    if gone == "unknown":
        session_id = uuid.uuid4()
    elif gone == "deleted":
        ended = await login(db)
        assert await db.delete(ended.id) == ended
        session_id = ended.id
    elif gone == "expired":
        ended = await login(db, expires_at=now - timedelta(seconds=1))
        session_id = ended.id
    else:
        ended = await login(
            db, created_at=now - timedelta(minutes=2), idle_timeout=timedelta(minutes=1)
        )
        session_id = ended.id

    assert await db.record_authentication(session_id, now) is None

    assert await db.get(session_id) is None
    assert await stored(db, bystander) == bystander
    popped = await db.pop_expired(now + timedelta(days=2))
    if gone in ("expired", "idle"):
        # Still there to report, as it was: the record wrote nothing into it.
        assert ended is not None
        assert popped == [ended, bystander]
        assert popped[0].authenticated_at == ended.created_at
    else:
        assert popped == [bystander]  # the deleted session did not come back
    assert await db.list_for_user(bystander.user_id) == []


# 3. Devices and user agents: any text, kept as it is through every write


@pytest.mark.parametrize("text", TRICKY.values(), ids=TRICKY.keys())
async def test_the_device_and_user_agent_come_back_unchanged_through_every_write(
    store: SessionDatabase, request: pytest.FixtureRequest, text: str
) -> None:
    db = reauthenticating(store)
    refresher = refresher_over(db)
    device = Device(f"{text} browser", text, "mobile", text)
    agent = f"Mozilla/5.0 {text}"
    session = await login(db, refresher=refresher, user_agent=agent, device=device)
    read = await stored(db, session)  # before everything below
    assert (read.user_agent, read.device) == (agent, device)
    assert device.label == text[:64].strip()

    at = utcnow()
    recorded = await db.record_authentication(session.id, at)
    assert recorded is not None
    assert (recorded.user_agent, recorded.device, recorded.authenticated_at) == (agent, device, at)
    await assert_written(request, db, recorded)

    seen = at + timedelta(seconds=1)
    await db.touch(read, seen)
    touched = await stored(db, session)
    assert touched == read.replace(authenticated_at=at, last_seen_at=seen)
    await assert_written(request, db, touched)

    rotated = next_pair(read.replace(last_seen_at=seen))
    assert await db.rotate(read, rotated) is True
    current = await stored(db, session)
    assert current == rotated.replace(authenticated_at=at)
    assert (current.user_agent, current.device, current.authenticated_at) == (agent, device, at)
    await assert_written(request, db, current)
    assert await db.list_for_user(session.user_id) == [current]


async def assert_written(
    request: pytest.FixtureRequest, store: SessionDatabase, session: Session
) -> None:
    """On Redis, the record of ``session`` is JSON holding exactly its fields: the user
    agent, the device and one ``authenticated_at``, the right one."""
    if not isinstance(store, RedisSessionDatabase):
        return
    async with raw_redis(request, store) as client:
        raw = await client.get(session_key(store, session))
        assert raw is not None
        record = json.loads(raw, object_pairs_hook=_no_duplicates)
    assert record["authenticated_at"] == session.authenticated.isoformat()
    assert record["user_agent"] == session.user_agent
    assert session.device is not None
    assert record["device"] == {
        "browser": session.device.browser,
        "os": session.device.os,
        "kind": session.device.kind,
        "label": session.device.label,
    }


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    assert len(keys) == len(set(keys)), f"a key twice in a record: {keys}"
    return dict(pairs)


# 4. Sessions the previous version wrote


@pytest.mark.parametrize("kind", SHARED_KINDS)
async def test_a_session_written_before_the_upgrade_reads_back_and_records_authentications(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    async with open_store(kind, tmp_path, cluster=cluster_for(request, kind)) as store:
        db = reauthenticating(store)
        refresher = refresher_over(db)
        agent = f"Mozilla/5.0 {TRICKY['field']} {TRICKY['escaped']}"
        then = utcnow() - timedelta(seconds=20)
        session = await login(
            db,
            refresher=refresher,
            user_agent=agent,
            device=DEVICE,
            authenticated_at=then,
            idle_timeout=timedelta(hours=1),
            last_seen_at=utcnow() - timedelta(seconds=10),  # neither its login nor its step-up
        )
        await write_as_before_the_upgrade(request, db, session)
        old = session.replace(authenticated_at=session.created_at, device=None)
        assert old.authenticated_at != then

        read = await stored(db, session)
        assert read == old  # authenticated at its login, without a device; the rest as is
        await assert_reads_back(db, old)
        expiry = None
        if isinstance(db, RedisSessionDatabase):
            async with raw_redis(request, db) as client:
                expiry = await expiry_of(client, db, session)

        at = utcnow()
        recorded = await db.record_authentication(session.id, at)

        assert recorded == old.replace(authenticated_at=at) == await stored(db, session)
        assert recorded is not None
        assert recorded.user_agent == agent
        await assert_reads_back(db, recorded)
        if isinstance(db, RedisSessionDatabase):
            async with raw_redis(request, db) as client:
                record = await record_of(client, db, session)
                assert record["authenticated_at"] == at.isoformat()  # the field was added
                assert "device" not in record
                assert await expiry_of(client, db, session) == expiry

        # Writes from a read made before the record (an old-format one) keep it.
        seen = at + timedelta(seconds=1)
        await db.touch(read, seen)
        assert await stored(db, session) == old.replace(authenticated_at=at, last_seen_at=seen)
        rotated = next_pair(read.replace(last_seen_at=seen))
        assert await db.rotate(read, rotated) is True
        current = await stored(db, session)
        assert current == rotated.replace(authenticated_at=at)
        assert (current.user_agent, current.device) == (agent, None)
        assert await db.get_by_token_digest(rotated.token_digest) == current


# 5. Racing writes


async def test_records_racing_touches_and_rotations_leave_the_latest_record(
    store: SessionDatabase,
) -> None:
    db = reauthenticating(store)
    session = await login(
        db, refresher=refresher_over(db), device=DEVICE, idle_timeout=timedelta(hours=1)
    )
    start = utcnow()
    recorded = [start + timedelta(seconds=i) for i in range(1, 31)]
    done = anyio.Event()
    writes = {"touch": 0, "rotate": 0}
    # What each record was followed by. The tasks never raise: a failure in one would
    # cancel the others mid-operation, which is not what this test is about.
    seen_after: list[tuple[datetime, datetime | None]] = []

    async def recorder() -> None:
        try:
            for at in recorded:
                returned = await db.record_authentication(session.id, at)
                await checkpoint()
                now = await db.get(session.id)
                seen_after.append(
                    (at, None if returned is None or now is None else now.authenticated_at)
                )
        finally:
            done.set()

    async def toucher() -> None:
        while not done.is_set():
            read = await db.get(session.id)
            await checkpoint()  # a record may run between the read and the write
            if read is not None and await db.touch(read, utcnow()) is not None:
                writes["touch"] += 1

    async def rotator() -> None:
        while not done.is_set():
            read = await db.get(session.id)
            await checkpoint()
            if read is not None and await db.rotate(read, next_pair(read)):
                writes["rotate"] += 1

    async with anyio.create_task_group() as tasks:
        for _ in range(8):
            tasks.start_soon(toucher)
        tasks.start_soon(rotator)
        tasks.start_soon(recorder)

    # Only records move it: whatever ran between a record and the read after it, it stands.
    assert seen_after == [(at, at) for at in recorded]
    assert writes["touch"] > 0
    assert writes["rotate"] > 0
    current = await stored(db, session)
    assert current.authenticated_at == recorded[-1]
    assert current.device == DEVICE
    assert current.last_seen_at is not None
    assert current.last_seen_at > start
    assert await db.get_by_token_digest(current.token_digest) == current
    assert await db.list_for_user(session.user_id) == [current]


async def test_concurrent_records_each_leave_a_session_that_reads_back_whole(
    store: SessionDatabase,
) -> None:
    """Many records at once (and touches): the session ends with one of the recorded
    times, and is whole (its user agent, device and tokens) on every read path."""
    db = reauthenticating(store)
    session = await login(db, user_agent=f"UA {TRICKY['json']}", device=DEVICE)
    read = await stored(db, session)
    start = utcnow()
    recorded = [start + timedelta(milliseconds=i) for i in range(1, 41)]
    await asyncio.gather(*(db.get(session.id) for _ in range(20)))  # open the connections

    results = await asyncio.gather(
        *(db.record_authentication(session.id, at) for at in recorded),
        *(db.touch(read, start) for _ in range(20)),
    )

    for returned in results[: len(recorded)]:
        assert returned is not None
        assert returned.authenticated_at in recorded
    current = await stored(db, session)
    assert current.authenticated_at in recorded
    assert current == read.replace(authenticated_at=current.authenticated_at, last_seen_at=start)
    await assert_reads_back(db, current)
