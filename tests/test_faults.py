"""Fault injection: each server store, over HTTP, against servers these tests start and break.

Faults: a server killed (SIGKILL) and started again, one paused (SIGSTOP) with fifty
requests waiting on it and resumed (SIGCONT), a silent listener (accepts, never answers)
later replaced by the real server, and a SQLite file that briefly cannot be written.
Each case checks the answer (503 ``SESSION_STORE_UNAVAILABLE``), that every request ended
within the store's ``timeout`` plus a margin, and that service resumes afterwards.

Redis and PostgreSQL run as private processes on free loopback ports (see
``tests/servers.py``), never the shared servers. Unwritable SQLite: ``chattr +i`` on the
database file and its ``-wal`` (the immutable flag binds root too, unlike permission
bits; ``-shm`` is left alone: SQLite maps it, and an immutable mapping is a SIGBUS).
"""

from __future__ import annotations

import asyncio
import gc
import shutil
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import httpx2
import pytest

from asgi_kit import (
    RedisSessionDatabase,
    SessionDatabase,
    SQLAlchemySessionDatabase,
    generate_token,
)

from .proxy import SilentListener, TcpProxy
from .servers import PrivatePostgres, ServerProcess, missing, private_redis, unique_name
from .test_store_servers import UNAVAILABLE, bearer, http, listed, login, make_app

pytestmark = pytest.mark.anyio


@pytest.fixture(autouse=True)
async def _asyncpg_abandoned_waiters() -> AsyncIterator[None]:
    """Let asyncpg's one background complaint about a server we killed pass; fail on others.

    When a deadline gives up on a connection to a paused or killed PostgreSQL, the store
    terminates it; asyncpg then fails that connection's internal waiter with
    ``ConnectionError("unexpected connection_lost() call")`` in a callback, and asyncio
    reports the never-retrieved future through the loop's exception handler, where the
    anyio test runner turns it into a failure of whichever test is running. Nothing of
    ours awaits that future, and nothing is wrong: the request already got its 503.
    """
    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        error = context.get("exception")
        if isinstance(error, ConnectionError) and "unexpected connection_lost()" in str(error):
            return
        if previous is None:
            loop.default_exception_handler(context)
        else:
            previous(loop, context)

    loop.set_exception_handler(handler)
    try:
        yield
    finally:
        gc.collect()  # abandoned futures report when collected: while the handler is on
        await anyio.lowlevel.checkpoint()
        loop.set_exception_handler(previous)

TIMEOUT = 1.0
#: Generous for a loaded 2-core machine, yet below a second ``TIMEOUT`` (a pool wait and
#: then a connect, each given the timeout, took twice as long).
BOUND = TIMEOUT + 0.75
CONCURRENT = 50
SERVERS = [
    pytest.param("postgres", marks=pytest.mark.postgres),
    pytest.param("redis", marks=pytest.mark.redis),
]


@pytest.fixture(scope="module")
def private_postgres() -> Iterator[PrivatePostgres]:
    server = PrivatePostgres()
    server.start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[ServerProcess, str]]:
    """The private server of the test's kind, running, and the URL to reach it."""
    if request.param == "redis":
        redis = private_redis(tmp_path)
        redis.start()
        try:
            yield redis, f"redis://127.0.0.1:{redis.port}/0"
        finally:
            redis.resume()
            redis.kill()
        return
    postgres: PrivatePostgres = request.getfixturevalue("private_postgres")
    try:
        yield postgres, postgres.url
    finally:
        postgres.resume()
        if not postgres.ready():
            postgres.start()


@asynccontextmanager
async def store_at(url: str) -> AsyncIterator[SessionDatabase]:
    """A fresh store at ``url`` with a short ``TIMEOUT``; its data dropped after if it can."""
    name = unique_name("sessions")
    store: RedisSessionDatabase | SQLAlchemySessionDatabase
    if url.startswith("redis"):
        store = RedisSessionDatabase(url, key_prefix=f"test:{name}:", timeout=TIMEOUT)
    else:
        store = SQLAlchemySessionDatabase(url, table_name=name, timeout=TIMEOUT)
    try:
        yield store
    finally:
        await store.aclose()


async def create_data(store: SessionDatabase) -> None:
    if isinstance(store, SQLAlchemySessionDatabase):
        await store.create_table()


async def timed(
    client: httpx2.AsyncClient, method: str, path: str, token: str
) -> tuple[httpx2.Response, float]:
    start = time.perf_counter()
    response = await client.request(method, path, headers=bearer(token))
    return response, time.perf_counter() - start


