"""Concurrent token look-ups on the SQL store: throughput, CPU and connections opened.

    .venv/bin/python benchmarks/bench_sql_lookups.py            # ~2 min, PostgreSQL
    .venv/bin/python benchmarks/bench_sql_lookups.py --quick    # ~20 s smoke run

64 tasks at once resolve the tokens of 200 sessions through ``get_by_token_digest``, on
the local PostgreSQL (``--url`` to change it), for each way of holding connections:

- ``kept K``: a store made from the URL with ``pool_size=2K`` (K connections kept for
  look-ups: what the store does);
- ``pool``: a store given an engine with a pool of 10, no overflow and no pre-ping (each
  look-up checks a connection out of SQLAlchemy's pool);
- ``default pool``: a store given ``create_async_engine(url, pool_pre_ping=True)``, the
  pool SQLAlchemy gives by default (5 plus 10 overflow, closed on return);
- ``raw asyncpg``: five asyncpg connections of the benchmark's own and the store's query,
  no SQLAlchemy at all (the floor).

Rounds interleave the cases (the order rotates each round) so the machine's other load
hits them alike; each case reports the median of its rounds. Connections opened are
counted by the pool's ``connect`` events during the timed part only (after a warm-up).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import event
from sqlalchemy.ext.asyncio import create_async_engine

from asgi_kit import SQLAlchemySessionDatabase, generate_token, token_digest
from fastapi_users.extensions.session_manager import SessionManager

URL = "postgresql://postgres@127.0.0.1:5432/test"
TASKS = 64
SESSIONS = 200
Lookup = Callable[[str], Awaitable[object]]


@dataclass
class Case:
    """One way of holding connections: its look-up, and what it measured per round."""

    name: str
    lookup: Lookup
    opened: list[int]  # the pool's ``connect`` events so far (one item)
    rates: list[float] = field(default_factory=list)
    cpu_us: list[float] = field(default_factory=list)
    new_connections: list[int] = field(default_factory=list)


def counted(store: SQLAlchemySessionDatabase) -> list[int]:
    opened = [0]

    def _connected(*_args: object) -> None:
        opened[0] += 1

    event.listen(store.engine.sync_engine, "connect", _connected)
    return opened


async def drive(lookup: Lookup, digests: list[str], seconds: float) -> int:
    """``TASKS`` tasks resolving ``digests`` in turn for ``seconds``; how many look-ups."""
    stop = time.monotonic() + seconds
    done = [0]

    async def task(first: int) -> None:
        i = first
        while time.monotonic() < stop:
            if await lookup(digests[i % len(digests)]) is None:
                raise SystemExit("a valid token was not found")
            i += 7
            done[0] += 1

    await asyncio.gather(*(task(j) for j in range(TASKS)))
    return done[0]


async def measure(case: Case, digests: list[str], seconds: float) -> None:
    await drive(case.lookup, digests, min(seconds, 1.0))  # warm-up: opens what it needs
    before, cpu, wall = case.opened[0], time.process_time(), time.monotonic()
    count = await drive(case.lookup, digests, seconds)
    case.rates.append(count / (time.monotonic() - wall))
    case.cpu_us.append(1e6 * (time.process_time() - cpu) / count)
    case.new_connections.append(case.opened[0] - before)


async def raw_floor(url: str, sql: str) -> tuple[Lookup, Callable[[], Awaitable[None]]]:
    """Five asyncpg connections of our own in a queue, and a way to close them."""
    free: asyncio.Queue[asyncpg.Connection] = asyncio.Queue()
    for _ in range(5):
        free.put_nowait(await asyncpg.connect(url))

    async def lookup(digest: str) -> object:
        conn = await free.get()
        try:
            return await conn.fetchrow(sql, digest)
        finally:
            free.put_nowait(conn)

    async def close() -> None:
        while not free.empty():
            await free.get_nowait().close()

    return lookup, close


async def main(url: str, rounds: int, seconds: float) -> None:
    table = f"bench_{uuid.uuid4().hex[:8]}"
    async_url = url.replace("postgresql://", "postgresql+asyncpg://", 1)
    stores = {
        "kept 1 (pool_size=2)": SQLAlchemySessionDatabase(url, table_name=table, pool_size=2),
        "kept 2 (pool_size=4)": SQLAlchemySessionDatabase(url, table_name=table, pool_size=4),
        "kept 5 (pool_size=10, the default)": SQLAlchemySessionDatabase(url, table_name=table),
        "pool of 10, no overflow, no pre-ping": SQLAlchemySessionDatabase(
            create_async_engine(async_url, pool_size=10, max_overflow=0), table_name=table
        ),
        "default pool (5 + 10 overflow), pre-ping": SQLAlchemySessionDatabase(
            create_async_engine(async_url, pool_pre_ping=True), table_name=table
        ),
    }
    first = next(iter(stores.values()))
    await first.create_table()
    manager = SessionManager(session_db=first)
    tokens = [generate_token() for _ in range(SESSIONS)]
    for token in tokens:
        await manager.create_session(uuid.uuid4(), token)
    digests = [token_digest(token) for token in tokens]
    cases = [Case(n, s.get_by_token_digest, counted(s)) for n, s in stores.items()]
    raw, close_raw = await raw_floor(url, lookup_sql(table))
    cases.append(Case("raw asyncpg, 5 connections (floor)", raw, [0]))
    try:
        for r in range(rounds):
            for case in cases[r % len(cases) :] + cases[: r % len(cases)]:
                await measure(case, digests, seconds)
            print(f"round {r + 1}/{rounds} done", file=sys.stderr)
    finally:
        await close_raw()
        await first.drop_table()
        for store in stores.values():
            await store.aclose()
            await store.engine.dispose()
    report(cases, rounds, seconds)


def lookup_sql(table: str) -> str:
    """The store's look-up, as the raw floor sends it."""
    return f"SELECT * FROM {table} WHERE token_digest = $1"  # noqa: S608 (our own name)


def report(cases: list[Case], rounds: int, seconds: float) -> None:
    print(
        f"\n{TASKS} concurrent tasks, {SESSIONS} sessions, {rounds} rounds x {seconds} s per case"
    )
    print("\n| mechanism | look-ups/s | CPU per look-up | connections opened per round |")
    print("|---|--:|--:|--:|")
    for case in cases:
        rate, cpu = statistics.median(case.rates), statistics.median(case.cpu_us)
        opened = max(case.new_connections)
        print(f"| {case.name} | {rate:,.0f} | {cpu:.0f} µs | {opened} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default=URL)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--quick", action="store_true", help="2 rounds x 1 s")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.seconds = 2, 1.0
    asyncio.run(main(args.url, args.rounds, args.seconds))
