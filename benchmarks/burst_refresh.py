"""Refresh bursts: simultaneous ``POST /auth/sessions/refresh`` over loopback, against reads.

For each store (PostgreSQL: ``SQLAlchemySessionDatabase("postgresql://127.0.0.1:5432/test")``
on a table of its own, created and dropped; Redis: ``RedisSessionDatabase`` on
``redis://127.0.0.1:6379/0`` under a key prefix of its own, cleared afterwards), starts
uvicorn (one worker, 127.0.0.1, a free port) serving this module's ``app_factory``: a
FastAPI app with ``SessionManager(access_token_lifetime=300, refresh_secret=...)``, its
router at ``/auth/sessions`` and ``POST /login``, which calls ``manager.login`` for the user
id in its body (no password: a benchmark app on loopback). Then, over N keep-alive
connections:

1. N logins at once (N users, one session each);
2. rounds of two bursts, in ABBA order (read, refresh; refresh, read; ...): the baseline,
   N simultaneous authenticated ``GET /auth/sessions`` (a read: each must answer 200 with
   its one session), and N simultaneous ``POST /auth/sessions/refresh``, one per session,
   each with the refresh token the session's last refresh returned (each must answer 200
   with a new pair, which the next bursts use);
3. every access token the logins gave must now be refused (401): each was rotated out;
4. the same-token burst: one more login, then M simultaneous refreshes presenting that
   session's one refresh token. All must answer 200 with the same pair (the first
   rotates, the others get the current pair within ``refresh_reuse_interval``); then
   ``GET /auth/sessions`` with the returned access token must list the session, and the
   returned refresh token must refresh once more.

Reported per store: each burst's status counts, p50/p99/max latency (send to answer) and
wall time; then refresh / read ratios (latencies pooled over the rounds, wall times the
median of the rounds). Any 5xx is printed loudly, with the exceptions the server's log
ends tracebacks with; the script exits 1 on any 5xx or failed check.

    .venv/bin/python benchmarks/burst_refresh.py           # N = 200, 4 rounds, M = 50
    .venv/bin/python benchmarks/burst_refresh.py --quick   # N = 200, 1 round, M = 50

Needs PostgreSQL on 127.0.0.1:5432 (database ``test``, trust auth) and Redis on
127.0.0.1:6379; runs in ``.venv`` (FastAPI, uvicorn; FastAPI Users is not needed).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.metadata
import importlib.util
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _burst_server
import httpx2
import load_middleware
from fastapi import Body, Depends, FastAPI, Request
from load_middleware import HOST

from asgi_kit import RedisSessionDatabase, SQLAlchemySessionDatabase
from fastapi_users.extensions.session_manager import SessionManager

HERE = Path(__file__).resolve().parent
POSTGRES_URL = "postgresql://127.0.0.1:5432/test"
REDIS_URL = "redis://127.0.0.1:6379/0"
STORES = ("postgres", "redis")
#: What the server's ``app_factory`` reads: ``postgres:<table>`` or ``redis:<key prefix>``.
STORE_ENV = "ASGI_KIT_BURST_STORE"
SECRET_ENV = "ASGI_KIT_BURST_REFRESH_SECRET"
#: Seconds any one request may take (a bound, so a stuck server ends the run).
REQUEST_TIMEOUT = 120.0


# --- the server side ---------------------------------------------------------------


def open_store(spec: str) -> SQLAlchemySessionDatabase | RedisSessionDatabase:
    """The store ``spec`` (``STORE_ENV``'s value) names."""
    kind, _, name = spec.partition(":")
    if kind == "postgres":
        return SQLAlchemySessionDatabase(POSTGRES_URL, table_name=name)
    return RedisSessionDatabase(REDIS_URL, key_prefix=name)


def app_factory() -> FastAPI:
    """uvicorn ``--factory`` target: the benchmark app on the store ``STORE_ENV`` names."""
    store = open_store(os.environ[STORE_ENV])
    manager = SessionManager(
        session_db=store, access_token_lifetime=300, refresh_secret=os.environ[SECRET_ENV]
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await store.aclose()

    app = FastAPI(lifespan=lifespan)
    app.include_router(manager.router, prefix="/auth/sessions")

    @app.post("/login")
    async def login(request: Request, user_id: Annotated[uuid.UUID, Body(embed=True)]) -> Any:
        session = await manager.login(request, user_id)
        return {"access_token": session.token, "refresh_token": session.refresh_token}

    # What _burst_server.wait_ready asks: 401 without a token. (A dependency list, not a
    # parameter: under postponed annotations FastAPI cannot see a local Annotated alias.)
    @app.get("/users/me", dependencies=[Depends(manager.current_session)])
    async def me() -> Any:
        return {"authenticated": True}

    return app


@contextlib.contextmanager
def prepared_store(kind: str) -> Iterator[str]:
    """Yield the spec of a new, empty store of ``kind``; drop its table or keys afterwards."""
    name = f"burst_refresh_{uuid.uuid4().hex[:12]}"
    spec = f"postgres:{name}" if kind == "postgres" else f"redis:bench:{name}:"
    store = open_store(spec)

    async def create() -> None:
        if isinstance(store, SQLAlchemySessionDatabase):
            await store.create_table()
        await store.aclose()

    async def remove() -> None:
        if isinstance(store, SQLAlchemySessionDatabase):
            await store.drop_table()
        else:
            await store.clear()
        await store.aclose()

    asyncio.run(create())
    try:
        yield spec
    finally:
        asyncio.run(remove())


@contextlib.contextmanager
def serving(spec: str, failures: Counter[str]) -> Iterator[int]:
    """Serve ``app_factory`` on ``spec`` on a free port of ``HOST``; yield the port.

    The server's log goes to a file; the exceptions its tracebacks end with are counted
    into ``failures`` once it has stopped.
    """
    with tempfile.TemporaryDirectory(prefix="asgi-kit-burst-refresh-") as tmp:
        log_path = Path(tmp) / "server.log"
        port = load_middleware.free_port()
        command = [
            sys.executable, "-m", "uvicorn", "burst_refresh:app_factory", "--factory",
            "--app-dir", str(HERE), "--host", HOST, "--port", str(port),
            "--log-level", "warning", "--no-access-log",
        ]  # fmt: skip
        env = {**os.environ, STORE_ENV: spec, SECRET_ENV: secrets.token_urlsafe(32)}
        with log_path.open("wb") as log:
            proc = subprocess.Popen(command, cwd=tmp, env=env, stdout=log, stderr=log)
        try:
            _burst_server.wait_ready(proc, port)
            yield port
        finally:
            load_middleware.stop_server(proc)
            failures.update(_burst_server.EXCEPTION.findall(log_path.read_text(errors="replace")))


# --- the client side ---------------------------------------------------------------


@dataclass
class Burst:
    """What one burst of simultaneous requests did."""

    name: str
    #: Answers by status; 0 for a request that got no answer.
    statuses: Counter[int]
    latencies_ms: list[float]
    seconds: float

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500)

    def cells(self) -> str:
        """Statuses, p50, p99, max, wall (Markdown cells)."""
        return " | ".join(
            [
                ", ".join(f"{s or 'no answer'}: {n}" for s, n in sorted(self.statuses.items())),
                *(f"{v:,.1f}" for v in percentiles(self.latencies_ms)),
                f"{self.seconds * 1000:,.0f}",
            ]
        )


def percentiles(latencies: list[float]) -> tuple[float, float, float]:
    """p50, p99 and max."""
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return cuts[49], cuts[98], max(latencies)


async def fire(
    name: str, requests: Sequence[Awaitable[httpx2.Response]]
) -> tuple[Burst, list[httpx2.Response | None]]:
    """Send ``requests`` all at once; time each from send to answer, and the whole."""

    async def one(request: Awaitable[httpx2.Response]) -> tuple[httpx2.Response | None, float]:
        began = time.perf_counter()
        try:
            response: httpx2.Response | None = await request
        except httpx2.HTTPError as exc:
            print(f"  {name}: request failed: {exc!r}", file=sys.stderr)
            response = None
        return response, (time.perf_counter() - began) * 1000

    started = time.perf_counter()
    done = await asyncio.gather(*map(one, requests))
    seconds = time.perf_counter() - started
    statuses = Counter(0 if r is None else r.status_code for r, _ in done)
    for response, _ in done:
        if response is not None and response.status_code >= 500:
            print(f"  {name}: {response.status_code} {response.text[:100]}", file=sys.stderr)
    return Burst(name, statuses, [ms for _, ms in done], seconds), [r for r, _ in done]


@dataclass
class StoreRun:
    """Everything one store's server did."""

    store: str
    logins: Burst | None = None
    reads: list[Burst] = field(default_factory=list)
    refreshes: list[Burst] = field(default_factory=list)
    same_token: Burst | None = None
    #: Distinct (access, refresh) pairs the same-token burst's 200s returned.
    same_pairs: int = 0
    checks: dict[str, bool] = field(default_factory=dict)
    failures: Counter[str] = field(default_factory=Counter)

    def check(self, name: str, ok: bool) -> None:
        """Record a check; one that failed once stays failed."""
        self.checks[name] = self.checks.get(name, True) and ok

    def bursts(self) -> list[Burst]:
        every = [self.logins, *self.reads, *self.refreshes, self.same_token]
        return [b for b in every if b is not None]


def pair_of(response: httpx2.Response | None) -> tuple[str, str] | None:
    """(access token, refresh token) of a 200 from ``/login`` or ``/refresh``."""
    if response is None or response.status_code != 200:
        return None
    body = response.json()
    return body["access_token"], body["refresh_token"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def run_bursts(port: int, run: StoreRun, n: int, rounds: int, same: int) -> None:
    """Logins, the rounds of read and refresh bursts, the checks and the same-token burst."""
    limits = httpx2.Limits(max_connections=n, max_keepalive_connections=n)
    async with httpx2.AsyncClient(
        base_url=f"http://{HOST}:{port}", limits=limits, timeout=REQUEST_TIMEOUT
    ) as http:
        # N keep-alive connections first, so the bursts time requests, not TCP handshakes.
        await asyncio.gather(*(http.get("/users/me") for _ in range(n)))
        logins = [http.post("/login", json={"user_id": str(uuid.uuid4())}) for _ in range(n)]
        run.logins, answers = await fire("login", logins)
        pairs = [pair_of(a) for a in answers]
        first_access = [p[0] for p in pairs if p is not None]
        run.check("every login gave a pair", len(first_access) == n)
        # One untimed round first: the server's first read and first refresh open its
        # connections, which would otherwise be timed in the first round only.
        await read_burst(http, run, pairs, record=False)
        await refresh_burst(http, run, pairs, record=False)
        steps = (read_burst, refresh_burst)
        for number in range(rounds):  # ABBA: read, refresh; refresh, read; ...
            for step in steps if number % 2 == 0 else steps[::-1]:
                await step(http, run, pairs)
        stale = await asyncio.gather(
            *(http.get("/users/me", headers=bearer(a)) for a in first_access)
        )
        refused = all(r.status_code == 401 for r in stale)
        run.check("every login's access token, rotated out, refused (401)", refused)
        await same_token_burst(http, run, same)


Pairs = list[tuple[str, str] | None]


async def read_burst(
    http: httpx2.AsyncClient, run: StoreRun, pairs: Pairs, *, record: bool = True
) -> None:
    """One ``GET /auth/sessions`` per session at once; each must list its one session."""
    live = [p for p in pairs if p is not None]
    gets = [http.get("/auth/sessions", headers=bearer(access)) for access, _ in live]
    burst, answers = await fire(f"read {len(run.reads) + 1}", gets)
    if record:
        run.reads.append(burst)
    listed = [a is not None and a.status_code == 200 and len(a.json()) == 1 for a in answers]
    run.check("every read listed its one session", all(listed) and len(live) == len(pairs))


async def refresh_burst(
    http: httpx2.AsyncClient, run: StoreRun, pairs: Pairs, *, record: bool = True
) -> None:
    """One ``POST /auth/sessions/refresh`` per session at once; ``pairs`` become the answers'."""
    tokens = [p[1] for p in pairs if p is not None]
    posts = [http.post("/auth/sessions/refresh", json={"refresh_token": t}) for t in tokens]
    burst, answers = await fire(f"refresh {len(run.refreshes) + 1}", posts)
    if record:
        run.refreshes.append(burst)
    fresh = [pair_of(a) for a in answers]
    issued = {t for p in fresh if p is not None for t in p}
    held = {t for p in pairs if p is not None for t in p}
    ok = None not in fresh and len(issued) == 2 * len(pairs) and not issued & held
    run.check("every refresh gave a new pair", ok)
    pairs[:] = fresh


async def same_token_burst(http: httpx2.AsyncClient, run: StoreRun, same: int) -> None:
    """``same`` simultaneous refreshes of one session's one refresh token, then checks."""
    login = pair_of(await http.post("/login", json={"user_id": str(uuid.uuid4())}))
    assert login is not None, "the same-token burst's login failed"
    body = {"refresh_token": login[1]}
    posts = [http.post("/auth/sessions/refresh", json=body) for _ in range(same)]
    run.same_token, answers = await fire("same token", posts)
    returned = {pair_of(a) for a in answers}
    run.same_pairs = len(returned - {None})
    run.check("same token: every answer 200, one pair", None not in returned and len(returned) == 1)
    if run.same_pairs != 1:
        return
    access, refresh = next(p for p in returned if p is not None)
    listed = await http.get("/auth/sessions", headers=bearer(access))
    alive = listed.status_code == 200 and len(listed.json()) == 1
    run.check("same token: session alive after (GET /auth/sessions)", alive)
    again = await http.post("/auth/sessions/refresh", json={"refresh_token": refresh})
    run.check("same token: the returned refresh token refreshes (200)", again.status_code == 200)


def run_store(store: str, n: int, rounds: int, same: int) -> StoreRun:
    """Every burst against a fresh server on a fresh store of kind ``store``."""
    run = StoreRun(store)
    with prepared_store(store) as spec, serving(spec, run.failures) as port:
        asyncio.run(run_bursts(port, run, n, rounds, same))
    return run


# --- the report --------------------------------------------------------------------


def describe() -> str:
    """One line saying what ran."""
    versions = ", ".join(
        f"{name} {importlib.metadata.version(name)}"
        for name in ("fastapi", "uvicorn", "sqlalchemy", "asyncpg", "redis", "httpx2")
    )
    fast = [m for m in ("httptools", "uvloop") if importlib.util.find_spec(m) is not None]
    stack = ", ".join(fast) if fast else "h11 + asyncio"
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    python = sys.version.split()[0]
    return (
        f"uvicorn 1 worker, {stack}; {versions}; Python {python}; {os.cpu_count()} CPUs, "
        f"load average {load} at the start"
    )


def burst_table(runs: list[StoreRun]) -> str:
    lines = [
        "| store | burst | statuses (status: count) | p50 ms | p99 ms | max ms | wall ms |",
        "|---|---|---|--:|--:|--:|--:|",
    ]
    for run in runs:
        for burst in [run.logins, *run.reads, *run.refreshes]:  # same token: a table of its own
            if burst is not None:
                lines.append(f"| {run.store} | {burst.name} | {burst.cells()} |")
    return "\n".join(lines)


def ratio_table(runs: list[StoreRun]) -> str:
    """Refresh / read per store: latencies pooled over the rounds, wall times' medians."""
    lines = [
        "| store | refresh / read p50 | p99 | max | wall | refresh p50 / p99 / max ms "
        "| read p50 / p99 / max ms | refresh wall / read wall ms |",
        "|---|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for run in runs:
        refresh = (*pooled(run.refreshes), median_wall_ms(run.refreshes))
        read = (*pooled(run.reads), median_wall_ms(run.reads))
        ratios = " | ".join(f"{a / b:.2f}x" for a, b in zip(refresh, read, strict=True))
        refresh_ms = " / ".join(f"{v:,.0f}" for v in refresh[:3])
        read_ms = " / ".join(f"{v:,.0f}" for v in read[:3])
        walls = f"{refresh[3]:,.0f} / {read[3]:,.0f}"
        lines.append(f"| {run.store} | {ratios} | {refresh_ms} | {read_ms} | {walls} |")
    return "\n".join(lines)


def pooled(bursts: list[Burst]) -> tuple[float, float, float]:
    """p50, p99 and max of every latency of ``bursts``."""
    return percentiles([ms for burst in bursts for ms in burst.latencies_ms])


def median_wall_ms(bursts: list[Burst]) -> float:
    return statistics.median(burst.seconds * 1000 for burst in bursts)


def same_token_table(runs: list[StoreRun], same: int) -> str:
    lines = [
        f"| store | {same} refreshes of one token: status: count | distinct pairs returned "
        "| p50 ms | p99 ms | max ms | wall ms |",
        "|---|---|--:|--:|--:|--:|--:|",
    ]
    for run in runs:
        if run.same_token is not None:
            cells = run.same_token.cells().split(" | ", 1)
            lines.append(f"| {run.store} | {cells[0]} | {run.same_pairs} | {cells[1]} |")
    return "\n".join(lines)


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def main() -> None:
    """Entry point: SIGTERM unwinds like Ctrl-C, so the server and the store are removed."""
    signal.signal(signal.SIGTERM, _terminate)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 round instead of 4")
    parser.add_argument("--sessions", type=int, default=200, help="N: sessions, burst size")
    parser.add_argument("--same", type=int, default=50, help="M: refreshes of one token")
    args = parser.parse_args()
    rounds = 1 if args.quick else 4
    print(describe(), "\n", flush=True)
    runs = []
    for store in STORES:
        print(f"{store}: {args.sessions} sessions, {rounds} round(s) ...", file=sys.stderr)
        runs.append(run_store(store, args.sessions, rounds, args.same))
    print(f"## Bursts of {args.sessions} at once ({rounds} round(s) of read and refresh, ABBA)\n")
    print(burst_table(runs), "", "## Refresh / read (the same run)\n", ratio_table(runs), sep="\n")
    print(f"\n## One refresh token presented {args.same} times at once\n")
    print(same_token_table(runs, args.same))
    failed = False
    for run in runs:
        for check, ok in run.checks.items():
            print(f"{run.store}: {check}: {'yes' if ok else 'NO'}")
            failed |= not ok
        errors = sum(b.server_errors for b in run.bursts())
        if errors:
            failed = True
            print(f"\n!!! {run.store}: {errors} answers were 5xx !!!")
        for failure, times in run.failures.most_common():
            print(f"{run.store}: server raised {failure} x {times}")
    with contextlib.suppress(BrokenPipeError):
        print("\nno 5xx, every check passed" if not failed else "\nFAILED (see above)")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
