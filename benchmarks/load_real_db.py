"""Loopback load test on real databases: the docs' FastAPI Users app vs other backends.

Reads the complete app the docs show (``examples/fastapi_users_app.py``, the code users
copy, never a stored copy) at run time and makes variants of it by text substitution, each
asserted to match, so a change to the app fails loudly (the variant names keep ``readme``,
where the app used to live, so earlier results compare):

- ``readme``: the app verbatim (asgi-kit sessions in the SQL store, through the middleware);
- ``db-sync`` / ``db-async``: FastAPI Users' ``DatabaseStrategy`` (an ``AccessToken``
  table), its strategy dependency a plain ``def`` (FastAPI Users' docs) or an ``async def``;
- ``jwt``: FastAPI Users' ``JWTStrategy`` (the user is still read from the database);
- ``stub``: the README app with the in-memory store, a session look-up that costs nothing
  (the floor: everything else the README app does per request);
- ``redis`` (PostgreSQL only): the README app with the Redis store.

The three FastAPI Users strategies run without ``BearerAuthMiddleware`` (it would look
their tokens up in the session store). On each database (PostgreSQL: a fresh database,
dropped at the end; SQLite: a temporary file) every variant runs in its own uvicorn
process (one worker, httptools + uvloop, 127.0.0.1), through ``_readme_app.py``, which
counts the new connections of the users' engine and of the SQL session store's engine
(SQLAlchemy's pool ``connect`` event). The users are registered once per database; each
variant logs each of them in through ``POST /auth/login``; every token is checked
(``GET /users/me`` answers 200 with its user's e-mail; an unknown token 401).

Load: ``GET /users/me`` with wrk (``-t1``, 32 connections; else the asyncio client of
``load_middleware.py``), cycling over the users' tokens, after a warm-up run per server.
A round is V1..Vn then Vn..V1, so each variant runs twice per round (4 runs by default).
Per run: requests/s, p50/p99, the server's CPU µs per request (/proc), non-2xx answers
and new connections; per variant the median over its runs; then throughput ratios.

    .venv/bin/python benchmarks/load_real_db.py           # 2 rounds x 10 s per run, 200 users
    .venv/bin/python benchmarks/load_real_db.py --quick   # 1 round x 3 s, 32 users

Like ``load_fastapi_users.py`` it runs itself in ``.venv-fastapi-users`` (the wheel of the
current sources, FastAPI Users 15, uvicorn's standard stack); the servers import that
wheel, so edits to the working tree during a run do not change what is measured.
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import contextlib
import dataclasses
import functools
import http.client
import importlib
import importlib.metadata
import importlib.util
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _fastapi_users_env

try:
    import _readme_app
    import load_middleware
    from _tools import ensure_tool
    from load_middleware import HOST, Options, Result

    # What the generated variants import beyond the README: only in .venv-fastapi-users.
    importlib.import_module("fastapi_users_db_sqlalchemy.access_token")
except ImportError:
    if __name__ != "__main__":
        raise
    _fastapi_users_env.run_in_environment(__file__)

HERE = Path(__file__).resolve().parent
#: The docs' complete FastAPI Users app (docs/tutorial/fastapi-users.md shows it verbatim).
APP = HERE.parent / "examples" / "fastapi_users_app.py"
POSTGRES_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"
REDIS_URL = "redis://127.0.0.1:6379/0"
LOAD_PATH = "/users/me"
PASSWORD = "benchmark-password-0123456789"
#: Concurrent registrations and logins: each hashes Argon2 (~0.1 s of CPU).
SETUP_CONCURRENCY = 8
DATABASES = {"postgres": "PostgreSQL", "sqlite": "SQLite"}

#: Variant name -> what it is, in ABBA's V1..Vn order.
LABELS = {
    "readme": "README app (asgi-kit, SQL session store)",
    "db-sync": "FastAPI Users DatabaseStrategy, `def` dependency",
    "db-async": "FastAPI Users DatabaseStrategy, `async def` dependency",
    "jwt": "FastAPI Users JWTStrategy",
    "stub": "README app, in-memory store (floor)",
    "redis": "README app, Redis store",
}
#: (numerator, denominator) of the throughput ratios printed per database.
RATIOS = (
    ("readme", "db-async"),
    ("readme", "db-sync"),
    ("readme", "jwt"),
    ("readme", "stub"),
    ("stub", "db-async"),
    ("redis", "db-async"),
)

# FastAPI Users' database strategy as its docs write it (SQLAlchemy adapter, UUID ids).
ACCESS_TOKEN_MODEL = """

