"""In-process benchmark of session auth in FastAPI and FastAPI Users, with zero I/O.

Every case serves the same authenticated ``GET /`` (the caller's user id as JSON) from
its own FastAPI app, to requests that cycle over the same 1,000 users' valid bearer
tokens; users, access tokens and sessions live in memory. Requests are direct ASGI calls
(hand-built scope, no-op ``receive``, a ``send`` that counts non-200 answers) in one
asyncio event loop, interleaved in slices in a rotating order, as in
``bench_middleware.py``.

    python3 benchmarks/bench_fastapi_users.py             # 7 rounds x 5,000 requests per case
    python3 benchmarks/bench_fastapi_users.py --quick     # smoke run

FastAPI Users cannot be installed into ``.venv`` beside our namespace package, so when it
is not importable the script builds our wheel, makes or refreshes ``.venv-fastapi-users``
(``_fastapi_users_env``) and runs itself again there: it measures the current sources.

No ``from __future__ import annotations``: FastAPI reads the routes' dependency
signatures at run time, and some of them are local to the functions that build the apps.
"""

import argparse
import asyncio
import gc
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from itertools import cycle, islice
from pathlib import Path
from typing import Annotated, Any, Protocol
from uuid import UUID

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _fastapi_users_env

try:
    import _apps
    import fastapi
    from bench_middleware import receive, scope_template
    from fastapi import Depends, FastAPI
    from fastapi_users.authentication import (
        AuthenticationBackend,
        BearerTransport,
        JWTStrategy,
        Strategy,
    )
    from fastapi_users.authentication.strategy import DatabaseStrategy
    from fastapi_users.db import BaseUserDatabase
    from starlette.types import ASGIApp, Message, Scope

    import asgi_kit
    import fastapi_users
    from asgi_kit import BearerAuthMiddleware, InMemorySessionDatabase, Session, SessionDatabase
    from fastapi_users import BaseUserManager, FastAPIUsers, UUIDIDMixin
    from fastapi_users.extensions.session_manager import SessionManager
except ImportError:
    if __name__ != "__main__":
        raise
    _fastapi_users_env.run_in_environment(__file__)

SECRET = "benchmark-secret-not-for-production-0123456789"
#: Token lifetime of every case: the sessions' (``_apps.LIFETIME``), in seconds.
LIFETIME_SECONDS = int(_apps.LIFETIME.total_seconds())
#: Environment variable the uvicorn factories read the number of users from.
USERS_ENV = "ASGI_KIT_BENCH_USERS"
DEFAULT_USERS = 1_000


def with_middleware(app: FastAPI, manager: SessionManager) -> None:
    """Put ``BearerAuthMiddleware`` in front of ``app``, handed ``manager`` (the README's way).

    So ``manager.strategy`` and ``manager.current_session`` reuse what it resolved.
    """
    app.add_middleware(BearerAuthMiddleware, session_db=manager)


@dataclass
class User:
    """A FastAPI Users user (``fastapi_users.models.UserProtocol``), held in memory."""

    id: UUID
    email: str
    hashed_password: str = ""
    is_active: bool = True
    is_superuser: bool = False
    is_verified: bool = True


def make_users(count: int) -> list[User]:
    """``count`` users; user ``n`` has the id of ``_apps.build_store``'s ``n``-th session."""
    return [User(UUID(int=n + 1, version=4), f"user{n}@example.com") for n in range(count)]


class InMemoryUserDatabase(BaseUserDatabase[User, UUID]):
    """A user database in a dict, counting the look-ups by id."""

    def __init__(self, users: Iterable[User]) -> None:
        self.users = {user.id: user for user in users}
        self.lookups = 0

    async def get(self, id: UUID) -> User | None:
        """The user with this id, or None."""
        self.lookups += 1
        return self.users.get(id)


@dataclass
class AccessToken:
    """An access token of ``DatabaseStrategy`` (``AccessTokenProtocol``)."""

    token: str
    user_id: UUID
    created_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))