async def all_unavailable(client: httpx2.AsyncClient, token: str, count: int = 1) -> float:
    """Send ``count`` concurrent requests of each kind; check each is a 503 in time.

    Returns the slowest request's duration.
    """
    results: list[tuple[httpx2.Response, float]] = []

    async def one(method: str, path: str) -> None:
        results.append(await timed(client, method, path, token))

    with anyio.fail_after(30):  # a hung request fails the test instead of the run
        async with anyio.create_task_group() as tg:
            for i in range(count):
                method, path = [("GET", "/auth/sessions"), ("POST", f"/login/{uuid.uuid4()}")][
                    i % 2
                ]
                tg.start_soon(one, method, path)
            if count == 1:
                tg.start_soon(one, "POST", f"/login/{uuid.uuid4()}")
    for response, _ in results:
        assert (response.status_code, response.json()) == (503, UNAVAILABLE)
    slowest = max(seconds for _, seconds in results)
    assert slowest <= BOUND, f"a request took {slowest:.2f} s (timeout {TIMEOUT} s)"
    return slowest


async def resumes(client: httpx2.AsyncClient, token: str, sid: str, user: uuid.UUID) -> None:
    """The session made before the fault is still served; a new one can be made."""
    for _ in range(100):  # a restarted server may still be recovering: bounded retries
        r = await client.get("/auth/sessions", headers=bearer(token))
        if r.status_code != 503:
            break
        await anyio.sleep(0.1)
    assert await listed(client, token) == [sid]
    other_sid, other_token = await login(client, user)
    assert await listed(client, other_token) == [other_sid, sid]


@pytest.mark.parametrize("fault", ["killed", "paused"])
@pytest.mark.parametrize("server", SERVERS, indirect=True)
async def test_a_killed_or_paused_server_is_a_503_in_time_then_service_resumes(
    server: tuple[ServerProcess, str], fault: str
) -> None:
    process, url = server
    async with store_at(url) as store, http(make_app(store)) as client:
        await create_data(store)
        user = uuid.uuid4()
        sid, token = await login(client, user)

        process.kill() if fault == "killed" else process.pause()
        try:
            await all_unavailable(client, token)
            await all_unavailable(client, token, CONCURRENT)
        finally:
            # Started again on the same port, with its data; or woken up.
            process.start() if fault == "killed" else process.resume()
        await resumes(client, token, sid, user)


@pytest.mark.parametrize("server", SERVERS, indirect=True)
async def test_a_silent_listener_is_a_503_in_time_then_the_server_takes_over(
    server: tuple[ServerProcess, str],
) -> None:
    process, url = server
    async with SilentListener() as listener:
        silent_url = url.replace(f":{process.port}/", f":{listener.port}/")
        async with store_at(silent_url) as store, http(make_app(store)) as client:
            token = generate_token()
            await all_unavailable(client, token)
            slowest = await all_unavailable(client, token, CONCURRENT)
            print(f"{CONCURRENT} concurrent requests, silent listener: slowest {slowest:.2f} s")
            await listener.aclose()
            # The real server behind the same port now: the store was never restarted.
            async with TcpProxy(("127.0.0.1", process.port), port=listener.port):
                await create_data(store)
                user = uuid.uuid4()
                sid, token = await login(client, user)
                assert await listed(client, token) == [sid]


# --- SQLite -----------------------------------------------------------------------------------


def chattr(flag: str, *paths: Path) -> None:
    """Set or clear the immutable flag; skip (fail under CI) where it cannot be set."""
    if shutil.which("chattr") is None:
        missing("chattr is not installed: cannot make a SQLite file unwritable")
    done = subprocess.run(["chattr", flag, *map(str, paths)], capture_output=True, check=False)
    if done.returncode != 0:
        missing(f"chattr {flag} failed ({done.stderr.decode().strip()}): needs CAP_LINUX_IMMUTABLE")


async def test_a_sqlite_file_briefly_unwritable_is_a_503_then_the_first_write_succeeds(
    tmp_path: Path,
) -> None:
    path = tmp_path / "sessions.sqlite3"
    store = SQLAlchemySessionDatabase(f"sqlite:///{path}", timeout=TIMEOUT)
    files = [path, path.with_name(path.name + "-wal")]
    try:
        async with http(make_app(store)) as client:
            await store.create_table()
            user = uuid.uuid4()
            sid, token = await login(client, user)
            chattr("+i", *files)
            try:
                for _ in range(3):
                    r, seconds = await timed(client, "POST", f"/login/{user}", token)
                    assert (r.status_code, r.json()) == (503, UNAVAILABLE)
                    assert seconds <= BOUND
                # Reads still work; the connections they open now can only read.
                async with anyio.create_task_group() as tg:
                    for _ in range(10):
                        tg.start_soon(listed, client, token)
            finally:
                chattr("-i", *files)
            other_sid, other_token = await login(client, user)  # the very first write
            assert await listed(client, other_token) == [other_sid, sid]
            for _ in range(10):
                await login(client, user)
    finally:
        chattr("-i", *files)
        await store.aclose()
