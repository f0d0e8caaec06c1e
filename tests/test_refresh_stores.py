"""Refresh tokens on every store: rotation, convergence, reuse, bad input, expiry.

Each test drives ``TokenRefresher`` (or ``rotate`` itself) over a real store of every kind
(the ``store`` fixture), and looks at what the store then answers: the session by id and by
access token digest, and, where it matters, the raw data the store wrote.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import anyio
import pytest
import redis.asyncio as aioredis
from sqlalchemy import select

from asgi_kit import (
    AnonymousReason,
    ErrorCode,
    InMemorySessionDatabase,
    RedisSessionDatabase,
    RefreshError,
    RefreshSecret,
    RefreshTokenReusedError,
    RotatingSessionDatabase,
    Session,
    SessionDatabase,
    SessionResolver,
    SQLAlchemySessionDatabase,
    TokenRefresher,
    generate_token,
    token_digest,
    utcnow,
)

from .servers import unique_name
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

#: Server stores, each as two app instances can share it.
SHARED_KINDS = [pytest.param(k, marks=KIND_MARKS.get(k, ())) for k in STORE_KINDS if k != "memory"]
REDIS_KINDS = [pytest.param(k, marks=KIND_MARKS.get(k, ())) for k in ("redis", "redis-cluster")]
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def refresher_over(store: SessionDatabase, **options: Any) -> TokenRefresher:
    """The refresher an app configures over ``store`` (5-minute access tokens)."""
    return TokenRefresher(store, access_token_lifetime=LIFETIME, secret=SECRET, **options)


async def login(
    store: SessionDatabase,
    refresher: TokenRefresher,
    *,
    tokens_issued_at: datetime | None = None,
    **fields: Any,
) -> Session:
    """Create a session with refresh tokens as a login does; it holds both raw tokens.

    Created a minute ago (so a refresh visibly moves ``last_seen_at``) and ending in a day
    unless ``fields`` say otherwise; its tokens are issued at ``tokens_issued_at`` (now).
    """
    now = utcnow()
    sid = uuid.uuid4()
    fields.setdefault("created_at", now - timedelta(minutes=1))
    fields.setdefault("expires_at", now + timedelta(days=1))
    session = Session(
        id=sid,
        user_id=uuid.uuid4(),
        token=generate_token(),
        **refresher.new_tokens(sid, tokens_issued_at or now),
        **fields,
    )
    await store.create(session)
    return session


async def refused(
    refresher: TokenRefresher, token: str, *, session_id: uuid.UUID | None = None
) -> ErrorCode:
    """The code ``refresh`` refuses ``token`` with; a plain refusal, never a reuse."""
    with pytest.raises(RefreshError) as caught:
        await refresher.refresh(token, session_id=session_id)
    assert type(caught.value) is RefreshError, "a refusal that ended a session"
    return caught.value.code


async def stored(store: SessionDatabase, session: Session) -> Session:
    """What the store holds of ``session`` now (it must be there)."""
    found = await store.get(session.id)
    assert found is not None
    return found


async def assert_untouched(
    store: SessionDatabase, refresher: TokenRefresher, before: Session, refresh_token: str
) -> None:
    """``before`` is still stored as it was, and ``refresh_token`` still refreshes it."""
    assert await store.get(before.id) == before
    after = await refresher.refresh(refresh_token)
    assert (await stored(store, before)).refresh_generation == before.refresh_generation + 1
    assert after.id == before.id


async def assert_ended(
    store: SessionDatabase, refresher: TokenRefresher, session: Session, last: Session
) -> None:
    """``session`` is gone, and ``last`` (its current pair when it ended) opens nothing."""
    assert await store.get(session.id) is None
    assert await store.get_by_token_digest(token_digest(last.token)) is None
    assert await refused(refresher, last.refresh_token) == ErrorCode.REFRESH_TOKEN_INVALID


async def warm_up(store: SessionDatabase, session: Session, count: int) -> None:
    """Open ``count`` connections of ``store``, so that as many refreshes race each other.

    Else the first refresh, on the one connection the login opened, is done before the
    others have connected (seen on Redis: no refresh lost a rotation).
    """
    assert all(await asyncio.gather(*(store.get(session.id) for _ in range(count))))


def flipped(token: str, position: int) -> str:
    """``token`` with the character at ``position`` changed to another that decodes apart."""
    char = token[position]
    other = _B64URL[(_B64URL.index(char) + 1) % 64] if char in _B64URL else "x"
    return token[:position] + other + token[position + 1 :]


def respelled_token(token: str) -> str:
    """``token`` with "-" and "_" written "+" and "/": base64 decodes it to the same bytes,
    with a genuine tag, but it is not the token that was issued."""
    respelled = token.replace("-", "+").replace("_", "/")
    assert respelled != token
    return respelled


async def login_respellable(store: SessionDatabase, refresher: TokenRefresher) -> Session:
    """A session as ``login`` makes, whose refresh token has a "-" or "_" to respell
    (97% of them: each of its 112 characters is one of 64)."""
    for _ in range(100):
        session = await login(store, refresher)
        if "-" in session.refresh_token or "_" in session.refresh_token:
            return session
    pytest.fail("no refresh token with a '-' or '_' in 100")


def unix_ms(moment: datetime) -> int:
    """``moment`` in whole milliseconds since the epoch, rounded up (as Redis expiries are)."""
    return -(-(moment - _EPOCH) // timedelta(milliseconds=1))


def glob_escape(text: str) -> str:
    return "".join(f"\\{c}" if c in "*?[]\\" else c for c in text)


async def redis_keys(
    client: aioredis.Redis | aioredis.RedisCluster, store: RedisSessionDatabase, kind: str = ""
) -> list[str]:
    """The keys ``store`` wrote (``kind``: those starting so after the prefix)."""
    pattern = f"{glob_escape(store.key_prefix + kind)}*"
    return sorted({key async for key in client.scan_iter(match=pattern)})


async def dump_of(request: pytest.FixtureRequest, store: SessionDatabase) -> str:
    """Everything a server store holds, as text: every row's every column, or every key
    under the prefix with its value."""
    if isinstance(store, SQLAlchemySessionDatabase):
        async with store.engine.connect() as conn:
            rows = (await conn.execute(select(store.table))).all()
        return "\n".join(" ".join(map(str, row)) for row in rows)
    assert isinstance(store, RedisSessionDatabase)
    lines = []
    async with raw_redis(request, store) as client:
        for key in await redis_keys(client, store):
            if await client.type(key) == "zset":
                value: Any = await client.zrange(key, 0, -1, withscores=True)
            else:
                value = await client.get(key)
            lines.append(f"{key} {value}")
    return "\n".join(lines)


def memory_dump(mapping: dict[str, Session]) -> str:
    """Every key of an in-memory store's mapping and every field of every session in it."""
    return "\n".join(
        f"{key} " + " ".join(str(getattr(s, f.name)) for f in dataclasses.fields(s))
        for key, s in mapping.items()
    )