class InMemoryAccessTokenDatabase:
    """FastAPI Users' ``AccessTokenDatabase`` protocol over a dict, counting look-ups."""

    def __init__(self, tokens: Iterable[AccessToken]) -> None:
        self.tokens = {access.token: access for access in tokens}
        self.lookups = 0

    async def get_by_token(self, token: str, max_age: datetime | None = None) -> AccessToken | None:
        """The access token, unless it is unknown or older than ``max_age``."""
        self.lookups += 1
        access = self.tokens.get(token)
        if access is None or (max_age is not None and access.created_at < max_age):
            return None
        return access

    async def create(self, create_dict: dict[str, Any]) -> AccessToken:
        """Store a new access token."""
        access = AccessToken(**create_dict)
        self.tokens[access.token] = access
        return access

    async def update(self, access_token: AccessToken, update_dict: dict[str, Any]) -> AccessToken:
        """Change an access token's fields."""
        for name, value in update_dict.items():
            setattr(access_token, name, value)
        return access_token

    async def delete(self, access_token: AccessToken) -> None:
        """Forget an access token."""
        self.tokens.pop(access_token.token, None)


class CountingSessionDatabase(InMemorySessionDatabase):
    """The in-memory session store, counting token look-ups (``get_by_token_digest``)."""

    def __init__(self) -> None:
        super().__init__()
        self.lookups = 0

    async def get_by_token_digest(self, digest: str) -> Session | None:
        """Count, then look up as the in-memory store does."""
        self.lookups += 1
        return await super().get_by_token_digest(digest)


class UserManager(UUIDIDMixin, BaseUserManager[User, UUID]):
    """The user manager of every FastAPI Users case."""

    reset_password_token_secret = SECRET
    verification_token_secret = SECRET


def session_manager(store: SessionDatabase) -> SessionManager:
    """A manager with the sessions' lifetime and idle timeout of ``_apps``."""
    return SessionManager(store, lifetime=_apps.LIFETIME, idle_timeout=_apps.IDLE_TIMEOUT)


def bare_app() -> FastAPI:
    """The route without authentication: the baseline of every overhead."""
    app = FastAPI()

    @app.get("/")
    async def me() -> dict[str, str]:
        return {"id": "anonymous"}

    return app


def session_route_app(manager: SessionManager) -> FastAPI:
    """(a) the route with ``Depends(manager.current_session)``."""
    app = FastAPI()

    @app.get("/")
    async def me(session: Annotated[Session, Depends(manager.current_session)]) -> dict[str, str]:
        return {"id": str(session.user_id)}

    return app


def fastapi_users_app(
    user_db: InMemoryUserDatabase, strategy: Callable[..., Strategy[User, UUID]]
) -> FastAPI:
    """The route with FastAPI Users' ``current_user(active=True)``, tokens from ``strategy``.

    The user database and manager come from generator dependencies, as in the README's app.
    """

    async def get_user_db() -> AsyncIterator[InMemoryUserDatabase]:
        yield user_db

    async def get_user_manager(
        user_db: Annotated[InMemoryUserDatabase, Depends(get_user_db)],
    ) -> AsyncIterator[UserManager]:
        yield UserManager(user_db)

    backend = AuthenticationBackend[User, UUID](
        name="bench", transport=BearerTransport(tokenUrl="auth/login"), get_strategy=strategy
    )
    current_user = FastAPIUsers[User, UUID](get_user_manager, [backend]).current_user(active=True)
    app = FastAPI()

    @app.get("/")
    async def me(user: Annotated[User, Depends(current_user)]) -> dict[str, str]:
        return {"id": str(user.id)}

    return app


def database_strategy_app(
    user_db: InMemoryUserDatabase, tokens: list[str]
) -> tuple[FastAPI, InMemoryAccessTokenDatabase]:
    """(c) ``DatabaseStrategy``, token ``n`` being user ``n``'s; return the app, token db."""
    access_db = InMemoryAccessTokenDatabase(
        AccessToken(token, user_id) for user_id, token in zip(user_db.users, tokens, strict=True)
    )

    async def get_access_token_db() -> AsyncIterator[InMemoryAccessTokenDatabase]:
        yield access_db

    def get_database_strategy(
        access_token_db: Annotated[InMemoryAccessTokenDatabase, Depends(get_access_token_db)],
    ) -> DatabaseStrategy[User, UUID, AccessToken]:
        return DatabaseStrategy(access_token_db, lifetime_seconds=LIFETIME_SECONDS)

    return fastapi_users_app(user_db, get_database_strategy), access_db


