"""How the test suite opens each kind of session store (one place for all tests)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from asgi_kit import (
    InMemorySessionDatabase,
    RefreshSecret,
    Session,
    SessionDatabase,
    generate_token,
    utcnow,
)

if TYPE_CHECKING:
    import redis.asyncio as aioredis  # here: only the Redis tests need redis-py

    from asgi_kit import RedisSessionDatabase, SQLAlchemySessionDatabase

    from .cluster import LocalCluster

from .proxy import TcpProxy
from .servers import POSTGRES_ADDRESS, POSTGRES_URL, REDIS_ADDRESS, REDIS_URL, require, unique_name

STORE_KINDS = ["memory", "sqlite", "postgres", "redis", "redis-cluster"]
# Kinds that need what only some machines have, so that ``-m "not redis_cluster"`` leaves them.
KIND_MARKS = {"redis-cluster": pytest.mark.redis_cluster}


def store_url(kind: str, tmp_path: Path) -> str:
    """The URL of an isolated store of ``kind`` (the servers must be reachable)."""
    if kind == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'sessions.sqlite3'}"
    if kind == "postgres":
        require("PostgreSQL", POSTGRES_ADDRESS)
        return POSTGRES_URL
    if kind == "redis":
        require("Redis", REDIS_ADDRESS)
        return REDIS_URL
    raise ValueError(kind)


@asynccontextmanager
async def open_store(
    kind: str,
    tmp_path: Path,
    *,
    name: str | None = None,
    owner: bool | None = None,
    cluster: LocalCluster | None = None,
) -> AsyncIterator[SessionDatabase]:
    """Open an isolated, empty store of ``kind``; drop its table or keys afterwards.

    Two calls with the same ``name`` (and ``tmp_path``) open the same data, as two app
    instances would; the owner cleans it up: by default the one that created it (``name``
    None), else the one opened with ``owner=True``. ``redis-cluster`` needs ``cluster``
    (the ``redis_cluster`` fixture): a store made from its URL with ``cluster=True`` (a
    ``RedisCluster`` client) under a hash-tagged prefix.
    """
    if kind == "memory":
        yield InMemorySessionDatabase()
        return
    owner = name is None if owner is None else owner
    name = name or unique_name("sessions")
    if kind in ("redis", "redis-cluster"):
        from asgi_kit import RedisSessionDatabase

        if kind == "redis":
            url = store_url(kind, tmp_path)
            redis_store = RedisSessionDatabase(url, key_prefix=f"test:{name}:")
        else:
            assert cluster is not None, "redis-cluster stores need the redis_cluster fixture"
            redis_store = RedisSessionDatabase(
                cluster.url, cluster=True, key_prefix=f"{{test:{name}}}:"
            )
        try:
            yield redis_store
        finally:
            if owner:
                await redis_store.clear()
            await redis_store.aclose()
        return
    from asgi_kit import SQLAlchemySessionDatabase

    sql_store = SQLAlchemySessionDatabase(store_url(kind, tmp_path), table_name=name)
    await sql_store.create_table()
    try:
        yield sql_store
    finally:
        if owner:
            await sql_store.drop_table()
        await sql_store.aclose()


@asynccontextmanager
async def open_instances(
    kind: str, tmp_path: Path, count: int = 2
) -> AsyncIterator[list[SessionDatabase]]:
    """``count`` store objects over the same fresh data, as app instances have; dropped after."""
    if kind == "memory":
        raise ValueError("in-memory stores share nothing between instances")
    name = unique_name("sessions")
    async with AsyncExitStack() as stack:
        yield [
            await stack.enter_async_context(open_store(kind, tmp_path, name=name, owner=i == 0))
            for i in range(count)
        ]


async def drop(store: SessionDatabase) -> None:
    """Delete everything a server store holds (its keys, or its table)."""
    from asgi_kit import RedisSessionDatabase, SQLAlchemySessionDatabase

    if isinstance(store, RedisSessionDatabase):
        await store.clear()
    else:
        assert isinstance(store, SQLAlchemySessionDatabase)
        await store.drop_table()


@asynccontextmanager
async def store_behind(
    kind: str, proxy: TcpProxy, *, name: str | None = None, wait: float = 5.0
) -> AsyncIterator[RedisSessionDatabase | SQLAlchemySessionDatabase]:
    """A fresh store of ``kind`` (``name`` as in ``open_store``) that reaches its server
    through ``proxy`` and waits ``wait`` seconds at most for each answer."""
    from asgi_kit import RedisSessionDatabase, SQLAlchemySessionDatabase

    name = name or unique_name("sessions")
    store: RedisSessionDatabase | SQLAlchemySessionDatabase
    if kind == "redis":
        url = f"redis://127.0.0.1:{proxy.port}/0"
        store = RedisSessionDatabase(url, key_prefix=f"test:{name}:", timeout=wait)
    else:
        url = f"postgresql+asyncpg://postgres@127.0.0.1:{proxy.port}/test"
        store = SQLAlchemySessionDatabase(url, table_name=name, timeout=wait)
        await store.create_table()
    try:
        yield store
    finally:
        await proxy.restore()
        await drop(store)
        await store.aclose()


def server_of(kind: str) -> tuple[str, int]:
    """The address of ``kind``'s server; skips (or fails under CI) if it is unreachable."""
    server, address = (
        ("Redis", REDIS_ADDRESS) if kind == "redis" else ("PostgreSQL", POSTGRES_ADDRESS)
    )
    require(server, address)
    return address


def cluster_for(request: pytest.FixtureRequest, kind: str) -> LocalCluster | None:
    """The running Redis Cluster if ``kind`` needs it (started at the first ask)."""
    if kind != "redis-cluster":
        return None
    cluster: LocalCluster = request.getfixturevalue("redis_cluster")
    return cluster


@asynccontextmanager
async def raw_redis(
    request: pytest.FixtureRequest, store: RedisSessionDatabase
) -> AsyncIterator[aioredis.Redis | aioredis.RedisCluster]:
    """A client of its own on the server of ``store``, to look at what it wrote.

    ``open_store`` puts cluster stores under a hash-tagged prefix, plain ones never.
    """
    import redis.asyncio as aioredis  # here: only the Redis tests need redis-py

    client: aioredis.Redis | aioredis.RedisCluster
    if store.key_prefix.startswith("{"):
        cluster = cluster_for(request, "redis-cluster")
        assert cluster is not None
        client = await cluster.client(decode_responses=True).initialize()
    else:
        client = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        yield client
    finally:
        await client.aclose()


#: The refresh secret and access token lifetime of the store tests' refresh tokens.
REFRESH_SECRET = "k" * 32
ACCESS_LIFETIME = timedelta(minutes=5)


def next_pair(session: Session) -> Session:
    """``session`` with its next tokens, as a rotation of it writes (for ``rotate`` itself)."""
    now = utcnow()
    generation = session.refresh_generation + 1
    return session.replace(
        token=generate_token(),
        token_digest="",
        refresh_token=RefreshSecret(REFRESH_SECRET).mint(session.id, generation),
        refresh_digest=None,
        refresh_generation=generation,
        access_expires_at=now + ACCESS_LIFETIME,
        refreshed_at=now,
        last_seen_at=now,
    )