# 1. One refresh


async def test_a_refresh_rotates_both_tokens_and_keeps_the_session(
    store: SessionDatabase,
) -> None:
    refresher = refresher_over(store)
    session = await login(store, refresher)
    before = await stored(store, session)

    refreshed = await refresher.refresh(session.refresh_token)

    assert refreshed.token not in ("", session.token)
    assert refreshed.refresh_token not in ("", session.refresh_token)
    assert refresher.claim(refreshed.refresh_token) == (session.id, 1)
    assert await store.get_by_token_digest(session.token_digest) is None
    by_token = await store.get_by_token_digest(token_digest(refreshed.token))
    after = await stored(store, session)
    assert by_token == after == refreshed  # what the caller got is what the store holds
    assert after.refresh_generation == 1
    assert after.refresh_digest == token_digest(refreshed.refresh_token)
    assert after.refreshed_at is not None
    assert after.last_seen_at == after.refreshed_at > before.seen_at
    assert after.access_expires_at == after.refreshed_at + LIFETIME
    same = ("id", "user_id", "created_at", "expires_at", "idle_timeout")
    assert {f: getattr(after, f) for f in same} == {f: getattr(before, f) for f in same}


async def test_a_rotated_session_refreshes_again(store: SessionDatabase) -> None:
    refresher = refresher_over(store)
    session = await login(store, refresher)
    first = await refresher.refresh(session.refresh_token)
    second = await refresher.refresh(first.refresh_token)
    assert (await stored(store, session)).refresh_generation == 2
    assert await store.get_by_token_digest(token_digest(first.token)) is None
    assert await store.get_by_token_digest(token_digest(second.token)) == second