def get_jwt_strategy() -> JWTStrategy[User, UUID]:
    """(d) FastAPI Users' JWT strategy, made per request as its documentation shows."""
    return JWTStrategy(secret=SECRET, lifetime_seconds=LIFETIME_SECONDS)


def _users_from_env() -> list[User]:
    return make_users(int(os.environ.get(USERS_ENV, DEFAULT_USERS)))


def session_route_factory() -> ASGIApp:
    """uvicorn ``--factory`` target: case (a), sessions of ``_apps.build_store``."""
    users = _users_from_env()
    return session_route_app(session_manager(_apps.build_store(_apps.make_tokens(len(users)))))


def database_strategy_factory() -> ASGIApp:
    """uvicorn ``--factory`` target: case (c), the same tokens as access tokens."""
    users = _users_from_env()
    return database_strategy_app(InMemoryUserDatabase(users), _apps.make_tokens(len(users)))[0]


class Counter(Protocol):
    """A database that counts its look-ups."""

    lookups: int


@dataclass
class Run:
    """One timed case: its app, the scopes it cycles over, its samples and counters."""

    key: str
    label: str
    app: ASGIApp
    scopes: list[Scope]
    #: The user id each scope's answer must carry (in the order of ``scopes``).
    expected: list[str]
    #: The token store (sessions or access tokens) and the user database, if any.
    store: Counter | None = None
    user_db: Counter | None = None
    #: ns/request of every slice, one list per round.
    samples: list[list[float]] = field(default_factory=list)
    requests: int = 0
    errors: int = 0
    first_error: Message | None = None
    store_lookups: int = 0
    user_lookups: int = 0

    def __post_init__(self) -> None:
        self.next_scope = cycle(self.scopes)

    async def send(self, message: Message) -> None:
        """Discard the response, counting every non-200 status as an error."""
        if message["type"] == "http.response.start" and message["status"] != 200:
            self.errors += 1
            if self.first_error is None:
                self.first_error = message


async def verify(run: Run) -> None:
    """Fail loudly unless the first scope is answered 200 with the right user id."""
    sent: list[Message] = []

    async def record(message: Message) -> None:
        sent.append(message)

    await run.app(dict(run.scopes[0]), receive, record)
    status = sent[0].get("status") if sent else None
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    if status != 200 or json.loads(body) != {"id": run.expected[0]}:
        raise SystemExit(f"{run.label}: answered {status} {body!r}, expected 200 and the user id")


@dataclass(frozen=True)
class Config:
    """What to run."""

    rounds: int
    requests: int
    users: int
    slice: int = 250


async def plan(config: Config) -> list[Run]:
    """Build every case's app, users, tokens and sessions; return the runs in table order."""
    users = make_users(config.users)
    tokens = _apps.make_tokens(config.users)
    ids = [str(user.id) for user in users]
    scopes = [scope_template(token) for token in tokens]

    async def with_sessions() -> tuple[SessionManager, CountingSessionDatabase]:
        store = CountingSessionDatabase()
        manager = session_manager(store)
        for user, token in zip(users, tokens, strict=True):
            await manager.create_session(user.id, token)
        return manager, store

    manager_a, store_a = await with_sessions()
    manager_b, store_b = await with_sessions()
    manager_e, store_e = await with_sessions()
    manager_f, store_f = await with_sessions()
    app_b = session_route_app(manager_b)
    with_middleware(app_b, manager_b)
    users_c, users_d, users_e, users_f = (InMemoryUserDatabase(users) for _ in range(4))
    app_c, access_db = database_strategy_app(users_c, tokens)
    jwt = get_jwt_strategy()
    jwt_scopes = [scope_template(await jwt.write_token(user)) for user in users]
    app_f = fastapi_users_app(users_f, manager_f.strategy)
    with_middleware(app_f, manager_f)
    fu = "FastAPI Users current_user(active=True)"
    return [
        Run("bare", "0. FastAPI route, no auth (baseline)", bare_app(), scopes, ["anonymous"]),
        Run("a", "(a) Depends(manager.current_session)", session_route_app(manager_a), scopes,
            ids, store_a),
        Run("b", "(b) (a) behind BearerAuthMiddleware", app_b, scopes, ids, store_b),
        Run("c", f"(c) {fu}, DatabaseStrategy", app_c, scopes, ids, access_db, users_c),
        Run("d", f"(d) {fu}, JWTStrategy", fastapi_users_app(users_d, get_jwt_strategy),
            jwt_scopes, ids, None, users_d),
        Run("e", f"(e) {fu}, manager.strategy", fastapi_users_app(users_e, manager_e.strategy),
            scopes, ids, store_e, users_e),
        Run("f", "(f) (e) behind BearerAuthMiddleware", app_f, scopes, ids, store_f, users_f),
    ]  # fmt: skip


