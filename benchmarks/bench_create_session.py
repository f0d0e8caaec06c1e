"""``SessionManager.create_session`` and ``authenticate`` with the in-memory store, in one run.

The calling styles against the path the in-memory store took before it stored eagerly (the
awaited coroutine, which stores without an eager path still take: measured here through a
trivial subclass of the store, so the same manager code runs the old way). Cases run
interleaved in slices; figures are medians of per-call times over all slices.

    .venv/bin/python benchmarks/bench_create_session.py            # 15 rounds x 2,000 calls
    .venv/bin/python benchmarks/bench_create_session.py --quick
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from itertools import count

from asgi_kit import InMemorySessionDatabase
from fastapi_users.extensions.session_manager import SessionManager


class AwaitedStore(InMemorySessionDatabase):
    """The in-memory store, taken for one that may suspend: the pre-eager, awaited path."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.calls = 3, 300
    asyncio.run(run(args.rounds, args.calls))


async def run(rounds: int, calls: int) -> None:
    eager, awaited = SessionManager(), SessionManager(session_db=AwaitedStore())
    numbers = count()
    users = [uuid.uuid4() for _ in range(100)]
    string_users = [f"auth0|{u.hex[:24]}" for u in users]

    def token() -> str:
        return f"tok-{next(numbers)}"

    async def create_awaited_old() -> object:
        return await awaited.create_session(users[next(numbers) % 100], token())

    async def create_awaited_eager() -> object:
        return await eager.create_session(users[next(numbers) % 100], token())

    async def create_without_await() -> object:
        return eager.create_session(users[next(numbers) % 100], token())

    cases: dict[str, Callable[[], Awaitable[object]]] = {
        "create, before (awaited coroutine)": create_awaited_old,
        "create, now, with await": create_awaited_eager,
        "create, now, without await": create_without_await,
    }
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(rounds):
        for name, case in cases.items():
            times[name].append(await timed(case, calls))
    # Resolve: the same look-up for UUID and string user ids, both managers.
    resolve_cases: dict[str, tuple[SessionManager, list[str]]] = {}
    for label, manager, ids in (
        ("before", awaited, users),
        ("now", eager, users),
        ("now, string ids", eager, string_users),
    ):
        tokens = [f"r-{label.replace(' ', '').replace(',', '-')}-{i}" for i in range(1000)]
        for i, t in enumerate(tokens):
            await manager.create_session(ids[i % 100], t)
        resolve_cases[f"resolve, {label}"] = (manager, tokens)
    for name in resolve_cases:
        times[name] = []
    for _ in range(rounds):
        for name, (manager, tokens) in resolve_cases.items():
            tokens_iter = iter(tokens * (calls // len(tokens) + 1))

            async def resolve(m: SessionManager = manager, it: object = tokens_iter) -> object:
                return await m.authenticate(next(it))  # type: ignore[call-overload]

            times[name].append(await timed(resolve, calls))
    report(times)


async def timed(case: Callable[[], Awaitable[object]], calls: int) -> float:
    gc.collect()
    start = time.perf_counter()
    for _ in range(calls):
        await case()
    await asyncio.sleep(0)  # hook tasks of unawaited creations run here (timed with them)
    return (time.perf_counter() - start) / calls * 1e6


def report(times: dict[str, list[float]]) -> None:
    medians = {name: statistics.median(values) for name, values in times.items()}
    base_create = medians["create, before (awaited coroutine)"]
    base_resolve = medians["resolve, before"]
    print(f"{'case':42} {'median':>10} {'/ before':>9}")
    for name, median in medians.items():
        base = base_create if name.startswith("create") else base_resolve
        print(f"{name:42} {median:8.2f} us {median / base:9.2f}")


if __name__ == "__main__":
    main()