from fastapi_users.authentication.strategy.db import AccessTokenDatabase, DatabaseStrategy
from fastapi_users_db_sqlalchemy.access_token import (
    SQLAlchemyAccessTokenDatabase,
    SQLAlchemyBaseAccessTokenTableUUID,
)


class AccessToken(SQLAlchemyBaseAccessTokenTableUUID, Base):
    pass
"""
DATABASE_STRATEGY = """

async def get_access_token_db(
    session: AsyncSession = Depends(get_async_session),
):
    yield SQLAlchemyAccessTokenDatabase(session, AccessToken)


{def_} get_database_strategy(
    access_token_db: AccessTokenDatabase[AccessToken] = Depends(get_access_token_db),
) -> DatabaseStrategy:
    return DatabaseStrategy(access_token_db, lifetime_seconds=3600)
"""
JWT_STRATEGY = """

from fastapi_users.authentication import JWTStrategy


def get_jwt_strategy() -> JWTStrategy:
    return JWTStrategy(secret=SECRET, lifetime_seconds=3600)
"""
MEMORY_STORE = """\
from asgi_kit import InMemorySessionDatabase
session_store = InMemorySessionDatabase()
"""
# session_database_from_url(REDIS_URL) builds this store; the prefix keeps our keys apart.
REDIS_STORE = """\
from asgi_kit import RedisSessionDatabase
session_store = RedisSessionDatabase({url!r}, key_prefix={prefix!r})
"""


# --- the README's app and its variants ---------------------------------------------


class ReadmeChangedError(SystemExit):
    """The docs' FastAPI Users app no longer has what a variant substitutes."""

    def __init__(self, message: str) -> None:
        super().__init__(f"examples/fastapi_users_app.py changed: {message}")


def readme_app() -> str:
    """The docs' FastAPI Users app (``examples/fastapi_users_app.py``), after its docstring."""
    return APP.read_text().split('"""', 2)[2].lstrip("\n")


def replace_text(source: str, old: str, new: str, count: int) -> str:
    """``source`` with ``old`` replaced by ``new``; it must occur exactly ``count`` times."""
    found = source.count(old)
    if found != count:
        raise ReadmeChangedError(f"{old!r} occurs {found} times, expected {count}")
    return source.replace(old, new)


def edit_statement(source: str, prefix: str, edit: Callable[[str], str]) -> str:
    """``source`` with ``edit`` applied to its one top-level statement whose first line
    starts with ``prefix`` (the whole statement, however many lines it spans)."""
    lines = source.splitlines(keepends=True)
    nodes = [n for n in ast.parse(source).body if lines[n.lineno - 1].startswith(prefix)]
    if len(nodes) != 1:
        raise ReadmeChangedError(f"{len(nodes)} top-level statements start {prefix!r}, not 1")
    start, end = nodes[0].lineno - 1, nodes[0].end_lineno
    return "".join([*lines[:start], edit("".join(lines[start:end])), *lines[end:]])


def with_strategy(source: str, strategy: str, model: str, dependencies: str) -> str:
    """The app with a FastAPI Users strategy for both backends, without the middleware."""
    source = replace_text(source, "get_strategy=manager.strategy", f"get_strategy={strategy}", 2)
    # Behind the middleware, each FastAPI Users token would be looked up in the session store.
    source = edit_statement(source, "app.add_middleware(BearerAuthMiddleware,", lambda _: "")
    # The model must be on Base before the lifespan's create_all; the dependencies need
    # get_async_session, so they follow it.
    source = edit_statement(source, "class UserUpdate(", lambda s: s + model)
    return edit_statement(source, "async def get_async_session(", lambda s: s + dependencies)