async def time_slice(run: Run, requests: int) -> float:
    """Send ``requests`` requests through ``run.app``; return nanoseconds per request."""
    app, send, scopes = run.app, run.send, islice(run.next_scope, requests)
    start = time.perf_counter_ns()
    for template in scopes:
        await app(dict(template), receive, send)
    return (time.perf_counter_ns() - start) / requests


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
            run.requests += config.slice


def _lookups(counter: Counter | None) -> int:
    return 0 if counter is None else counter.lookups


async def measure(config: Config) -> list[Run]:
    """Verify every case, warm up, then run ``config.rounds`` rounds; return the runs.

    Look-ups are counted over the timed requests only (not the set-up, check or warm-up).
    """
    started = time.perf_counter()
    runs = await plan(config)
    print(f"built {config.users:,} users, tokens and sessions per case "
          f"in {time.perf_counter() - started:.2f} s")  # fmt: skip
    for run in runs:
        await verify(run)
    for run in runs:  # warm-up, not recorded
        await time_slice(run, max(500, config.requests // 10))
    gc.collect()
    gc.freeze()  # users, tokens and sessions are long-lived: keep collections off them
    before = {run.key: (_lookups(run.store), _lookups(run.user_db)) for run in runs}
    for number in range(config.rounds):
        await run_round(runs, config)
        print(f"round {number + 1}/{config.rounds} done", file=sys.stderr)
    for run in runs:
        run.store_lookups = _lookups(run.store) - before[run.key][0]
        run.user_lookups = _lookups(run.user_db) - before[run.key][1]
    return runs


@dataclass(frozen=True)
class Row:
    """Summary of one timed case, in microseconds per request."""

    key: str
    label: str
    best: float
    median: float
    overhead: float
    store_lookups: float | None
    user_lookups: float | None
    errors: int


def summarize(runs: list[Run]) -> list[Row]:
    """Turn slice samples into rows (microseconds per request).

    ``best``/``median`` are over per-round means; the overhead is the median, over all
    slices, of (case - bare route) in the same slice, the two measured milliseconds apart.
    """
    bare = [x for r in runs[0].samples for x in r]
    rows = []
    for run in runs:
        rounds = [statistics.fmean(r) for r in run.samples]
        slices = [x for r in run.samples for x in r]
        paired = [s - b for s, b in zip(slices, bare, strict=True)]
        per_request = run.requests or 1
        rows.append(
            Row(
                key=run.key,
                label=run.label,
                best=min(rounds) / 1000,
                median=statistics.median(rounds) / 1000,
                overhead=statistics.median(paired) / 1000,
                store_lookups=None if run.store is None else run.store_lookups / per_request,
                user_lookups=None if run.user_db is None else run.user_lookups / per_request,
                errors=run.errors,
            )
        )
    return rows


def paired_ratio(runs: list[Run], numerator: str, denominator: str) -> float:
    """Median over slices of (numerator / denominator), the two measured in the same slice."""
    by_key = {run.key: run for run in runs}
    top = [x for r in by_key[numerator].samples for x in r]
    bottom = [x for r in by_key[denominator].samples for x in r]
    return statistics.median(t / b for t, b in zip(top, bottom, strict=True))


def _count(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def format_table(rows: list[Row]) -> str:
    """Render the rows as a markdown table."""
    lines = [
        "| case | best µs/req | median µs/req | overhead µs (median) "
        "| token look-ups/req | user look-ups/req | non-200 |",
        "|---|--:|--:|--:|--:|--:|--:|",
    ]
    for row in rows:
        lines.append(
            f"| {row.label} | {row.best:.1f} | {row.median:.1f} | {row.overhead:+.1f} "
            f"| {_count(row.store_lookups)} | {_count(row.user_lookups)} | {row.errors} |"
        )
    return "\n".join(lines)


#: (numerator, denominator, target as text, limit): the target is ratio >= limit.
RATIOS: tuple[tuple[str, str, str, float | None], ...] = (
    ("c", "e", ">= 2.0", 2.0),
    ("c", "a", ">= 5", 5.0),
    ("c", "d", "", None),
    ("e", "a", "", None),
    ("f", "e", "", None),
    ("b", "a", "", None),
)


def format_ratios(runs: list[Run], rows: list[Row]) -> str:
    """Time ratios: of the median per-request times, and the median of per-slice ratios."""
    by_key = {row.key: row for row in rows}
    lines = [
        "| ratio | of medians | paired (per slice) | target | met |",
        "|---|--:|--:|--:|:-:|",
    ]
    for top, bottom, target, limit in RATIOS:
        ratio = by_key[top].median / by_key[bottom].median
        met = "" if limit is None else ("yes" if ratio >= limit else "NO")
        paired = paired_ratio(runs, top, bottom)
        lines.append(f"| ({top})/({bottom}) | {ratio:.2f} | {paired:.2f} | {target} | {met} |")
    return "\n".join(lines)


def format_checks(rows: list[Row]) -> str:
    """The look-up target of (f), and every non-200 answer."""
    by_key = {row.key: row for row in rows}
    lookups = by_key["f"].store_lookups
    verdict = "yes" if lookups == 1 else "NO"
    lines = [f"(f) session look-ups per request: {_count(lookups)} (target: exactly 1; met: "
             f"{verdict})"]  # fmt: skip
    errors = sum(row.errors for row in rows)
    lines.append(f"non-200 answers: {errors}")
    return "\n".join(lines)


def parse_args(argv: Iterable[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 rounds x 1,000 requests")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--requests", type=int, default=5_000, help="per case per round")
    parser.add_argument("--users", type=int, default=DEFAULT_USERS, help="users = tokens cycled")
    parser.add_argument("--slice", type=int, default=250, help="requests per interleaved slice")
    return parser.parse_args(None if argv is None else list(argv))


def config_from(args: argparse.Namespace) -> Config:
    """The run configuration, ``--quick`` overriding the sizes."""
    if args.quick:
        return Config(rounds=3, requests=1_000, users=args.users, slice=args.slice)
    return Config(args.rounds, args.requests, args.users, args.slice)


def describe(config: Config) -> str:
    """What ran, and where the code under test came from."""
    return (
        f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs; "
        f"FastAPI {fastapi.__version__}, FastAPI Users {fastapi_users.__version__}, "
        f"asgi_kit from {Path(asgi_kit.__file__).parent}\n"
        f"{config.rounds} rounds x {config.requests:,} requests per case "
        f"(slices of {config.slice}), {config.users:,} users and tokens cycled\n"
    )


async def amain(args: argparse.Namespace) -> None:
    """Run the benchmark; print markdown."""
    config = config_from(args)
    print(describe(config))
    runs = await measure(config)
    rows = summarize(runs)
    print(f"load average at the end: {os.getloadavg()[0]:.2f} (1 min)")
    print(format_table(rows), format_ratios(runs, rows), format_checks(rows), sep="\n\n")
    for run in runs:
        if run.first_error is not None:
            print(f"{run.label}: first non-200 answer {run.first_error!r}")


def main(argv: Iterable[str] | None = None) -> None:
    """Entry point."""
    asyncio.run(amain(parse_args(argv)))


if __name__ == "__main__":
    main()
