"""In-process benchmark of ``BearerAuthMiddleware`` against bare and hand-written baselines.

Every request is a direct ASGI call (hand-built scope, no-op ``receive``/``send``) inside
one asyncio event loop: no sockets, no HTTP parsing, no TestClient. Each round sends
``--requests`` requests to every case, interleaved in slices of ``--slice`` requests in a
rotating order, so machine noise hits all cases alike; an overhead is the median over all
slices of (case - bare app) measured in the same slice.

    .venv/bin/python benchmarks/bench_middleware.py            # 7 rounds x 20,000 requests
    .venv/bin/python benchmarks/bench_middleware.py --quick    # smoke run, a few seconds
    .venv/bin/python benchmarks/bench_middleware.py --breakdown --profile
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import io
import os
import platform
import pstats
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from itertools import cycle, islice
from pathlib import Path
from typing import Any

from starlette.authentication import AuthCredentials
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.types import ASGIApp, Message, Scope

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _apps

from asgi_kit import (
    AuthResult,
    BearerAuthMiddleware,
    SessionResolver,
    SessionUser,
    token_digest,
)
from asgi_kit._tokens import find_bearer

Headers = list[tuple[bytes, bytes]]

#: Timed rows: (key, label, app key in ``_apps.build_cases``, how the valid token is sent:
#: "bearer", "cookie" or "" for none).
ROWS: tuple[tuple[str, str, str, str], ...] = (
    ("bare", "1. bare Starlette app", "bare", "bearer"),
    ("bearer", "2. BearerAuthMiddleware, valid token", "bearer", "bearer"),
    ("bearer_anon", "2a. BearerAuthMiddleware, no header", "bearer", ""),
    ("cookie", "2b. BearerAuthMiddleware, the token in the session cookie", "cookie", "cookie"),
    ("cookie_bearer", "2c. (2b)'s middleware, a Bearer token", "cookie", "bearer"),
    (
        "starlette_dict",
        "3. Starlette AuthenticationMiddleware + hand-written backend",
        "",
        "bearer",
    ),
    (
        "starlette_session",
        "3a. Starlette AuthenticationMiddleware + SessionAuthBackend",
        "",
        "bearer",
    ),
    ("minimal", "4. minimal pure ASGI (sha256 + dict) = lower bound", "", "bearer"),
    ("minimal_nohash", "4a. minimal pure ASGI (dict, no hash)", "", "bearer"),
)


@dataclass(frozen=True)
class Config:
    """What to run."""

    rounds: int
    requests: int
    sessions: int
    active_tokens: int
    slice: int = 500


@dataclass(frozen=True)
class Row:
    """Summary of one timed case, in microseconds per request."""

    key: str
    label: str
    best: float
    median: float
    overhead_median: float
    overhead_best: float


def request_headers(token: str | None, via: str = "bearer") -> Headers:
    """Headers of a typical client request; the token last (the longest scan)."""
    headers = [
        (b"host", b"127.0.0.1:8000"),
        (b"user-agent", b"bench/1.0"),
        (b"accept", b"*/*"),
        (b"accept-encoding", b"gzip, deflate"),
        (b"connection", b"keep-alive"),
    ]
    if token is not None and via == "cookie":  # as a browser sends it, beside another cookie
        cookie = f"theme=dark; {_apps.COOKIE_NAME}={token}".encode()
        headers.append((b"cookie", cookie))
    elif token is not None:
        headers.append((b"authorization", b"Bearer " + token.encode()))
    return headers


def scope_template(token: str | None, via: str = "bearer") -> Scope:
    """An HTTP ``GET /`` scope like uvicorn builds; copied (shallowly) for every request."""
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/",
        "raw_path": b"/",
        "root_path": "",
        "query_string": b"",
        "headers": request_headers(token, via),
        "client": ("127.0.0.1", 50_000),
        "server": ("127.0.0.1", 8_000),
        "state": {},
    }


async def receive() -> Message:
    """An empty request body."""
    return {"type": "http.request", "body": b"", "more_body": False}


async def send(message: Message) -> None:
    """Discard the response."""


async def noop_app(scope: Scope, receive: Any, send: Any) -> None:
    """An inner app that does nothing, to time a middleware layer alone."""


async def verify(app: ASGIApp, template: Scope, authenticated: bool) -> None:
    """Fail loudly unless ``app`` answers 200 and authenticates as expected."""
    sent: list[Message] = []

    async def record(message: Message) -> None:
        sent.append(message)

    scope = dict(template)
    await app(scope, receive, record)
    status = sent[0].get("status") if sent else None
    if status != 200:
        raise SystemExit(f"benchmark app answered {status}, expected 200: {sent!r}")
    if "user" not in scope:
        return
    user = scope["user"]
    if bool(getattr(user, "is_authenticated", user is not None)) != authenticated:
        raise SystemExit(f"unexpected user {user!r} (authenticated={authenticated})")


@dataclass
class Run:
    """One timed case: its app, the scopes it cycles over, and its samples."""

    key: str
    label: str
    app: ASGIApp
    scopes: list[Scope]
    valid: bool
    #: ns/request of every slice, one list per round.
    samples: list[list[float]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.next_scope = cycle(self.scopes)


async def time_slice(run: Run, requests: int) -> float:
    """Send ``requests`` requests through ``run.app``; return nanoseconds per request."""
    app, scopes = run.app, islice(run.next_scope, requests)
    start = time.perf_counter_ns()
    for template in scopes:
        await app(dict(template), receive, send)
    return (time.perf_counter_ns() - start) / requests


def plan(config: Config) -> list[Run]:
    """Build the apps (then freeze them out of the GC's way) and return the timed runs."""
    apps, tokens = _apps.build_cases(config.sessions)
    active = tokens[: config.active_tokens]
    scopes = {via: [scope_template(t, via) for t in active] for via in ("bearer", "cookie")}
    scopes[""] = [scope_template(None)]
    runs = [
        Run(key, label, apps[app_key or key], scopes[via], bool(via))
        for key, label, app_key, via in ROWS
    ]
    gc.collect()
    gc.freeze()  # the 100,000 sessions are long-lived: keep full collections off them
    return runs


async def run_round(runs: list[Run], config: Config) -> None:
    """One round: ``config.requests`` per case, interleaved in slices of ``config.slice``."""
    slices = max(1, config.requests // config.slice)
    for run in runs:
        run.samples.append([])
    gc.collect()
    for number in range(slices):
        shift = number % len(runs)
        for run in runs[shift:] + runs[:shift]:
            run.samples[-1].append(await time_slice(run, config.slice))


async def measure(config: Config) -> list[Run]:
    """Verify every case, warm up, then run ``config.rounds`` rounds; return the runs."""
    started = time.perf_counter()
    runs = plan(config)
    print(f"built {config.sessions:,} sessions in {time.perf_counter() - started:.2f} s")
    for run in runs:
        await verify(run.app, run.scopes[0], authenticated=run.valid)
    for run in runs:  # warm-up, not recorded
        await time_slice(run, max(1_000, config.requests // 10))
    for number in range(config.rounds):
        await run_round(runs, config)
        print(f"round {number + 1}/{config.rounds} done", file=sys.stderr)
    return runs


def summarize(runs: list[Run]) -> list[Row]:
    """Turn slice samples into rows (microseconds per request).

    ``best``/``median`` are over per-round means. The overhead is the median, over all
    slices, of (case - bare) in the same slice, the two measured milliseconds apart.
    """
    bare = next(run for run in runs if run.key == "bare")
    bare_rounds = [statistics.fmean(r) for r in bare.samples]
    bare_slices = [x for r in bare.samples for x in r]
    rows = []
    for run in runs:
        rounds = [statistics.fmean(r) for r in run.samples]
        slices = [x for r in run.samples for x in r]
        paired = [s - b for s, b in zip(slices, bare_slices, strict=True)]
        rows.append(
            Row(
                key=run.key,
                label=run.label,
                best=min(rounds) / 1000,
                median=statistics.median(rounds) / 1000,
                overhead_median=statistics.median(paired) / 1000,
                overhead_best=(min(rounds) - min(bare_rounds)) / 1000,
            )
        )
    return rows


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator > 0 else float("inf")


def format_table(rows: list[Row]) -> str:
    """Render the rows as a markdown table."""
    by_key = {row.key: row for row in rows}
    lower = by_key["minimal"].overhead_median
    lines = [
        "| case | best µs/req | median µs/req | overhead µs (median) | overhead µs (best) "
        "| overhead / lower bound |",
        "|---|--:|--:|--:|--:|--:|",
    ]
    for row in rows:
        ratio = "" if row.key == "bare" else f"{_ratio(row.overhead_median, lower):.2f}"
        lines.append(
            f"| {row.label} | {row.best:.2f} | {row.median:.2f} | {row.overhead_median:+.2f} "
            f"| {row.overhead_best:+.2f} | {ratio} |"
        )
    return "\n".join(lines)


STARLETTE = "Starlette AuthenticationMiddleware"


def format_ratios(rows: list[Row]) -> str:
    """Render the target ratios, from median (paired) and from best-of overheads."""
    by_key = {row.key: row for row in rows}
    ours = by_key["bearer"]
    checks = (
        ("bearer / lower bound", by_key["minimal"], 2.2),
        (f"bearer / {STARLETTE} (hand-written)", by_key["starlette_dict"], 1.0),
        (f"bearer / {STARLETTE} (SessionAuthBackend)", by_key["starlette_session"], 1.0),
    )
    lines = ["| ratio | median | best | target | met (median) |", "|---|--:|--:|--:|:-:|"]
    for name, other, limit in checks:
        median = _ratio(ours.overhead_median, other.overhead_median)
        best = _ratio(ours.overhead_best, other.overhead_best)
        verdict = "yes" if median <= limit else "NO"
        lines.append(f"| {name} | {median:.2f} | {best:.2f} | <= {limit} | {verdict} |")
    return "\n".join(lines)


async def per_call_ns(call: Callable[[], Awaitable[object]], n: int) -> float:
    """Nanoseconds per ``await call()`` over ``n`` calls."""
    start = time.perf_counter_ns()
    for _ in range(n):
        await call()
    return (time.perf_counter_ns() - start) / n


def sync(fn: Callable[[], object]) -> Callable[[], Awaitable[object]]:
    """Wrap a plain call so ``per_call_ns`` can time it (the wrapper is in the baseline)."""

    async def call() -> object:
        return fn()

    return call


async def breakdown_steps(config: Config) -> list[tuple[str, Callable[[], Awaitable[object]]]]:
    """The steps of one authenticated request, each as a zero-argument awaitable call."""
    tokens = _apps.make_tokens(config.sessions)
    store = _apps.build_store(tokens)
    users = _apps.build_user_index(tokens)
    resolver = SessionResolver(store, touch_interval=60)
    headers = request_headers(tokens[0])
    digest = token_digest(tokens[0])
    raw_token = tokens[0].encode()
    session = await store.get_by_token_digest(digest)
    assert session is not None
    now = time.time()
    layer = BearerAuthMiddleware(noop_app, session_db=store, touch_interval=60)
    starlette = AuthenticationMiddleware(noop_app, backend=_apps.DictTokenBackend(users))
    minimal = _apps.MinimalBearerMiddleware(noop_app, users)
    template = scope_template(tokens[0])
    empty = scope_template(None)

    async def nothing() -> None:
        return None

    return [
        ("baseline: await of an empty coroutine", nothing),
        ("find_bearer(headers)", sync(lambda: find_bearer(headers))),
        ("token_digest(token)", sync(lambda: token_digest(tokens[0]))),
        ("await store.get_by_token_digest(digest)", lambda: store.get_by_token_digest(digest)),
        ("time.time()", sync(time.time)),
        ("session.is_active(now)", sync(lambda: session.is_active(now))),
        ("await resolver.look_up(token)", lambda: resolver.look_up(raw_token)),
        (
            "await resolver.resolve_scope(scope), valid token",
            lambda: resolver.resolve_scope(dict(template)),
        ),
        (
            "await resolver.resolve_scope(scope), no header",
            lambda: resolver.resolve_scope(dict(empty)),
        ),
        ("SessionUser(session)", sync(lambda: SessionUser(session))),
        ('AuthCredentials(["authenticated"])', sync(lambda: AuthCredentials(["authenticated"]))),
        ("AuthResult.of(session)  (get_auth_result)", sync(lambda: AuthResult.of(session))),
        ("dict(scope)  (per-request copy in this harness)", sync(lambda: dict(template))),
        ("await resolver.authenticate(headers)", lambda: resolver.authenticate(headers)),
        (
            "BearerAuthMiddleware over a no-op app, valid token",
            lambda: layer(dict(template), receive, send),
        ),
        (
            "BearerAuthMiddleware over a no-op app, no header",
            lambda: layer(dict(empty), receive, send),
        ),
        (
            "AuthenticationMiddleware + hand-written backend over a no-op app",
            lambda: starlette(dict(template), receive, send),
        ),
        (
            "minimal pure ASGI (sha256 + dict) over a no-op app",
            lambda: minimal(dict(template), receive, send),
        ),
    ]


async def breakdown(config: Config, n: int, repeats: int = 7) -> str:
    """Time each step of the middleware's work (best of ``repeats`` interleaved passes)."""
    steps = await breakdown_steps(config)
    best = [float("inf")] * len(steps)
    for _ in range(repeats):
        for index, (_, call) in enumerate(steps):
            best[index] = min(best[index], await per_call_ns(call, n // repeats))
    lines = ["| step | ns/call | net of baseline |", "|---|--:|--:|"]
    for (name, _), ns in zip(steps, best, strict=True):
        lines.append(f"| {name} | {ns:.0f} | {ns - best[0]:.0f} |")
    return "\n".join(lines)


async def profile(config: Config, n: int) -> str:
    """cProfile ``n`` valid-token requests through the middleware over a no-op app."""
    tokens = _apps.make_tokens(config.sessions)
    layer = BearerAuthMiddleware(noop_app, session_db=_apps.build_store(tokens))
    templates = [scope_template(t) for t in tokens[: config.active_tokens]]
    profiler = cProfile.Profile()
    profiler.enable()
    for template in islice(cycle(templates), n):
        await layer(dict(template), receive, send)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(18)
    return out.getvalue()


def parse_args(argv: Iterable[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 rounds x 4,000, 10,000 sessions")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--requests", type=int, default=20_000, help="per case per round")
    parser.add_argument("--sessions", type=int, default=_apps.DEFAULT_SESSIONS)
    parser.add_argument("--active-tokens", type=int, default=_apps.DEFAULT_ACTIVE_TOKENS)
    parser.add_argument("--slice", type=int, default=500, help="requests per interleaved slice")
    parser.add_argument("--breakdown", action="store_true", help="time each step of a request")
    parser.add_argument("--profile", action="store_true", help="cProfile the middleware")
    return parser.parse_args(None if argv is None else list(argv))


def config_from(args: argparse.Namespace) -> Config:
    """The run configuration, ``--quick`` overriding the sizes."""
    if args.quick:
        return Config(rounds=3, requests=4_000, sessions=10_000, active_tokens=1_000)
    return Config(args.rounds, args.requests, args.sessions, args.active_tokens, args.slice)


async def amain(args: argparse.Namespace) -> None:
    """Run the benchmark (and the optional breakdown and profile); print markdown."""
    config = config_from(args)
    print(
        f"Python {platform.python_version()} on {platform.machine()}, "
        f"{config.rounds} rounds x {config.requests:,} requests per case "
        f"(slices of {config.slice}), "
        f"{config.sessions:,} sessions, {config.active_tokens:,} tokens in use\n"
    )
    rows = summarize(await measure(config))
    print(f"load average at the end: {os.getloadavg()[0]:.2f} (1 min)")
    print(format_table(rows), "\n", format_ratios(rows), sep="\n")
    n = 7_000 if args.quick else 70_000
    if args.breakdown:
        table = await breakdown(config, n)
        print(
            f"\nPer-step cost (best of 7 interleaved passes of {n // 7:,} calls)\n", table, sep="\n"
        )
    if args.profile:
        stats = await profile(config, n)
        print(f"\ncProfile, {n:,} requests over a no-op app\n", stats, sep="\n")


def main(argv: Iterable[str] | None = None) -> None:
    """Entry point."""
    asyncio.run(amain(parse_args(argv)))


if __name__ == "__main__":
    main()