def with_store(source: str, store: str) -> str:
    """The app with its ``session_store = ...`` statement replaced by ``store``."""
    return edit_statement(source, "session_store = ", lambda _: store)


def variant_sources(readme: str, redis_prefix: str) -> dict[str, str]:
    """Every variant's module source, keyed by variant name (in ``LABELS`` order)."""

    def database(def_: str) -> str:
        dependencies = DATABASE_STRATEGY.format(def_=def_)
        return with_strategy(readme, "get_database_strategy", ACCESS_TOKEN_MODEL, dependencies)

    sources = {
        "readme": readme,
        "db-sync": database("def"),
        "db-async": database("async def"),
        "jwt": with_strategy(readme, "get_jwt_strategy", "", JWT_STRATEGY),
        "stub": with_store(readme, MEMORY_STORE),
        "redis": with_store(readme, REDIS_STORE.format(url=REDIS_URL, prefix=redis_prefix)),
    }
    assert list(sources) == list(LABELS)
    return sources


def module_name(variant: str) -> str:
    """The generated module of ``variant`` (``db-sync`` -> ``bench_app_db_sync``)."""
    return "bench_app_" + variant.replace("-", "_")


def write_variants(sources: dict[str, str], directory: Path) -> None:
    """Write each variant as ``<module_name>.py`` into ``directory`` (compiled first)."""
    for variant, source in sources.items():
        path = directory / f"{module_name(variant)}.py"
        compile(source, str(path), "exec")  # a broken substitution fails here, not in uvicorn
        path.write_text(source)


# --- databases and servers -----------------------------------------------------------


async def postgres_admin(statement: str) -> str:
    """Run ``statement`` on the ``test`` database; return the first value it yields, as text."""
    import asyncpg  # type: ignore[import-untyped]  # (asyncpg ships no type hints)

    connection = await asyncpg.connect(POSTGRES_ADMIN_URL)
    try:
        return str(await connection.fetchval(statement))
    finally:
        await connection.close()


