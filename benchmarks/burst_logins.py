"""Login bursts: N simultaneous logins against the README's FastAPI Users app, over loopback.

For every database (SQLite, PostgreSQL) and every N (10, 50, 200), starts uvicorn (one
worker, 127.0.0.1, a free port) serving a copy of ``examples/fastapi_users_app.py`` from
a fresh temporary directory with a fresh database, registers N / 5 users through
``POST /auth/register``, opens N keep-alive connections, then fires N simultaneous
``POST /auth/login`` (5 per user: under the app's cap of 10 sessions per user, so every
login must leave a session), and then one ``GET /users/me`` and one ``GET /auth/sessions``
per token, all at once. It reports p50/p99/max login latency, logins/s, errors (non-2xx
and transport errors; 5xx also on their own) and the sessions stored, counted in the
``asgi_kit_sessions`` table after the server stopped, against the N expected.

Every request goes to 127.0.0.1 with a timeout; the server is stopped and the database
dropped in a ``finally`` (SIGTERM of this script unwinds the same way).

    python3 benchmarks/burst_logins.py            # SQLite and PostgreSQL, N = 10, 50, 200
    python3 benchmarks/burst_logins.py --quick    # SQLite only, N = 10, 50

Like the other FastAPI Users benchmarks, it runs itself in ``.venv-fastapi-users`` (built
from the current sources, with uvicorn added) when FastAPI Users is not importable.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import statistics
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _fastapi_users_env

try:
    import _burst_server
    import httpx2
    from load_middleware import HOST

    from fastapi_users import FastAPIUsers  # noqa: F401  (tells the environment apart)
except ImportError:
    if __name__ != "__main__":
        raise
    _fastapi_users_env.run_in_environment(__file__)

#: The password of every throw-away user.
PASSWORD = "burst-password-1"
#: Logins per user: under the app's max_sessions_per_user=10, so none is evicted.
LOGINS_PER_USER = 5
#: Seconds any one request may take (a bound, so a stuck server ends the run).
REQUEST_TIMEOUT = 300.0
SIZES = (10, 50, 200)
DATABASES = ("sqlite", "postgresql")


@dataclass(frozen=True)
class Burst:
    """What one burst of logins did."""

    database: str
    logins: int
    users: int
    latencies_ms: list[float]
    seconds: float
    #: Requests (logins, /users/me, /auth/sessions) answered non-2xx or not at all.
    errors: int
    server_errors: int
    sessions_stored: int
    #: Sessions the users' own /auth/sessions listed, summed over the users.
    sessions_listed: int
    #: Exceptions the server's tracebacks ended with, by type.
    failures: Counter[str]

    def row(self) -> str:
        """One Markdown table row."""
        cuts = statistics.quantiles(self.latencies_ms, n=100, method="inclusive")
        rate = self.logins / self.seconds
        return (
            f"| {self.database} | {self.logins} | {self.users} | {cuts[49]:,.0f} "
            f"| {cuts[98]:,.0f} | {max(self.latencies_ms):,.0f} | {rate:,.1f} | {self.errors} "
            f"| {self.server_errors} | {self.sessions_stored} / {self.logins} "
            f"| {self.sessions_listed} |"
        )


HEADER = (
    "| database | N logins | users | p50 ms | p99 ms | max ms | logins/s | errors | 5xx "
    "| sessions stored / expected | sessions listed |\n"
    "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
)


class Tally:
    """Counts failed requests: any non-2xx or transport error; 5xx also on their own."""

    def __init__(self) -> None:
        self.errors = 0
        self.server_errors = 0

    async def send(self, request: Awaitable[httpx2.Response]) -> httpx2.Response | None:
        """Await one request; count it if it failed; None when no answer came."""
        try:
            response = await request
        except httpx2.HTTPError as exc:
            print(f"  request failed: {exc!r}", file=sys.stderr)
            self.errors += 1
            return None
        if not response.is_success:
            self.errors += 1
            self.server_errors += response.status_code >= 500
            print(f"  {response.status_code}: {response.text[:80]}", file=sys.stderr)
        return response


async def burst(port: int, logins: int) -> tuple[list[float], float, Tally, int]:
    """Register the users, fire the logins and the authenticated requests.

    Returns the login latencies in ms, the burst's wall time, the tally and the sessions
    the users' own ``/auth/sessions`` listed.
    """
    users = [f"burst{i}@example.com" for i in range(logins // LOGINS_PER_USER)]
    limits = httpx2.Limits(max_connections=logins, max_keepalive_connections=logins)
    tally = Tally()
    async with httpx2.AsyncClient(
        base_url=f"http://{HOST}:{port}", limits=limits, timeout=REQUEST_TIMEOUT
    ) as http:
        for email in users:
            body = {"email": email, "password": PASSWORD}
            await tally.send(http.post("/auth/register", json=body))
        # N keep-alive connections first, so the burst times logins, not TCP handshakes.
        await asyncio.gather(*(http.get("/users/me") for _ in range(logins)))

        async def login(email: str) -> tuple[float, httpx2.Response | None]:
            began = time.perf_counter()
            form = {"username": email, "password": PASSWORD}
            response = await tally.send(http.post("/auth/login", data=form))
            return (time.perf_counter() - began) * 1000, response

        started = time.perf_counter()
        done = await asyncio.gather(*(login(e) for e in users for _ in range(LOGINS_PER_USER)))
        seconds = time.perf_counter() - started
        tokens = [r.json()["access_token"] for _, r in done if r is not None and r.is_success]

        def authenticated(path: str, token: str) -> Awaitable[httpx2.Response]:
            return http.get(path, headers={"Authorization": f"Bearer {token}"})

        checks = [authenticated(p, t) for t in tokens for p in ("/users/me", "/auth/sessions")]
        answers = await asyncio.gather(*(tally.send(c) for c in checks))
        listed: dict[str, int] = {}
        for answer in answers[1::2]:
            if answer is not None and answer.is_success:
                for session in answer.json():
                    listed[session["id"]] = 1
    return [ms for ms, _ in done], seconds, tally, len(listed)


def run_one(database: str, logins: int) -> Burst:
    """One burst against a fresh server and a fresh database."""
    failures: Counter[str] = Counter()
    with _burst_server.fresh_database(database) as (url, count_sessions):
        with _burst_server.app_server(url, failures) as port:
            latencies, seconds, tally, listed = asyncio.run(burst(port, logins))
        stored = count_sessions()
    users = logins // LOGINS_PER_USER
    return Burst(
        database, logins, users, latencies, seconds, tally.errors, tally.server_errors,
        stored, listed, failures,
    )  # fmt: skip


def plan(quick: bool) -> Iterator[tuple[str, int]]:
    """(database, N) in the order run."""
    for database in DATABASES[:1] if quick else DATABASES:
        for logins in SIZES[:2] if quick else SIZES:
            yield database, logins


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def main() -> None:
    """Entry point: SIGTERM unwinds like Ctrl-C, so the server is always stopped."""
    signal.signal(signal.SIGTERM, _terminate)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="SQLite only, N = 10, 50")
    args = parser.parse_args()
    print(_burst_server.describe(), "\n", flush=True)
    rows = []
    for database, logins in plan(args.quick):
        print(f"{database}, {logins} logins ...", file=sys.stderr, flush=True)
        rows.append(run_one(database, logins))
        print(rows[-1].row(), file=sys.stderr, flush=True)
    print(HEADER, *(r.row() for r in rows), sep="\n")
    for r in rows:
        for failure, times in r.failures.most_common():
            print(f"{r.database}, N = {r.logins}: server raised {failure} x {times}")
    lost = [r for r in rows if r.errors or r.sessions_stored != r.logins]
    with contextlib.suppress(BrokenPipeError):
        print("\nnothing lost, no error" if not lost else f"\nFAILED: {len(lost)} bursts")
    sys.exit(1 if lost else 0)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
