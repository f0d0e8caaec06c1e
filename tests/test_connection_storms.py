"""Connection storms: what a PostgreSQL store holds and answers under load and outages.

A store made from a URL holds at most ``pool_size`` connections. Three storms against a
private PostgreSQL (``tests/servers.py``) that these tests may kill: a burst of logins
beside busy readers, the server killed and started again in the middle of a run, and
another client taking every connection the server allows. Each counts the store's
connections with PostgreSQL itself (``pg_stat_activity``, over a connection of the test's
own) during and after the storm, and after ``aclose()``; each checks every answer: a 200,
or the outage answer (503 ``SESSION_STORE_UNAVAILABLE`` with ``Retry-After``), never a 500
or a 401; and the same app serves again once the server can.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.to_thread
import asyncpg  # type: ignore[import-untyped]
import httpx2
import pytest

from asgi_kit import (
    SQLAlchemySessionDatabase,
)

from .servers import PrivatePostgres, unique_name, wait_until
from .test_faults import _asyncpg_abandoned_waiters
from .test_store_servers import UNAVAILABLE, bearer, http, listed, login, make_app

__all__ = ["_asyncpg_abandoned_waiters"]  # an autouse fixture: imported, it applies here too

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]

POOL_SIZE = 10
READERS = 32
LOGINS = 200
#: The outage tests' store timeout, and how long an outage answer may take on a loaded machine.
TIMEOUT = 1.0
BOUND = TIMEOUT + 0.75
#: The burst's store timeout: no outage there, so every request waits its turn and gets a 200.
PATIENT = 15.0
#: Of the small server; every client is its superuser, so all of them are for clients.
MAX_CONNECTIONS = 20
OTHER_CLIENT = "another client"  # its application_name
#: The server's client connections but the counting one and those named $1.
STORE_CONNECTIONS = (
    "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'"
    " AND pid <> pg_backend_pid() AND application_name <> $1"
)


def verdict(r: httpx2.Response) -> str:
    """``"200"``, ``"503"`` for the whole outage answer, else the answer itself, to show."""
    if r.status_code == 200:
        return "200"
    try:
        detail = r.json()
    except json.JSONDecodeError:
        detail = None
    retry_after = r.headers.get("retry-after", "")
    if r.status_code == 503 and retry_after.isdigit() and detail == UNAVAILABLE:
        return "503"
    return f"{r.status_code} Retry-After={r.headers.get('retry-after')} {r.text[:300]}"


def private_postgres(max_connections: int = 200) -> Iterator[PrivatePostgres]:
    server = PrivatePostgres(max_connections=max_connections)
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture
def postgres() -> Iterator[PrivatePostgres]:
    """A private PostgreSQL of this test's own, to kill at will."""
    yield from private_postgres()


@pytest.fixture
def small_postgres() -> Iterator[PrivatePostgres]:
    """A private PostgreSQL that takes ``MAX_CONNECTIONS`` clients."""
    yield from private_postgres(MAX_CONNECTIONS)


async def connect(server: PrivatePostgres, **options: Any) -> Any:
    return await asyncpg.connect(
        host="127.0.0.1", port=server.port, user="postgres", database="postgres", **options
    )


class StoreConnections:
    """Counts the store's connections to ``server``, over a connection of its own."""

    def __init__(self, connection: Any) -> None:
        self._connection = connection
        self.peak = 0
        self.samples = 0

    async def count(self) -> int:
        held: int = await self._connection.fetchval(STORE_CONNECTIONS, OTHER_CLIENT)
        self.peak = max(self.peak, held)
        self.samples += 1
        return held

    async def none(self) -> bool:
        return await self.count() == 0

    async def sample_until(self, stop: anyio.Event) -> None:
        while not stop.is_set():
            await self.count()
            await anyio.sleep(0.05)


@asynccontextmanager
async def store_connections(server: PrivatePostgres) -> AsyncIterator[StoreConnections]:
    connection = await connect(server)
    try:
        yield StoreConnections(connection)
    finally:
        connection.terminate()  # never waits: the server may have been killed since


