"""A steady load opens each store's connections once, then none: counted, not timed.

64 clients at once send requests through ``BearerAuthMiddleware`` (each one a token
look-up), in two rounds of the same load. The first round may open connections, at most
the store's ``pool_size``; the second opens none. Counted twice: by the pool's own
``connect`` events, and by the server (PostgreSQL's ``pg_stat_activity``, Redis's
``CLIENT LIST``), so a connection opened past SQLAlchemy's pool would show too. The
server counts every connection to the test database since a moment: nothing else may
connect to it while these tests run (as on CI: the suite runs one test at a time).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio
import asyncpg  # type: ignore[import-untyped]
import httpx2
import pytest
import redis.asyncio as aioredis
from sqlalchemy import event
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from asgi_kit import (
    BearerAuthMiddleware,
    ConfigurationError,
    RedisSessionDatabase,
    SessionDatabase,
    SQLAlchemySessionDatabase,
    generate_token,
    utcnow,
)
from fastapi_users.extensions.session_manager import SessionManager

from .servers import (
    POSTGRES_ADDRESS,
    POSTGRES_URL,
    REDIS_ADDRESS,
    REDIS_URL,
    require,
    unique_name,
    wait_until,
)

pytestmark = pytest.mark.anyio

CLIENTS = 64
REQUESTS_PER_CLIENT = 10
USERS = 200
POOL_SIZE = 6


def app_for(store: SessionDatabase) -> BearerAuthMiddleware:
    """An app whose one route answers the session's user id: a look-up per request."""

    async def whoami(request: Request) -> PlainTextResponse:
        return PlainTextResponse(str(request.user.identity))

    routes = [Route("/", whoami)]
    return BearerAuthMiddleware(Starlette(routes=routes), session_db=store)


async def steady_load(store: SessionDatabase, tokens: dict[str, str]) -> None:
    """``CLIENTS`` clients at once, each sending ``REQUESTS_PER_CLIENT`` requests in turn."""
    transport = httpx2.ASGITransport(app=app_for(store))
    pairs = list(tokens.items())
    async with httpx2.AsyncClient(transport=transport, base_url="http://testserver") as client:

        async def one_client(first: int) -> None:
            for i in range(REQUESTS_PER_CLIENT):
                user, token = pairs[(first * REQUESTS_PER_CLIENT + i) % len(pairs)]
                r = await client.get("/", headers={"Authorization": f"Bearer {token}"})
                assert (r.status_code, r.text) == (200, user)

        with anyio.fail_after(120):
            async with anyio.create_task_group() as tg:
                for first in range(CLIENTS):
                    tg.start_soon(one_client, first)


async def signed_in(store: SessionDatabase) -> dict[str, str]:
    """``USERS`` sessions in ``store``: user id -> token."""
    manager = SessionManager(session_db=store)
    tokens = {str(uuid.uuid4()): generate_token() for _ in range(USERS)}
    for user, token in tokens.items():
        await manager.create_session(user, token)
    return tokens


def count_connects(store: SQLAlchemySessionDatabase) -> list[int]:
    """A one-item list counting the connections ``store``'s pool opens from now on."""
    opened = [0]

    def _connected(*_args: Any) -> None:
        opened[0] += 1

    event.listen(store.engine.sync_engine, "connect", _connected)
    return opened


@asynccontextmanager
async def postgres_backends() -> AsyncIterator[Callable[[datetime], Awaitable[int]]]:
    """A function: how many client connections PostgreSQL accepted since a moment."""
    counter = await asyncpg.connect(POSTGRES_URL.replace("+asyncpg", ""))
    query = (
        "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'"
        " AND datname = current_database() AND pid <> pg_backend_pid() AND backend_start >= $1"
    )

    async def since(moment: datetime) -> int:
        return int(await counter.fetchval(query, moment))

    try:
        yield since
    finally:
        await counter.close()


@pytest.mark.parametrize("kind", [pytest.param("postgres", marks=pytest.mark.postgres), "sqlite"])
async def test_the_sql_store_opens_its_pool_once_under_64_concurrent_look_ups(
    kind: str, tmp_path: Path
) -> None:
    if kind == "sqlite":
        await sql_store_under_load(f"sqlite:///{tmp_path / 'sessions.sqlite3'}", None)
        return
    require("PostgreSQL", POSTGRES_ADDRESS)
    async with postgres_backends() as backends:
        await sql_store_under_load(POSTGRES_URL, backends)