@contextlib.contextmanager
def database(kind: str, directory: Path) -> Iterator[str]:
    """Yield the app's ``DATABASE_URL`` for a fresh database of ``kind``; drop it after."""
    if kind == "sqlite":  # the file goes with the temporary directory
        yield f"sqlite+aiosqlite:///{directory / 'bench.sqlite3'}"
        return
    name = f"asgi_kit_bench_{os.getpid()}"
    asyncio.run(postgres_admin(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    finally:
        asyncio.run(postgres_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@dataclass(frozen=True)
class Server:
    """A running variant."""

    port: int
    pid: int


def start_server(variant: str, url: str, directory: Path) -> tuple[subprocess.Popen[bytes], int]:
    """Start uvicorn (one worker, standard stack) serving ``variant``; return it and its port."""
    port = load_middleware.free_port()
    command = [
        sys.executable, "-m", "uvicorn", "_readme_app:counted_app", "--factory",
        "--app-dir", str(HERE), "--host", HOST, "--port", str(port),
        "--http", "httptools", "--loop", "uvloop", "--log-level", "warning", "--no-access-log",
    ]  # fmt: skip
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "PYTHONPATH": str(directory),
        _readme_app.APP_ENV: module_name(variant),
    }
    # cwd: nothing of the repository on sys.path, so the servers import the installed wheel.
    return subprocess.Popen(command, env=env, cwd=directory), port


def wait_ready(proc: subprocess.Popen[bytes], port: int, timeout: float = 90) -> None:
    """Wait until the server answers its counts route; fail if it dies or takes too long."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server on port {port} exited with {proc.returncode}")
        with contextlib.suppress(OSError):
            if call(port, "GET", _readme_app.COUNTS_PATH)[0] == 200:
                return
        time.sleep(0.2)
    raise SystemExit(f"server on port {port} not ready after {timeout:.0f} s")


@contextlib.contextmanager
def servers(variants: list[str], url: str, directory: Path) -> Iterator[dict[str, Server]]:
    """Run one server per variant; yield ``{variant: Server}``; always stop them all.

    Started one after the other: each lifespan's ``create_all`` must not race another's.
    """
    procs: list[subprocess.Popen[bytes]] = []
    running: dict[str, Server] = {}
    try:
        for variant in variants:
            proc, port = start_server(variant, url, directory)
            procs.append(proc)
            wait_ready(proc, port)
            running[variant] = Server(port, proc.pid)
        yield running
    finally:
        for proc in procs:
            load_middleware.stop_server(proc)


# --- HTTP set-up: users, tokens, checks ------------------------------------------------


def call(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """One request on a new connection: (status, decoded JSON body or None)."""
    conn = http.client.HTTPConnection(HOST, port, timeout=60)
    try:
        conn.request(method, path, body, headers or {})
        response = conn.getresponse()
        data = response.read()
    finally:
        conn.close()
    return response.status, json.loads(data) if data else None


def me(port: int, token: str) -> tuple[int, Any]:
    """``GET /users/me`` with ``token`` as the bearer token."""
    return call(port, "GET", LOAD_PATH, headers={"Authorization": f"Bearer {token}"})


def register(port: int, email: str) -> None:
    """``POST /auth/register``; the user must be created (201)."""
    body = json.dumps({"email": email, "password": PASSWORD}).encode()
    headers = {"Content-Type": "application/json"}
    status, answer = call(port, "POST", "/auth/register", body, headers)
    if status != 201:
        raise SystemExit(f"registering {email} answered {status}: {answer}")


def log_in(port: int, email: str) -> str:
    """``POST /auth/login`` (form); return the access token."""
    body = urllib.parse.urlencode({"username": email, "password": PASSWORD}).encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    status, answer = call(port, "POST", "/auth/login", body, headers)
    if status != 200:
        raise SystemExit(f"logging {email} in on port {port} answered {status}: {answer}")
    return str(answer["access_token"])


def set_up_users(running: dict[str, Server], count: int) -> dict[str, list[str]]:
    """Register ``count`` users (spread over the servers), log each in on every server.

    Returns each variant's tokens, checked (``check``); each server then releases the
    connections its logins opened.
    """
    tokens: dict[str, list[str]] = {}
    emails = [f"bench{i}@example.com" for i in range(count)]
    ports = [server.port for server in running.values()]
    pool = ThreadPoolExecutor(SETUP_CONCURRENCY)
    try:
        list(pool.map(register, [ports[i % len(ports)] for i in range(count)], emails))
        for variant, server in running.items():
            tokens[variant] = list(pool.map(functools.partial(log_in, server.port), emails))
            check(variant, server, emails, tokens[variant])
            release(server)
    finally:  # on a failure or Ctrl-C, the queued logins are dropped, not run first
        pool.shutdown(cancel_futures=True)
    return tokens


def release(server: Server) -> None:
    """Have the server close every database connection it holds (they reopen on demand).

    Six apps' pools at once would exceed PostgreSQL's default ``max_connections`` (100):
    only the server under load holds its connections.
    """
    status, answer = call(server.port, "POST", _readme_app.RELEASE_PATH)
    if status != 204:
        raise SystemExit(f"releasing the connections of port {server.port}: {status} {answer}")


def check(variant: str, server: Server, emails: list[str], tokens: list[str]) -> None:
    """Every token answers 200 with its user's e-mail; an unknown token answers 401."""
    for email, token in zip(emails, tokens, strict=True):
        status, answer = me(server.port, token)
        if status != 200 or answer.get("email") != email:
            raise SystemExit(f"{variant}: GET {LOAD_PATH} as {email} answered {status}: {answer}")
    status, answer = me(server.port, "not-a-valid-token")
    if status != 401:
        raise SystemExit(f"{variant}: an unknown token answered {status}: {answer}")


# --- load runs -------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """One load run, with the connections opened during it (None: nothing to count)."""

    result: Result
    #: New connections of the users' engine.
    users: int | None
    #: New connections of the SQL session store's engine (None: no SQL session store).
    sessions: int | None
    #: Connections Redis received meanwhile, from anyone (the redis variant only).
    redis: int | None


def connection_counts(port: int) -> tuple[int | None, int | None]:
    """(users, sessions): connections the server's engines have opened so far."""
    status, answer = call(port, "GET", _readme_app.COUNTS_PATH)
    if status != 200:
        raise SystemExit(f"{_readme_app.COUNTS_PATH} on port {port} answered {status}")
    return answer["users"], answer["sessions"]


def delta(before: int | None, after: int | None) -> int | None:
    """``after - before``, or None when either is unknown."""
    return None if before is None or after is None else after - before


def measure(
    variant: str,
    server: Server,
    tokens: list[str],
    options: Options,
    redis_count: Callable[[], int] | None,
) -> Run:
    """One load run, with the server's CPU time and new connections over it."""
    users, sessions = connection_counts(server.port)
    redis = redis_count() if redis_count else None
    target = (server.port, server.pid)
    result = load_middleware.run_load(variant, target, tokens, options, LOAD_PATH)
    redis_after = redis_count() if redis_count else None
    users_after, sessions_after = connection_counts(server.port)
    return Run(
        result,
        delta(users, users_after),
        delta(sessions, sessions_after),
        delta(redis, redis_after),
    )


# --- one database ----------------------------------------------------------------------


@dataclass(frozen=True)
class Report:
    """What ran on one database."""

    kind: str
    runs: list[Run]
    #: The first warm-up run of each variant (not in ``runs``), for its new connections.
    warm_ups: dict[str, Run]


def redis_available() -> bool:
    """True when Redis answers on 127.0.0.1:6379."""
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=2).close()
    except OSError:
        print("Redis does not answer on 127.0.0.1:6379: no redis variant", file=sys.stderr)
        return False
    return True


@contextlib.contextmanager
def redis_connections(prefix: str) -> Iterator[Callable[[], int]]:
    """Yield a reader of Redis's ``total_connections_received``; then delete our keys."""
    import redis  # (only when Redis runs: the other variants do without it)

    client = redis.Redis.from_url(REDIS_URL)
    try:
        yield lambda: int(client.info("stats")["total_connections_received"])
    finally:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()


def run_database(
    kind: str, directory: Path, options: Options, with_redis: bool, redis_prefix: str
) -> Report:
    """A fresh database of ``kind``; every variant on it (redis on PostgreSQL only)."""
    with_redis = with_redis and kind == "postgres"
    variants = [v for v in LABELS if v != "redis" or with_redis]
    with contextlib.ExitStack() as stack:
        # Unwound in reverse: servers stopped, then the database dropped, then Redis cleaned.
        redis_count = stack.enter_context(redis_connections(redis_prefix)) if with_redis else None
        url = stack.enter_context(database(kind, directory))
        return bench_database(kind, url, directory, variants, options, redis_count)


def bench_database(
    kind: str,
    url: str,
    directory: Path,
    variants: list[str],
    options: Options,
    redis_count: Callable[[], int] | None,
) -> Report:
    """Start the servers, set up users and tokens, check, warm up, run in ABBA order."""
    with servers(variants, url, directory) as running:
        print(f"{kind}: servers up; {options.sessions} users log in on each", file=sys.stderr)
        tokens = set_up_users(running, options.sessions)

        def one(variant: str, options: Options) -> Run:
            counter = redis_count if variant == "redis" else None
            return measure(variant, running[variant], tokens[variant], options, counter)

        # Before each run: the server opens its pools again (released after the last run).
        warm_up = dataclasses.replace(options, duration=min(options.duration, 3.0))
        warm_ups: dict[str, Run] = {}
        runs = []
        # abba(): a round is V1..Vn or Vn..V1; ours is both, so each variant runs twice.
        for variant in load_middleware.abba(2 * options.rounds, [(v, v) for v in running]):
            warm = one(variant, warm_up)
            warm_ups.setdefault(variant, warm)  # the first of its warm-ups is reported
            runs.append(one(variant, options))
            release(running[variant])
            print(f"{kind} {variant}: {runs[-1].result.rps:,.0f} requests/s", file=sys.stderr)
    return Report(kind, runs, warm_ups)


# --- the report ------------------------------------------------------------------------

PACKAGES = (
    "asgi-kit", "fastapi", "fastapi-users", "fastapi-users-db-sqlalchemy", "sqlalchemy",
    "asyncpg", "aiosqlite", "redis", "uvicorn", "uvloop", "httptools",
)  # fmt: skip


def _num(value: float | None, spec: str = ".0f") -> str:
    return "n/a" if value is None else format(value, spec)


def median(values: Sequence[float | None]) -> float | None:
    """The median, or None when any value is unknown."""
    known = [v for v in values if v is not None]
    return statistics.median(known) if known and len(known) == len(values) else None


def store_connections(runs: list[Run]) -> str:
    """New connections of the session store (median): its SQL engine's, or Redis's."""
    if any(run.redis is not None for run in runs):
        return f"{_num(median([run.redis for run in runs]), 'g')} (Redis, all clients)"
    return _num(median([run.sessions for run in runs]), "g")


def format_runs(report: Report) -> str:
    """Markdown table of every run of one database, in the order they ran."""
    lines = [
        "| run | variant | requests/s | p50 ms | p99 ms | server CPU µs/req | non-2xx + errors "
        "| new conns: users | new conns: session store |",
        "|--:|---|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for number, run in enumerate(report.runs, 1):
        r = run.result
        lines.append(
            f"| {number} | {r.target} | {r.rps:,.0f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} "
            f"| {_num(r.cpu_us)} | {r.errors} | {_num(run.users)} | {store_connections([run])} |"
        )
    return "\n".join(lines)


def runs_of(report: Report) -> dict[str, list[Run]]:
    """The runs of each variant, in ``LABELS`` order."""
    return {
        variant: [run for run in report.runs if run.result.target == variant]
        for variant in LABELS
        if variant in report.warm_ups
    }


def format_summary(report: Report) -> str:
    """Markdown table per variant: medians over its runs, errors summed, warm-up connections."""
    lines = [
        "| variant | what | requests/s | p50 ms | p99 ms | server CPU µs/req | non-2xx + errors "
        "| new conns/run: users | new conns/run: session store | warm-up new conns: users; store |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for variant, runs in runs_of(report).items():
        results = [run.result for run in runs]
        warm = report.warm_ups[variant]
        lines.append(
            f"| {variant} | {LABELS[variant]} "
            f"| {statistics.median(r.rps for r in results):,.0f} "
            f"| {statistics.median(r.p50_ms for r in results):.2f} "
            f"| {statistics.median(r.p99_ms for r in results):.2f} "
            f"| {_num(median([r.cpu_us for r in results]))} | {sum(r.errors for r in results)} "
            f"| {_num(median([run.users for run in runs]), 'g')} | {store_connections(runs)} "
            f"| {_num(warm.users)}; {store_connections([warm])} |"
        )
    return "\n".join(lines)


def format_ratios(report: Report) -> str:
    """Throughput ratios (medians of the runs' requests/s) and p99 readme vs db-async."""
    runs = runs_of(report)
    rps = {v: statistics.median(run.result.rps for run in rs) for v, rs in runs.items()}
    p99 = {v: statistics.median(run.result.p99_ms for run in rs) for v, rs in runs.items()}
    lines = [
        f"- throughput {a}/{b}: {rps[a] / rps[b]:.2f}" for a, b in RATIOS if {a, b} <= set(rps)
    ]
    a, b = "readme", "db-async"
    lines.append(f"- p99 {a} vs {b}: {p99[a]:.2f} ms vs {p99[b]:.2f} ms ({p99[a] / p99[b]:.2f}x)")
    return "\n".join(lines)


def format_report(report: Report) -> str:
    """One database's section: every run, the per-variant summary, the ratios."""
    return "\n".join([
        f"\n### {DATABASES[report.kind]}\n",
        "Every run (ABBA order):\n",
        format_runs(report),
        "\nPer variant (median over its runs; errors summed):\n",
        format_summary(report),
        "\nRatios (medians of requests/s):\n",
        format_ratios(report),
    ])  # fmt: skip


# --- what ran where --------------------------------------------------------------------


def output(*command: str) -> str:
    """A command's standard output, stripped ('' when it fails)."""
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=60)
    return done.stdout.strip()


def describe_machine(kinds: list[str], with_redis: bool) -> str:
    """CPUs, load, Python, package and server versions, the git state of the sources."""
    versions = []
    for name in PACKAGES:
        try:
            versions.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            versions.append(f"{name} (not installed)")
    servers = []
    if "postgres" in kinds:
        servers.append("PostgreSQL " + asyncio.run(postgres_admin("SHOW server_version")))
    if with_redis:
        servers.append("Redis " + output("redis-cli", "-u", REDIS_URL, "INFO", "server")
                       .split("redis_version:", 1)[-1].split()[0])  # fmt: skip
    repo = str(HERE.parent)
    untracked = output("git", "-C", repo, "ls-files", "--others", "--exclude-standard")
    return "\n".join([
        f"- machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} "
        f"{os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}; {platform.platform()}",
        f"- Python {platform.python_version()}; {', '.join(versions)}",
        f"- servers: {', '.join(servers) or 'none'}; "
        f"{output('wrk', '-v').split(' [', 1)[0] or 'no wrk'}",
        f"- sources: git {output('git', '-C', repo, 'rev-parse', '--short', 'HEAD')}, "
        f"{output('git', '-C', repo, 'diff', '--shortstat') or 'no changes'} to tracked files, "
        f"{len(untracked.splitlines())} untracked (the wheel in .venv-fastapi-users was "
        "built from them at start)",
    ])  # fmt: skip


def describe_plan(options: Options, kinds: list[str]) -> str:
    """One line saying what runs."""
    client = "wrk -t1" if options.client == "wrk" else "the Python asyncio client"
    return (
        f"- load: GET {LOAD_PATH}, {client}, {options.connections} connections, "
        f"{options.duration:g} s per run, {options.rounds} round(s) of V1..Vn, Vn..V1 "
        f"({2 * options.rounds} runs per variant) after a warm-up run; {options.sessions} "
        f"users and tokens cycled; uvicorn 1 worker per variant, httptools + uvloop; "
        f"databases: {', '.join(DATABASES[k] for k in kinds)}"
    )


def parse_args() -> tuple[Options, list[str]]:
    """Command-line options (``Options.sessions`` is the number of users) and databases."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 round x 3 s, 32 users")
    parser.add_argument("--duration", type=float, help="seconds per run (10; --quick: 3)")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, help="rounds of V1..Vn, Vn..V1 (2; --quick: 1)")
    parser.add_argument("--users", type=int, help="users, tokens per variant (200; --quick: 32)")
    parser.add_argument("--client", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument("--databases", default="postgres,sqlite", help="comma-separated")
    args = parser.parse_args()
    kinds = args.databases.split(",")
    if not kinds or not set(kinds) <= set(DATABASES):
        parser.error(f"--databases: a comma-separated list of {', '.join(DATABASES)}")
    client = args.client
    if client != "python":  # wrk when it is (or can be) installed; asked for, it must be
        client = "wrk" if ensure_tool("wrk", required=client == "wrk") else "python"
    quick: bool = args.quick
    duration = args.duration if args.duration is not None else 3.0 if quick else 10.0
    rounds = args.rounds if args.rounds is not None else 1 if quick else 2
    users = args.users if args.users is not None else 32 if quick else 200
    return Options(duration, args.connections, rounds, users, users, client), kinds


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def main() -> None:
    """Entry point: SIGTERM unwinds like Ctrl-C: servers stopped, database dropped, files gone."""
    signal.signal(signal.SIGTERM, _terminate)
    started = time.monotonic()
    options, kinds = parse_args()
    with_redis = "postgres" in kinds and redis_available()
    print(describe_machine(kinds, with_redis), describe_plan(options, kinds), sep="\n", flush=True)
    prefix = f"asgi_kit_bench_{os.getpid()}:"
    with tempfile.TemporaryDirectory(prefix="asgi-kit-real-db-") as tmp:
        directory = Path(tmp)
        write_variants(variant_sources(readme_app(), prefix), directory)
        for kind in kinds:
            report = run_database(kind, directory, options, with_redis, prefix)
            print(format_report(report), flush=True)
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"\ntook {time.monotonic() - started:.0f} s; load average at the end {load}")


if __name__ == "__main__":
    main()