@asynccontextmanager
async def sql_store(
    server: PrivatePostgres, *, wait: float, name: str | None = None
) -> AsyncIterator[SQLAlchemySessionDatabase]:
    """A store of ``POOL_SIZE`` connections on ``server`` that waits ``wait`` s at most for
    each operation; closed after (again: a test may have closed it)."""
    store = SQLAlchemySessionDatabase(
        server.url, table_name=name or unique_name("sessions"), timeout=wait, pool_size=POOL_SIZE
    )
    try:
        yield store
    finally:
        await store.aclose()


class Readers:
    """Clients that each list their sessions, again and again, until ``stop`` is set."""

    def __init__(self, client: httpx2.AsyncClient, tokens: list[str]) -> None:
        self.client = client
        self.tokens = tokens
        self.answers: Counter[str] = Counter()
        self.last_served: dict[int, float] = {}  # reader -> when it last got a 200
        self.stop = anyio.Event()

    async def read(self, reader: int) -> None:
        token = self.tokens[reader % len(self.tokens)]
        while not self.stop.is_set():
            answer = verdict(await self.client.get("/auth/sessions", headers=bearer(token)))
            self.answers[answer] += 1
            if answer == "200":
                self.last_served[reader] = time.monotonic()

    def all_served_since(self, moment: float) -> bool:
        served = self.last_served.values()
        return len(served) == READERS and all(t > moment for t in served)


async def signed_in(client: httpx2.AsyncClient, count: int) -> list[tuple[str, str]]:
    """``count`` sessions of as many users: (session id, token) each."""
    return [await login(client, uuid.uuid4()) for _ in range(count)]


async def test_a_burst_of_logins_beside_busy_readers_stays_within_the_pool(
    postgres: PrivatePostgres,
) -> None:
    logins: list[httpx2.Response] = []
    async with (
        store_connections(postgres) as held,
        sql_store(postgres, wait=PATIENT) as store,
        http(make_app(store)) as client,
    ):
        await store.create_table()
        readers = Readers(client, [token for _, token in await signed_in(client, 8)])

        async def sign_in() -> None:
            logins.append(await client.post(f"/login/{uuid.uuid4()}"))

        started = time.perf_counter()
        with anyio.fail_after(120):
            async with anyio.create_task_group() as tg:
                for reader in range(READERS):
                    tg.start_soon(readers.read, reader)
                tg.start_soon(held.sample_until, readers.stop)
                await wait_until(lambda: readers.all_served_since(0), "every reader was served")
                async with anyio.create_task_group() as burst:
                    for _ in range(LOGINS):
                        burst.start_soon(sign_in)
                readers.stop.set()
        print(
            f"{LOGINS} logins beside {READERS} readers ({readers.answers['200']} reads):"
            f" {time.perf_counter() - started:.2f} s, at most {held.peak} connections"
            f" of {POOL_SIZE} ({held.samples} samples)"
        )
        assert Counter(verdict(r) for r in logins) == {"200": LOGINS}
        assert set(readers.answers) == {"200"}, readers.answers
        assert held.samples >= 3  # counted during the storm, not only before and after
        assert held.peak <= POOL_SIZE

        for r in logins:
            assert await listed(client, r.json()["token"]) == [r.json()["id"]]
        assert await held.count() <= POOL_SIZE
        await store.aclose()
        with anyio.fail_after(30):
            await wait_until(held.none, "the closed store's connections were gone")