async def sql_store_under_load(
    url: str, backends: Callable[[datetime], Awaitable[int]] | None
) -> None:
    """Two rounds of the steady load; ``backends`` counts on the server (None: SQLite)."""
    start = utcnow()
    store = SQLAlchemySessionDatabase(url, table_name=unique_name("s"), pool_size=POOL_SIZE)
    opened = count_connects(store)
    try:
        await store.create_table()
        tokens = await signed_in(store)
        await steady_load(store, tokens)
        assert 1 <= opened[0] <= POOL_SIZE
        if backends is not None:
            assert 1 <= await backends(start) <= POOL_SIZE
        second_round, before = utcnow(), opened[0]
        await steady_load(store, tokens)
        assert opened[0] == before  # the same load again: no connection opened
        if backends is not None:
            assert await backends(second_round) == 0
    finally:
        await store.drop_table()
        await store.aclose()
    if backends is not None:

        async def all_closed() -> bool:
            return await backends(start) == 0

        await wait_until(all_closed, "aclose() closes every connection of the store")


async def test_redis_opens_a_bounded_set_of_connections_once() -> None:
    require("Redis", REDIS_ADDRESS)
    name = unique_name("reuse")
    separator = "&" if "?" in REDIS_URL else "?"
    store = RedisSessionDatabase(f"{REDIS_URL}{separator}client_name={name}", key_prefix=f"{name}:")
    admin = aioredis.Redis.from_url(REDIS_URL)

    async def connections() -> set[str]:
        clients = await admin.client_list()
        return {c["id"] for c in clients if c["name"] == name}

    try:
        tokens = await signed_in(store)
        await steady_load(store, tokens)
        first = await connections()
        assert 1 <= len(first) <= CLIENTS
        await steady_load(store, tokens)
        assert await connections() == first  # the same connections, none opened or closed
    finally:
        await store.clear()
        await store.aclose()
    try:

        async def all_closed() -> bool:
            return not await connections()

        await wait_until(all_closed, "aclose() closes every connection of the store")
    finally:
        await admin.aclose()


@pytest.mark.parametrize("size", [0, 1, -3, True, 2.5, "10", None])
def test_pool_size_below_two_or_not_an_int_is_refused(size: Any, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="pool_size must be an int of at least 2"):
        SQLAlchemySessionDatabase(f"sqlite:///{tmp_path / 's.sqlite3'}", pool_size=size)


@pytest.mark.postgres
async def test_aclose_while_requests_run_leaves_no_connection_open() -> None:
    require("PostgreSQL", POSTGRES_ADDRESS)
    async with postgres_backends() as backends:
        start = utcnow()
        store = SQLAlchemySessionDatabase(POSTGRES_URL, table_name=unique_name("s"))
        await store.create_table()
        tokens = await signed_in(store)
        users = list(tokens)
        stop = anyio.Event()
        transport = httpx2.ASGITransport(app=app_for(store))
        client = httpx2.AsyncClient(transport=transport, base_url="http://testserver")

        async def one_client(first: int) -> None:
            # Look-ups, and listings through the pool, until the store is closed under them.
            manager = SessionManager(session_db=store)
            i = first
            while not stop.is_set():
                user = users[i % len(users)]
                r = await client.get("/", headers={"Authorization": f"Bearer {tokens[user]}"})
                assert r.status_code == 200
                assert len(await manager.get_sessions(user)) == 1
                i += 1

        try:
            async with anyio.create_task_group() as tg:
                for first in range(32):
                    tg.start_soon(one_client, first)
                await anyio.sleep(0.5)
                stop.set()
                await store.aclose()  # while requests are in flight
        finally:
            await client.aclose()
            # A new pool of the same store, for the clean-up only.
            await store.drop_table()
            await store.aclose()

        async def all_closed() -> bool:
            return await backends(start) == 0

        await wait_until(all_closed, "every connection is closed, those in use at aclose() too")