async def test_a_rotated_session_stays_listed_revocable_and_purgeable(
    store: SessionDatabase,
) -> None:
    refresher = refresher_over(store)
    kept, ended = await login(store, refresher), await login(store, refresher)
    for session in (kept, ended):
        await refresher.refresh(session.refresh_token)
    current, last = await stored(store, kept), await stored(store, ended)

    assert await store.list_for_user(kept.user_id) == [current]
    assert await store.delete_for_user(ended.user_id) == [last]
    assert await store.get_by_token_digest(last.token_digest) is None
    assert await store.pop_expired(utcnow() + timedelta(days=2)) == [current]
    assert await store.get(kept.id) is None


async def test_a_refresh_moves_a_sliding_deadline(store: SessionDatabase) -> None:
    refresher = refresher_over(store)
    session = await login(store, refresher, idle_timeout=timedelta(hours=1))
    assert session.deadline is not None
    await refresher.refresh(session.refresh_token)
    current = await stored(store, session)
    assert current.deadline is not None
    assert current.deadline > session.deadline  # a refresh is activity

    assert await store.pop_expired(session.deadline) == []
    assert await store.pop_expired(current.deadline) == [current]


async def test_no_raw_token_is_ever_written(
    store: SessionDatabase, request: pytest.FixtureRequest
) -> None:
    mapping: dict[str, Session] = {}
    in_memory = isinstance(store, InMemorySessionDatabase)
    if in_memory:
        store = InMemorySessionDatabase(mapping)  # one whose mapping the test can read
    refresher = refresher_over(store)
    session = await login(store, refresher)
    issued = [session]
    for _ in range(2):
        issued.append(await refresher.refresh(issued[-1].refresh_token))
    issued.append(await refresher.refresh(issued[-2].refresh_token))  # a retry: same pair

    dump = memory_dump(mapping) if in_memory else await dump_of(request, store)

    current = await stored(store, session)
    assert current.token_digest in dump  # the dump does show what the store keeps
    assert current.refresh_digest is not None
    assert current.refresh_digest in dump
    for s in issued:
        for raw in (s.token, s.refresh_token, s.refresh_token.removeprefix("r1.")):
            assert raw not in dump


# 2, 3. Concurrent refreshes converge


async def test_concurrent_refreshes_of_one_token_converge_on_one_rotation(
    store: SessionDatabase,
) -> None:
    refresher = refresher_over(store)
    session = await login(store, refresher)
    await warm_up(store, session, 50)

    results = await asyncio.gather(*(refresher.refresh(session.refresh_token) for _ in range(50)))

    assert len({(r.token, r.refresh_token) for r in results}) == 1
    current = await stored(store, session)
    assert current.refresh_generation == 1
    assert current.token_digest == token_digest(results[0].token)
    assert current.refresh_digest == token_digest(results[0].refresh_token)
    await refresher.refresh(results[0].refresh_token)
    assert (await stored(store, session)).refresh_generation == 2