async def test_postgres_restarted_mid_run_is_503s_then_200s_from_the_same_store(
    postgres: PrivatePostgres,
) -> None:
    async with sql_store(postgres, wait=TIMEOUT) as store, http(make_app(store)) as client:
        await store.create_table()
        sessions = await signed_in(client, 8)
        readers = Readers(client, [token for _, token in sessions])
        with anyio.fail_after(120):
            async with anyio.create_task_group() as tg:
                for reader in range(READERS):
                    tg.start_soon(readers.read, reader)
                await wait_until(lambda: readers.all_served_since(0), "every reader was served")
                await anyio.to_thread.run_sync(postgres.kill)  # in a thread: readers go on
                await wait_until(
                    lambda: readers.answers["503"] >= READERS, "the readers met the outage"
                )
                await anyio.to_thread.run_sync(postgres.start)  # back once it takes queries
                restarted = time.monotonic()
                with anyio.fail_after(30):
                    await wait_until(
                        lambda: readers.all_served_since(restarted),
                        "every reader was served after the restart",
                    )
                recovery = time.monotonic() - restarted
                readers.stop.set()
        print(f"every reader served {recovery:.2f} s after the restart; {dict(readers.answers)}")
        assert set(readers.answers) == {"200", "503"}, readers.answers

        # The server kept what was committed before it was killed.
        for sid, token in sessions:
            assert await listed(client, token) == [sid]
        async with store_connections(postgres) as held:
            assert await held.count() <= POOL_SIZE
            await store.aclose()
            with anyio.fail_after(30):
                await wait_until(held.none, "the closed store's connections were gone")


class OtherClient:
    """Another client of the server, that takes every connection it can until ``close()``."""

    def __init__(self, server: PrivatePostgres) -> None:
        self.server = server
        self.connections: list[Any] = []

    async def take_every_connection(self) -> None:
        with anyio.fail_after(60):
            while True:
                try:
                    connection = await connect(
                        self.server, server_settings={"application_name": OTHER_CLIENT}
                    )
                except asyncpg.TooManyConnectionsError:
                    return
                self.connections.append(connection)

    def close(self) -> None:
        connections, self.connections = self.connections, []
        for connection in connections:
            connection.terminate()


async def test_every_connection_taken_by_another_client_is_503s_then_200s(
    small_postgres: PrivatePostgres,
) -> None:
    name, user = unique_name("sessions"), uuid.uuid4()
    async with sql_store(small_postgres, wait=TIMEOUT, name=name) as setup:
        await setup.create_table()
        async with http(make_app(setup)) as client:
            sid, token = await login(client, user)

    other = OtherClient(small_postgres)
    async with (
        store_connections(small_postgres) as held,
        sql_store(small_postgres, wait=TIMEOUT, name=name) as store,
        http(make_app(store)) as client,
    ):
        with anyio.fail_after(30):
            await wait_until(held.none, "the first store's connections were gone")
        try:
            await other.take_every_connection()
            # All but the counting one: the server's clients are all its superuser.
            assert len(other.connections) == MAX_CONNECTIONS - 1

            answers: list[tuple[str, float]] = []

            async def timed(method: str, path: str) -> None:
                start = time.perf_counter()
                r = await client.request(method, path, headers=bearer(token))
                answers.append((verdict(r), time.perf_counter() - start))

            with anyio.fail_after(30):
                async with anyio.create_task_group() as tg:
                    for _ in range(10):
                        tg.start_soon(timed, "GET", "/auth/sessions")
                        tg.start_soon(timed, "POST", f"/login/{uuid.uuid4()}")
            assert Counter(answer for answer, _ in answers) == {"503": 20}
            slowest = max(seconds for _, seconds in answers)
            print(f"every connection taken: 20 answers, the slowest in {slowest:.2f} s")
            assert slowest <= BOUND, f"a request took {slowest:.2f} s (timeout {TIMEOUT} s)"
        finally:
            other.close()

        async def served() -> bool:
            r = await client.get("/auth/sessions", headers=bearer(token))
            assert verdict(r) in ("200", "503"), verdict(r)
            return r.status_code == 200

        with anyio.fail_after(30):
            await wait_until(served, "the same app served again")
        assert await listed(client, token) == [sid]
        other_sid, other_token = await login(client, user)
        assert await listed(client, other_token) == [other_sid, sid]
        assert await held.count() <= POOL_SIZE
        await store.aclose()
        with anyio.fail_after(30):
            await wait_until(held.none, "the closed store's connections were gone")
