"""Per-operation latency of every session store, next to the raw lower bound of its server.

For each store (memory, SQLite file, PostgreSQL, Redis) this times, one call at a time in
one asyncio event loop: create, resolve a token (``SessionResolver.resolve``: the request
path), refresh (``TokenRefresher.refresh``: each call consumes a refresh token, so the calls
follow chains of 30 rotations of one session, each using the token the one before returned,
round-robin over the sessions), list a user's 10 sessions, revoke one, revoke all (10).
The raw lower bound is what the server needs at least for a resolve, timed in the same
run: one Redis GET (``redis.asyncio``), one SELECT by primary key (raw ``asyncpg``
``fetchrow``; raw ``aiosqlite`` ``execute_fetchall``, one hop to its thread, on the same
SQLite file). Resolve and raw calls alternate, so machine noise hits both alike. Numbers
are medians in microseconds.

Then resolve latency is compared between sessions of UUID user ids and of string user ids
(``"auth0|..."``, as an external identity provider hands them out) in one store, resolves
alternating between the two kinds; the string ids must stay within 5 % of the UUIDs.

Then resolve latency is compared between sessions with refresh tokens ("rotation on":
created with ``TokenRefresher.new_tokens``, then rotated once, so every refresh field is
filled) and plain sessions ("rotation off", touched once, so both kinds' rows were written
once after the load) in one store, resolves alternating; the goal is on / off at most 1.1.

Then resolve latency is compared between a store holding 1,000 sessions and one holding
1,000,000, resolves alternating between the two. It must stay flat. Redis is loaded through
the store's own ``create`` (many at once); the SQL tables by COPY (PostgreSQL) or
executemany (SQLite) of the rows ``session_table`` documents, built from the sessions'
public fields. Sample sessions are read back through the store after every load, so a
loader that drifted from what the store writes fails the run.

    .venv/bin/python benchmarks/bench_stores.py           # full run, a few minutes
    .venv/bin/python benchmarks/bench_stores.py --quick   # smoke run: small sizes
    .venv/bin/python benchmarks/bench_stores.py --ids     # the user id comparison only
    .venv/bin/python benchmarks/bench_stores.py --refresh # create/resolve/refresh, rotation on/off
    .venv/bin/python benchmarks/bench_stores.py --devices # resolve, device names on/off

Needs PostgreSQL on 127.0.0.1:5432 (database ``test``) and Redis on 127.0.0.1:6379 (or
``ASGI_KIT_TEST_POSTGRES_URL`` / ``ASGI_KIT_TEST_REDIS_URL``); every table and key it makes
is removed at the end, and the SQLite file lives in a temporary directory under /tmp.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import platform
import random
import secrets
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiosqlite
import asyncpg  # type: ignore[import-untyped]
import redis.asyncio as aioredis
from sqlalchemy import create_engine, insert

from asgi_kit import (
    InMemorySessionDatabase,
    RedisSessionDatabase,
    Session,
    SessionDatabase,
    SessionResolver,
    SQLAlchemySessionDatabase,
    TokenRefresher,
    UserId,
    describe_device,
    token_digest,
    utcnow,
)

# The store's own row mapping: bulk loads write exactly what the store would.
from asgi_kit._stores.sql_schema import session_row

POSTGRES_URL = os.environ.get(
    "ASGI_KIT_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("ASGI_KIT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
KINDS = ("memory", "sqlite", "postgres", "redis")
#: Resolve without its once-a-minute ``last_seen_at`` write-back: ``touch`` is timed apart.
NO_TOUCH = timedelta(days=1)
#: Signs the run's refresh tokens (``TokenRefresher`` wants at least 32 bytes).
REFRESH_SECRET = secrets.token_urlsafe(32)
#: Rotations per session in the refresh timing: the length of each chain.
CHAIN = 30
Raw = Callable[[Session], Awaitable[object]]
Loader = Callable[[Sequence[Session]], Awaitable[None]]


@dataclass
class Opened:
    """A store under benchmark, its raw lower-bound probe and its bulk loader."""

    store: SessionDatabase
    raw: Raw | None
    loader: Loader
    cleanup: list[Callable[[], Awaitable[object]]] = field(default_factory=list)

    async def load(self, sessions: Sequence[Session]) -> None:
        """Bulk-load ``sessions``, then check that the store reads a sample back exactly."""
        await self.loader(sessions)
        for s in random.sample(list(sessions), min(20, len(sessions))):
            assert await self.store.get(s.id) == s, "the loader wrote what the store cannot read"


def refresher_of(store: SessionDatabase) -> TokenRefresher:
    """What ``SessionManager(access_token_lifetime=300, refresh_secret=...)`` makes."""
    return TokenRefresher(
        store, access_token_lifetime=300, reuse_interval=10, secret=REFRESH_SECRET
    )


def new_session(
    user: UserId, i: int = 0, refresher: TokenRefresher | None = None
) -> tuple[Session, str]:
    """A realistic session (absolute and idle expiry, agent, IP) and its token.

    With a ``refresher``, the token is an access token and the session has a refresh token
    (``session.refresh_token``), as ``SessionManager.login`` makes them.
    """
    token = secrets.token_urlsafe(32)
    now = utcnow()
    session_id = uuid.uuid4()
    refresh = {} if refresher is None else refresher.new_tokens(session_id, now)
    session = Session(
        id=session_id,
        user_id=user,
        token_digest=token_digest(token),
        created_at=now - timedelta(microseconds=i),
        expires_at=now + timedelta(days=14),
        idle_timeout=timedelta(days=1),
        user_agent="Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0",
        ip_address="203.0.113.9",
        **refresh,
    )
    return session, token


async def create_many(store: SessionDatabase, sessions: Sequence[Session]) -> None:
    """``store.create`` every session, 500 at a time."""
    for start in range(0, len(sessions), 500):
        await asyncio.gather(*map(store.create, sessions[start : start + 500]))


@asynccontextmanager
async def open_kind(kind: str, tmp: Path) -> AsyncIterator[Opened]:
    """Open an empty store of ``kind`` (fresh table / key prefix); remove it afterwards."""
    name = f"bench_{uuid.uuid4().hex[:12]}"
    opened: Opened
    if kind == "memory":
        memory = InMemorySessionDatabase()

        async def load_memory(sessions: Sequence[Session]) -> None:
            for s in sessions:
                await memory.create(s)

        opened = Opened(memory, None, load_memory)
    elif kind == "redis":
        rstore = RedisSessionDatabase(REDIS_URL, key_prefix=f"bench:{name}:")
        client = aioredis.Redis.from_url(REDIS_URL)

        async def raw_get(s: Session) -> object:
            return await client.get(f"{rstore.key_prefix}s2:{s.token_digest}")

        async def load_redis(sessions: Sequence[Session]) -> None:
            await create_many(rstore, sessions)

        opened = Opened(rstore, raw_get, load_redis, [rstore.clear, rstore.aclose, client.aclose])
    elif kind == "postgres":
        sql = SQLAlchemySessionDatabase(POSTGRES_URL, table_name=name)
        await sql.create_table()
        conn = await asyncpg.connect(POSTGRES_URL.replace("+asyncpg", ""))
        select_pk = f'SELECT * FROM "{name}" WHERE id = $1'  # noqa: S608 - our own table name
        columns = list(sql.table.c.keys())

        async def raw_pg(s: Session) -> object:
            return await conn.fetchrow(select_pk, s.id)

        async def load_pg(sessions: Sequence[Session]) -> None:
            for start in range(0, len(sessions), 100_000):
                rows = map(session_row, sessions[start : start + 100_000])
                records = [tuple(r[c] for c in columns) for r in rows]
                await conn.copy_records_to_table(name, records=records, columns=columns)
            await conn.execute(f'ANALYZE "{name}"')

        opened = Opened(sql, raw_pg, load_pg, [sql.drop_table, sql.aclose, conn.close])
    else:
        path = tmp / f"{name}.sqlite3"
        sql = SQLAlchemySessionDatabase(f"sqlite+aiosqlite:///{path}", table_name=name)
        await sql.create_table()
        lite = await aiosqlite.connect(path)
        select_pk = f'SELECT * FROM "{name}" WHERE id = ?'  # noqa: S608 - our own table name
        sync_engine = create_engine(f"sqlite:///{path}")

        async def raw_sqlite(s: Session) -> object:
            rows = list(await lite.execute_fetchall(select_pk, (s.id.hex,)))
            return rows[0] if rows else None

        async def load_sqlite(sessions: Sequence[Session]) -> None:
            # SQLAlchemy's executemany: the same column encodings the store writes.
            with sync_engine.begin() as connection:
                for start in range(0, len(sessions), 100_000):
                    rows = [session_row(s) for s in sessions[start : start + 100_000]]
                    connection.execute(insert(sql.table), rows)

        async def dispose() -> None:
            sync_engine.dispose()

        opened = Opened(sql, raw_sqlite, load_sqlite, [sql.drop_table, sql.aclose, lite.close])
        opened.cleanup.append(dispose)
    try:
        yield opened
    finally:
        for step in opened.cleanup:
            await step()


async def timed(op: Callable[[Any], Awaitable[object]], items: Sequence[Any]) -> list[float]:
    """Latency of ``op(item)`` for each item in turn, in microseconds."""
    samples = []
    clock = time.perf_counter_ns
    for item in items:
        start = clock()
        await op(item)
        samples.append((clock() - start) / 1000)
    return samples


async def alternating(
    first: Callable[[Any], Awaitable[object]],
    second: Callable[[Any], Awaitable[object]],
    items: Sequence[Any],
) -> tuple[float, float]:
    """Medians of ``first`` and ``second``, called alternately on every item."""
    a: list[float] = []
    b: list[float] = []
    for i, item in enumerate(items):
        pair = (first, a), (second, b)
        for op, samples in pair if i % 2 else pair[::-1]:
            samples.extend(await timed(op, [item]))
    return statistics.median(a), statistics.median(b)


def median_us(samples: list[float]) -> float:
    return statistics.median(samples)


async def refresh_chains(store: SessionDatabase, n: int) -> list[float]:
    """Latency of ``n`` calls of ``TokenRefresher.refresh``, in microseconds.

    A call consumes its refresh token, so the calls follow chains: ``n / CHAIN`` fresh
    sessions, refreshed round-robin, each call with the token its session's previous call
    returned. Every call is checked (the next generation, a new token), and each chain's
    last access token must resolve afterwards.
    """
    refresher = refresher_of(store)
    made = [new_session(uuid.uuid4(), refresher=refresher)[0] for _ in range(-(-n // CHAIN))]
    for session in made:
        await store.create(session)
    tokens = [s.refresh_token for s in made]
    generations = [0] * len(made)
    access = [""] * len(made)

    async def refresh(i: int) -> None:
        rotated = await refresher.refresh(tokens[i])
        assert rotated.refresh_generation == generations[i] + 1
        assert rotated.refresh_token != tokens[i]
        tokens[i], access[i] = rotated.refresh_token, rotated.token
        generations[i] += 1

    samples = await timed(refresh, [i % len(made) for i in range(n)])
    resolver = SessionResolver(store, touch_interval=NO_TOUCH)
    for token in access:
        assert await resolver.resolve(token) is not None, "a refreshed access token is refused"
    return samples


async def operations(kind: str, tmp: Path, n: int, refresh_only: bool = False) -> dict[str, float]:
    """Median latency of every operation on one store, and its raw lower bound.

    Every timed call is checked (a session found, 10 listed, ...), so a broken store or
    loader cannot look fast by finding nothing. ``refresh_only``: create, resolve and
    refresh only.
    """
    async with open_kind(kind, tmp) as opened:
        store = opened.store
        resolver = SessionResolver(store, touch_interval=NO_TOUCH)
        for s, t in [new_session(uuid.uuid4()) for _ in range(50)]:  # warm-up
            await store.create(s)
            await resolver.resolve(t)
        await refresh_chains(store, 50)
        made = [new_session(uuid.uuid4()) for _ in range(n)]
        result = {"create": median_us(await timed(store.create, [s for s, _ in made]))}
        tokens = {s.token_digest: t for s, t in made}
        probe = random.sample([s for s, _ in made], len(made))

        async def resolve(s: Session) -> None:
            assert await resolver.resolve(tokens[s.token_digest]) is not None

        if opened.raw is None:
            result["resolve"] = median_us(await timed(resolve, probe))
        else:
            raw = opened.raw

            async def raw_lookup(s: Session) -> None:
                assert await raw(s) is not None

            result["resolve"], result["raw"] = await alternating(resolve, raw_lookup, probe)
        result["refresh"] = median_us(await refresh_chains(store, n))
        if refresh_only:
            return result
        seen = utcnow()
        result["touch"] = median_us(await timed(lambda s: store.touch(s, seen), probe))

        users = [uuid.uuid4() for _ in range(max(10, n // 20))]
        await opened.load([new_session(u, i)[0] for u in users for i in range(10)])

        async def list10(user: uuid.UUID) -> None:
            assert len(await store.list_for_user(user)) == 10

        async def revoke_one(s: Session) -> None:
            assert await store.delete(s.id) is not None

        async def revoke_all(user: uuid.UUID) -> None:
            assert len(await store.delete_for_user(user)) == 10

        result["list 10"] = median_us(await timed(list10, users * 2))
        result["revoke one"] = median_us(await timed(revoke_one, probe[: n // 2]))
        result["revoke all (10)"] = median_us(await timed(revoke_all, users))
        return result


async def scaling(kind: str, tmp: Path, filler: list[tuple[Session, str]], n: int) -> list[float]:
    """Median resolve latency of random tokens in a store of 1,000 and one of ``len(filler)``.

    Both stores are open at once and resolves alternate between them, so noise hits both.
    """
    async with open_kind(kind, tmp) as small, open_kind(kind, tmp) as large:
        await small.load([s for s, _ in filler[:1000]])
        await large.load([s for s, _ in filler])
        few = SessionResolver(small.store, touch_interval=NO_TOUCH)
        many = SessionResolver(large.store, touch_interval=NO_TOUCH)

        async def in_small(pair: tuple[str, str]) -> None:
            assert await few.resolve(pair[0]) is not None

        async def in_large(pair: tuple[str, str]) -> None:
            assert await many.resolve(pair[1]) is not None

        pairs = [
            (a, b)
            for (_, a), (_, b) in zip(
                random.sample(filler[:1000], n), random.sample(filler, n), strict=True
            )
        ]
        await alternating(in_small, in_large, pairs[:50])  # warm-up
        return list(await alternating(in_small, in_large, pairs))


def string_user_id() -> str:
    """A user id as Auth0 hands them out: provider, ``|``, 24 hex digits."""
    return f"auth0|{secrets.token_hex(12)}"


async def user_ids(kind: str, tmp: Path, n: int) -> tuple[float, float]:
    """Median resolve latency of sessions with UUID user ids and with string user ids.

    Both kinds live in one store, and resolves alternate between them, so noise hits both.
    """
    async with open_kind(kind, tmp) as opened:
        resolver = SessionResolver(opened.store, touch_interval=NO_TOUCH)
        by_uuid = [new_session(uuid.uuid4()) for _ in range(n)]
        by_string = [new_session(string_user_id()) for _ in range(n)]
        await opened.load([s for s, _ in by_uuid + by_string])

        async def resolve(pair: tuple[str, str], wanted: type) -> None:
            session = await resolver.resolve(pair[0] if wanted is uuid.UUID else pair[1])
            assert session is not None
            assert type(session.user_id) is wanted

        async def with_uuid(pair: tuple[str, str]) -> None:
            await resolve(pair, uuid.UUID)

        async def with_string(pair: tuple[str, str]) -> None:
            await resolve(pair, str)

        pairs = [(a, b) for (_, a), (_, b) in zip(by_uuid, by_string, strict=True)]
        random.shuffle(pairs)
        await alternating(with_uuid, with_string, pairs[:50])  # warm-up
        return await alternating(with_uuid, with_string, pairs)


async def compare_user_ids(tmp: Path, n: int) -> None:
    """Print the table of ``user_ids`` for every store."""
    print(f"\n## Resolve: UUID user ids vs string user ids (medians in µs, {n:,} each)\n")
    print("| store | UUID ids | string ids (`auth0\\|...`) | string / UUID |")
    print("|---|---|---|---|", flush=True)
    for kind in KINDS:
        by_uuid, by_string = await user_ids(kind, tmp, n)
        ratio = by_string / by_uuid
        print(f"| {kind} | {by_uuid:,.1f} | {by_string:,.1f} | {ratio:.3f} |", flush=True)


async def rotation(kind: str, tmp: Path, n: int) -> tuple[float, float]:
    """Median resolve latency of sessions with refresh tokens and of plain sessions.

    Both kinds are bulk-loaded into one store, interleaved (the loader's read-back check
    covers the refresh columns). Each session with a refresh token is then rotated once
    (``TokenRefresher.refresh``), which fills every refresh field (generation 1,
    ``refreshed_at``, ``rotation_seal``, a new access token and its expiry); each plain
    one is touched once, so both kinds' rows were written once after the load. Resolves
    alternate between the two kinds, so noise hits both. Returns (on, off).
    """
    async with open_kind(kind, tmp) as opened:
        store = opened.store
        refresher = refresher_of(store)
        resolver = SessionResolver(store, touch_interval=NO_TOUCH)
        on = [new_session(uuid.uuid4(), refresher=refresher)[0] for _ in range(n)]
        off = [new_session(uuid.uuid4()) for _ in range(n)]
        await opened.load([s for pair in zip(on, (s for s, _ in off), strict=True) for s in pair])
        access = [(await refresher.refresh(s.refresh_token)).token for s in on]
        seen = utcnow()
        for s, _ in off:
            assert await store.touch(s, seen) is not None
        for s in random.sample(on, min(20, n)):
            stored = await store.get(s.id)
            assert stored is not None
            assert stored.refresh_generation == 1
            filled = (stored.refresh_digest, stored.access_expires_at, stored.refreshed_at)
            assert None not in filled
            assert stored.rotation_seal is not None

        async def rotation_on(pair: tuple[str, str]) -> None:
            session = await resolver.resolve(pair[0])
            assert session is not None
            assert session.access_expires_at is not None

        async def rotation_off(pair: tuple[str, str]) -> None:
            session = await resolver.resolve(pair[1])
            assert session is not None
            assert session.access_expires_at is None

        pairs = list(zip(access, (t for _, t in off), strict=True))
        random.shuffle(pairs)
        await alternating(rotation_on, rotation_off, pairs[:50])  # warm-up
        return await alternating(rotation_on, rotation_off, pairs)


async def compare_rotation(tmp: Path, n: int) -> None:
    """Print the table of ``rotation`` for every store."""
    print(f"\n## Resolve: rotation on vs off (medians in µs, {n:,} sessions each)\n")
    print("| store | on / off | rotation on (refresh tokens) | rotation off (plain) |")
    print("|---|---|---|---|", flush=True)
    for kind in KINDS:
        on, off = await rotation(kind, tmp, n)
        flag = "" if on / off <= 1.1 else " **over 1.1**"
        print(f"| {kind} | {on / off:.3f}{flag} | {on:,.1f} | {off:,.1f} |", flush=True)


#: Real user agents (desktop, phone, tablet, bot) for the device-name comparison.
AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
)


async def devices(kind: str, tmp: Path, n: int) -> tuple[float, float]:
    """Median resolve latency of sessions with a device name and of sessions without.

    Both kinds are created the same way but one gets ``describe_device`` of its user agent,
    as ``SessionManager.login`` does once per session; they live interleaved in one store,
    and resolves alternate between them. Returns (on, off).
    """
    async with open_kind(kind, tmp) as opened:
        resolver = SessionResolver(opened.store, touch_interval=NO_TOUCH)
        on, off = [], []
        for i in range(n):
            agent = AGENTS[i % len(AGENTS)]
            session, token = new_session(uuid.uuid4())
            on.append((session.replace(user_agent=agent, device=describe_device(agent)), token))
            plain, token = new_session(uuid.uuid4())
            off.append((plain.replace(user_agent=agent), token))
        await opened.load([s for pair in zip(on, off, strict=True) for s, _ in pair])

        async def named(pair: tuple[str, str]) -> None:
            session = await resolver.resolve(pair[0])
            assert session is not None
            assert session.device is not None

        async def unnamed(pair: tuple[str, str]) -> None:
            session = await resolver.resolve(pair[1])
            assert session is not None
            assert session.device is None

        pairs = [(a, b) for (_, a), (_, b) in zip(on, off, strict=True)]
        random.shuffle(pairs)
        await alternating(named, unnamed, pairs[:50])  # warm-up
        return await alternating(named, unnamed, pairs)


async def compare_devices(tmp: Path, n: int) -> None:
    """``--devices``: the table of ``devices`` for every store."""
    print(f"\n## Resolve: device names on vs off (medians in µs, {n:,} sessions each)\n")
    print("| store | on / off | with `device` | without |")
    print("|---|---|---|---|", flush=True)
    for kind in KINDS:
        on, off = await devices(kind, tmp, n)
        print(f"| {kind} | {on / off:.3f} | {on:,.1f} | {off:,.1f} |", flush=True)


async def refresh_parts(tmp: Path, n: int) -> None:
    """``--refresh``: create, resolve and refresh medians, then rotation on vs off."""
    print("## Refresh (medians in µs)\n")
    print("| store | create | resolve | refresh | refresh / resolve |")
    print("|---|---|---|---|---|", flush=True)
    for kind in KINDS:
        r = await operations(kind, tmp, n, refresh_only=True)
        cells = " | ".join(fmt(r[h]) for h in ("create", "resolve", "refresh"))
        print(f"| {kind} | {cells} | {r['refresh'] / r['resolve']:.2f} |", flush=True)
    await compare_rotation(tmp, n)


def make_filler(count: int) -> list[tuple[Session, str]]:
    """``count`` sessions over ``count / 10`` users, with their tokens."""
    users = [uuid.uuid4() for _ in range(max(1, count // 10))]
    return [new_session(users[i % len(users)], i) for i in range(count)]


def fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}"


async def main(quick: bool, ids_only: bool, refresh_only: bool, devices_only: bool) -> None:
    n = 300 if quick else 3000
    big = 20_000 if quick else 1_000_000
    print(f"# Session stores ({'--quick' if quick else 'full run'}; medians in µs)\n")
    print(
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs, SQLite "
        f"{sqlite3.sqlite_version}; {n:,} calls per operation\n"
    )
    with tempfile.TemporaryDirectory(prefix="bench_stores_", dir="/tmp") as tmpdir:
        tmp = Path(tmpdir)
        if ids_only:
            await compare_user_ids(tmp, n)
            return
        if refresh_only:
            await refresh_parts(tmp, n)
            return
        if devices_only:
            await compare_devices(tmp, n)
            return
        head = [
            "store",
            "create",
            "resolve",
            "refresh",
            "touch",
            "list 10",
            "revoke one",
            "revoke all (10)",
        ]
        print("| " + " | ".join([*head, "raw lower bound", "resolve / raw"]) + " |")
        print("|" + "---|" * (len(head) + 2), flush=True)
        raw_names = {
            "memory": "—",
            "sqlite": "aiosqlite SELECT by PK",
            "postgres": "asyncpg fetchrow by PK",
            "redis": "redis.asyncio GET",
        }
        for kind in KINDS:
            r = await operations(kind, tmp, n)
            raw = r.get("raw")
            ratio = "—" if raw is None else f"{r['resolve'] / raw:.2f}"
            cells = [fmt(r[h]) for h in head[1:]]
            label = raw_names[kind] if raw is None else f"{fmt(raw)} ({raw_names[kind]})"
            print(f"| {kind} | " + " | ".join(cells) + f" | {label} | {ratio} |", flush=True)
        await compare_user_ids(tmp, n)
        await compare_rotation(tmp, n)
        await compare_devices(tmp, n)

        print(f"\n## Resolve latency: 1,000 sessions vs {big:,} (medians in µs)\n", flush=True)
        filler = make_filler(big)
        gc.collect()
        gc.freeze()  # a million long-lived objects: keep the collector off them while timing
        print(f"| store | 1,000 sessions | {big:,} sessions | ratio | load + run (s) |")
        print("|---|---|---|---|---|", flush=True)
        for kind in KINDS:
            start = time.perf_counter()
            small, large = await scaling(kind, tmp, filler, min(n, 1000))
            took = time.perf_counter() - start
            print(
                f"| {kind} | {fmt(small)} | {fmt(large)} | {large / small:.2f} | {took:.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run with small sizes")
    parser.add_argument("--ids", action="store_true", help="only UUID vs string user ids")
    parser.add_argument(
        "--refresh", action="store_true", help="only create/resolve/refresh and rotation on/off"
    )
    parser.add_argument(
        "--devices", action="store_true", help="only resolve with device names on vs off"
    )
    args = parser.parse_args()
    asyncio.run(main(args.quick, args.ids, args.refresh, args.devices))