@pytest.mark.parametrize("kind", SHARED_KINDS)
async def test_two_instances_refreshing_one_token_converge_on_one_rotation(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    name, cluster = unique_name("refresh"), cluster_for(request, kind)
    async with (
        open_store(kind, tmp_path, name=name, owner=True, cluster=cluster) as first,
        open_store(kind, tmp_path, name=name, owner=False, cluster=cluster) as second,
    ):
        refreshers = [refresher_over(first), refresher_over(second)]
        session = await login(first, refreshers[0])
        await warm_up(first, session, 20)
        await warm_up(second, session, 20)

        results = await asyncio.gather(
            *(r.refresh(session.refresh_token) for _ in range(20) for r in refreshers)
        )

        assert len({(r.token, r.refresh_token) for r in results}) == 1
        for instance in (first, second):
            current = await stored(instance, session)
            assert current.refresh_generation == 1
            assert await instance.get_by_token_digest(token_digest(results[0].token)) == current
            assert await instance.get_by_token_digest(session.token_digest) is None
        await refreshers[1].refresh(results[0].refresh_token)
        assert (await stored(first, session)).refresh_generation == 2


async def test_a_retry_of_the_consumed_token_gets_the_same_pair(store: SessionDatabase) -> None:
    refresher = refresher_over(store)
    session = await login(store, refresher)
    first = await refresher.refresh(session.refresh_token)
    after_first = await stored(store, session)

    retry = await refresher.refresh(session.refresh_token)  # the response was lost, say

    assert (retry.token, retry.refresh_token) == (first.token, first.refresh_token)
    assert await store.get(session.id) == after_first  # nothing rotated again


# 4. rotate() itself


async def test_rotate_of_the_current_read_replaces_the_session_whole(
    store: SessionDatabase,
) -> None:
    assert isinstance(store, RotatingSessionDatabase)
    session = await login(store, refresher_over(store))
    current = await stored(store, session)
    rotated = next_pair(current)

    assert await store.rotate(current, rotated) is True

    assert await store.get(session.id) == rotated
    assert await store.get_by_token_digest(rotated.token_digest) == rotated
    assert await store.get_by_token_digest(current.token_digest) is None


async def test_rotate_of_a_stale_read_changes_nothing(store: SessionDatabase) -> None:
    assert isinstance(store, RotatingSessionDatabase)
    refresher = refresher_over(store)
    session = await login(store, refresher)
    stale = await stored(store, session)
    refreshed = await refresher.refresh(session.refresh_token)
    current = await stored(store, session)
    lost = next_pair(stale)  # another rotation of the same read, which lost the race

    assert await store.rotate(stale, lost) is False

    assert await store.get(session.id) == current
    assert await store.get_by_token_digest(lost.token_digest) is None
    assert await store.get_by_token_digest(current.token_digest) == current
    await assert_untouched(store, refresher, current, refreshed.refresh_token)


async def test_rotate_of_a_deleted_session_brings_nothing_back(store: SessionDatabase) -> None:
    assert isinstance(store, RotatingSessionDatabase)
    session = await login(store, refresher_over(store))
    current = await stored(store, session)
    await store.delete(session.id)
    rotated = next_pair(current)

    assert await store.rotate(current, rotated) is False

    assert await store.get(session.id) is None
    assert await store.get_by_token_digest(rotated.token_digest) is None
    assert await store.list_for_user(session.user_id) == []


# 5. Reuse of a rotated-out token ends the session


async def test_the_consumed_token_after_the_interval_ends_the_session(
    store: SessionDatabase,
) -> None:
    refresher = refresher_over(store, reuse_interval=0)
    session = await login(store, refresher)
    refreshed = await refresher.refresh(session.refresh_token)
    await anyio.sleep(0.01)  # the clock moves past the (empty) interval

    with pytest.raises(RefreshTokenReusedError) as caught:
        await refresher.refresh(session.refresh_token)

    assert caught.value.code == ErrorCode.REFRESH_TOKEN_REUSED
    assert caught.value.session is not None
    assert caught.value.session.id == session.id
    await assert_ended(store, refresher, session, refreshed)


@pytest.mark.parametrize("generation", [0, 1])
async def test_an_older_token_ends_the_session_even_within_the_interval(
    store: SessionDatabase, generation: int
) -> None:
    refresher = refresher_over(store)  # a 10-second interval
    issued = [await login(store, refresher)]
    for _ in range(3):
        issued.append(await refresher.refresh(issued[-1].refresh_token))

    with pytest.raises(RefreshTokenReusedError) as caught:
        await refresher.refresh(issued[generation].refresh_token)

    assert caught.value.session is not None
    assert caught.value.session.id == issued[0].id
    await assert_ended(store, refresher, issued[0], issued[-1])


# 6. Bad input is refused and changes nothing


@pytest.mark.parametrize(
    ("token", "code"),
    [
        ("", ErrorCode.REFRESH_TOKEN_MISSING),
        ("garbage", ErrorCode.REFRESH_TOKEN_MALFORMED),
        ("r1.", ErrorCode.REFRESH_TOKEN_MALFORMED),
        ("r1." + "A" * 112, ErrorCode.REFRESH_TOKEN_MALFORMED),
        ("r1." + "é" * 112, ErrorCode.REFRESH_TOKEN_MALFORMED),
        ("r1." + "A" * 111 + " ", ErrorCode.REFRESH_TOKEN_MALFORMED),
        ("r1." + "A" * 5000, ErrorCode.REFRESH_TOKEN_MALFORMED),
        ("r1." + "." * 112, ErrorCode.REFRESH_TOKEN_MALFORMED),
    ],
    ids=["empty", "garbage", "prefix", "forged", "non-ascii", "space", "long", "dots"],
)
async def test_malformed_strings_are_refused(
    store: SessionDatabase, token: str, code: ErrorCode
) -> None:
    refresher = refresher_over(store)
    session = await login(store, refresher)
    before = await stored(store, session)
    assert await refused(refresher, token) == code
    await assert_untouched(store, refresher, before, session.refresh_token)


async def test_a_token_of_another_apps_secret_is_refused(store: SessionDatabase) -> None:
    refresher = refresher_over(store)
    session = await login(store, refresher)
    before = await stored(store, session)
    foreign = RefreshSecret("o" * 32).mint(session.id, 0)  # its session, the wrong secret
    assert await refused(refresher, foreign) == ErrorCode.REFRESH_TOKEN_MALFORMED
    await assert_untouched(store, refresher, before, session.refresh_token)


async def test_a_token_of_a_revoked_session_is_refused(store: SessionDatabase) -> None:
    refresher = refresher_over(store)
    revoked = await login(store, refresher)
    await store.delete(revoked.id)
    assert await refused(refresher, revoked.refresh_token) == ErrorCode.REFRESH_TOKEN_INVALID
    assert await store.get(revoked.id) is None


async def test_a_token_presented_for_another_session_is_refused(store: SessionDatabase) -> None:
    refresher = refresher_over(store)
    mine, other = await login(store, refresher), await login(store, refresher)
    before_mine, before_other = await stored(store, mine), await stored(store, other)
    code = await refused(refresher, mine.refresh_token, session_id=other.id)
    assert code == ErrorCode.REFRESH_TOKEN_OF_ANOTHER_SESSION
    await assert_untouched(store, refresher, before_other, other.refresh_token)
    await assert_untouched(store, refresher, before_mine, mine.refresh_token)


async def test_every_flipped_character_of_a_genuine_token_is_refused(
    store: SessionDatabase,
) -> None:
    refresher = refresher_over(store)
    session = await login(store, refresher)
    before = await stored(store, session)
    genuine = session.refresh_token
    for position in range(len(genuine)):
        bad = flipped(genuine, position)
        assert bad != genuine
        assert await refused(refresher, bad) == ErrorCode.REFRESH_TOKEN_MALFORMED, position
    await assert_untouched(store, refresher, before, genuine)


async def test_another_spelling_of_the_current_token_is_refused(store: SessionDatabase) -> None:
    refresher = refresher_over(store)
    session = await login_respellable(store, refresher)
    before = await stored(store, session)
    respelled = respelled_token(session.refresh_token)
    assert await refused(refresher, respelled) == ErrorCode.REFRESH_TOKEN_MALFORMED
    await assert_untouched(store, refresher, before, session.refresh_token)


async def test_another_spelling_of_the_consumed_token_gets_nothing_within_the_interval(
    store: SessionDatabase,
) -> None:
    refresher = refresher_over(store)
    session = await login_respellable(store, refresher)
    refreshed = await refresher.refresh(session.refresh_token)
    before = await stored(store, session)
    respelled = respelled_token(session.refresh_token)
    # Base64 would decode it to the genuine bytes: only the spelling issued is read.
    assert await refused(refresher, respelled) == ErrorCode.REFRESH_TOKEN_MALFORMED
    await assert_untouched(store, refresher, before, refreshed.refresh_token)


# 7. Expiry


@pytest.mark.parametrize(
    "ended",
    [
        {"expires_at": utcnow() - timedelta(seconds=1)},
        {"idle_timeout": timedelta(minutes=1), "created_at": utcnow() - timedelta(minutes=2)},
    ],
    ids=["expires_at", "idle_timeout"],
)
async def test_an_expired_session_cannot_be_refreshed(
    store: SessionDatabase, ended: dict[str, Any]
) -> None:
    refresher = refresher_over(store)
    session = await login(store, refresher, **ended)
    assert await refused(refresher, session.refresh_token) == ErrorCode.REFRESH_TOKEN_INVALID
    assert await store.get(session.id) is None
    assert [s.id for s in await store.pop_expired()] == [session.id]  # still there to report


@pytest.mark.parametrize("kind", REDIS_KINDS)
async def test_a_rotation_moves_the_redis_ttl_with_the_deadline(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    async with open_store(kind, tmp_path, cluster=cluster_for(request, kind)) as store:
        assert isinstance(store, RedisSessionDatabase)
        refresher = refresher_over(store)
        # The deadline slides (an idle timeout): a refresh is activity and moves it.
        session = await login(store, refresher, idle_timeout=timedelta(hours=1))
        refreshed = await refresher.refresh(session.refresh_token)
        current = await stored(store, session)
        assert current.deadline is not None
        assert current.refreshed_at is not None
        assert session.deadline is not None
        assert current.deadline == current.refreshed_at + timedelta(hours=1) > session.deadline
        expected = unix_ms(current.deadline) + store.expired_grace // timedelta(milliseconds=1)

        async with raw_redis(request, store) as client:
            session_keys = await redis_keys(client, store, "s2:")
            id_keys = await redis_keys(client, store, "id:")
            assert session_keys == [f"{store.key_prefix}s2:{token_digest(refreshed.token)}"]
            assert id_keys == [f"{store.key_prefix}id:{session.id}"]
            for key in session_keys + id_keys:
                assert await client.pttl(key) > 0
                assert await client.pexpiretime(key) == expected


# 8. Access tokens expire before their session


async def test_an_expired_access_token_is_refused_until_the_session_refreshes(
    store: SessionDatabase,
) -> None:
    refresher = refresher_over(store)
    # Tokens issued twice their lifetime ago: the access token is past, the session is not.
    session = await login(store, refresher, tokens_issued_at=utcnow() - 2 * LIFETIME)
    resolver = SessionResolver(store)

    assert await resolver.look_up(session.token.encode()) == AnonymousReason.EXPIRED
    assert await store.get(session.id) is not None

    refreshed = await refresher.refresh(session.refresh_token)

    found = await resolver.look_up(refreshed.token.encode())
    assert isinstance(found, Session)
    assert found.id == session.id
    assert await resolver.look_up(session.token.encode()) == AnonymousReason.INVALID


async def test_rotate_gives_refresh_tokens_to_a_session_that_had_none(
    store: SessionDatabase,
) -> None:
    assert isinstance(store, RotatingSessionDatabase)
    plain = Session(user_id=uuid.uuid4(), token=generate_token())
    await store.create(plain)
    current = await store.get(plain.id)
    assert current is not None
    rotated = current.replace(token=generate_token(), token_digest="")
    assert await store.rotate(current, rotated) is True
    assert await store.get_by_token_digest(rotated.token_digest) == rotated
    assert await store.get_by_token_digest(plain.token_digest) is None
