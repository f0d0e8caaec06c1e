"""The examples of docs/how-to/stores.md, each run against its real server."""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import logging
import shutil
import sqlite3
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpx2
import pytest

from asgi_kit import (
    InMemorySessionDatabase,
    RedisSessionDatabase,
    SQLAlchemySessionDatabase,
    generate_token,
    utcnow,
)
from fastapi_users.extensions.session_manager import SessionManager

from .cluster import LocalCluster
from .servers import (
    POSTGRES_ADDRESS,
    POSTGRES_URL,
    REDIS_ADDRESS,
    REDIS_URL,
    missing,
    require,
    unique_name,
    wait_until,
)

ROOT = Path(__file__).resolve().parents[1]


def load(module: str) -> ModuleType:
    """``module`` (under docs_src.stores) imported afresh: its store reads the environment now."""
    return importlib.reload(importlib.import_module(module))


async def round_trip(manager: SessionManager) -> None:
    """Create a session, resolve its token, revoke it: the token stops working."""
    session = await manager.create_session("alice", generate_token())
    found = await manager.authenticate(session.token)
    assert found is not None
    assert found.id == session.id
    assert await manager.get_sessions("alice") == [found]
    assert await manager.revoke_session(session.id) is not None
    assert await manager.authenticate(session.token) is None
    assert await manager.get_sessions("alice") == []


async def round_trip_on_redis(manager: SessionManager, store: RedisSessionDatabase) -> None:
    """``round_trip`` through a Redis store, whose keys are removed and client closed after."""
    try:
        await round_trip(manager)
    finally:
        await store.clear()
        await store.aclose()


@pytest.mark.anyio
async def test_the_memory_store() -> None:
    example = load("docs_src.stores.memory")
    assert isinstance(example.store, InMemorySessionDatabase)
    assert example.manager.session_db is example.store
    await round_trip(example.manager)


@pytest.mark.anyio
async def test_the_sqlite_store_keeps_sessions_in_one_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "sessions.sqlite3"
    monkeypatch.setenv("SESSIONS_URL", f"sqlite:///{path}")
    example = load("docs_src.stores.sqlite")
    assert example.store.engine.dialect.driver == "aiosqlite"  # chosen for the plain URL
    await example.store.create_table()
    try:
        await round_trip(example.manager)
        kept = await example.manager.create_session("bob", generate_token())
    finally:
        await example.store.aclose()
    assert path.is_file()
    # A new process (a restart) finds the session in the file.
    again = load("docs_src.stores.sqlite")
    try:
        found = await again.manager.authenticate(kept.token)
        assert found is not None
        assert found.id == kept.id
        async with again.store.engine.connect() as conn:
            mode = (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar()
        assert mode == "wal"
    finally:
        await again.store.aclose()


@pytest.fixture
async def postgres_database() -> AsyncIterator[str]:
    """A database of its own on the test server, dropped afterwards: its plain URL."""
    require("PostgreSQL", POSTGRES_ADDRESS)
    import asyncpg

    name = unique_name("docs")
    server = urlsplit(POSTGRES_URL)
    admin = await asyncpg.connect(POSTGRES_URL.replace("postgresql+asyncpg", "postgresql"))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield f"postgresql://{server.netloc}/{name}"
        finally:
            await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.mark.postgres
@pytest.mark.anyio
async def test_the_postgres_store(postgres_database: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SESSIONS_URL", postgres_database)
    example = load("docs_src.stores.postgres")
    assert example.store.engine.dialect.driver == "asyncpg"
    try:
        await example.store.create_table()
        await example.store.create_table()  # a second worker's start-up: nothing happens
        await round_trip(example.manager)
    finally:
        await example.store.aclose()


@pytest.mark.redis
@pytest.mark.anyio
async def test_the_redis_store(monkeypatch: pytest.MonkeyPatch) -> None:
    require("Redis", REDIS_ADDRESS)
    prefix = f"{unique_name('docs')}:"
    monkeypatch.setenv("SESSIONS_URL", REDIS_URL)
    monkeypatch.setenv("SESSIONS_KEY_PREFIX", prefix)
    example = load("docs_src.stores.redis_store")
    assert example.store.key_prefix == prefix
    await round_trip_on_redis(example.manager, example.store)


@pytest.mark.redis_cluster
@pytest.mark.anyio
async def test_the_redis_cluster_store_from_a_url(
    redis_cluster: LocalCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    prefix = f"{{{unique_name('docs')}}}:"
    monkeypatch.setenv("SESSIONS_URL", redis_cluster.url)
    monkeypatch.setenv("SESSIONS_KEY_PREFIX", prefix)
    example = load("docs_src.stores.redis_cluster")
    await round_trip_on_redis(example.manager, example.store)


@pytest.mark.redis_cluster
@pytest.mark.anyio
async def test_the_redis_cluster_store_on_a_client(
    redis_cluster: LocalCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    nodes = ",".join(f"127.0.0.1:{port}" for port in redis_cluster.ports)
    monkeypatch.setenv("SESSIONS_CLUSTER_NODES", nodes)
    example = load("docs_src.stores.redis_cluster_client")
    assert example.store.key_prefix == "{myapp}:"
    await example.store.clear()  # the example's fixed prefix: start from nothing
    try:
        await round_trip_on_redis(SessionManager(session_db=example.store), example.store)
        assert await example.client.ping()  # aclose() left the app's own client open
    finally:
        await example.client.aclose()


def test_a_cluster_prefix_needs_a_hash_tag() -> None:
    from asgi_kit import ConfigurationError

    for prefix in ("myapp:", "{}x:"):
        with pytest.raises(ConfigurationError, match="hash tag"):
            RedisSessionDatabase("redis://127.0.0.1:7000", cluster=True, key_prefix=prefix)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("memory://", InMemorySessionDatabase),
        ("sqlite:///{tmp}/sessions.sqlite3", SQLAlchemySessionDatabase),
        ("postgresql://app@db.internal/app", SQLAlchemySessionDatabase),
        ("redis://cache:6379/0", RedisSessionDatabase),
    ],
)
async def test_session_database_from_url_picks_the_store(
    url: str, kind: type, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SESSIONS_URL", url.format(tmp=tmp_path))
    store = load("docs_src.stores.from_url").store
    assert type(store) is kind
    if kind is InMemorySessionDatabase:
        await round_trip(SessionManager(session_db=store))
    elif url.startswith("sqlite"):
        await store.create_table()
        await round_trip(SessionManager(session_db=store))
    if hasattr(store, "aclose"):
        await store.aclose()  # nothing connected to the servers named: nothing to wait for


def test_session_database_from_url_refuses_other_schemes(monkeypatch: pytest.MonkeyPatch) -> None:
    from asgi_kit import ConfigurationError

    monkeypatch.setenv("SESSIONS_URL", "mysql://app@db/app")
    with pytest.raises(ConfigurationError, match="memory://"):
        load("docs_src.stores.from_url")


@pytest.mark.anyio
async def test_the_app_creates_its_table_and_purges_expired_sessions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("SESSIONS_URL", f"sqlite:///{tmp_path / 'sessions.sqlite3'}")
    example = load("docs_src.stores.app")
    manager: SessionManager = example.manager
    caplog.set_level(logging.INFO, logger="asgi_kit.sessions")
    await example.store.create_table()  # (as an earlier run of the app did)
    ended = await manager.create_session("carol", generate_token(), expires_at=utcnow())
    async with example.app.router.lifespan_context(example.app):
        # The purger's first round reports the expired session to on_after_end.
        line = f"session ended id={ended.id} user=carol reason=expired"
        await wait_until(lambda: line in caplog.messages, "the purger ran")
        session = await manager.create_session(uuid.uuid4(), generate_token())
        transport = httpx2.ASGITransport(example.app)
        async with httpx2.AsyncClient(transport=transport, base_url="http://app") as client:
            headers = {"Authorization": f"Bearer {session.token}"}
            listed = await client.get("/auth/sessions", headers=headers)
        assert listed.status_code == 200
        assert [s["id"] for s in listed.json()] == [str(session.id)]


# docs/how-to/migrations.md


def alembic_config(tmp_path: Path) -> Any:
    """An Alembic project in ``tmp_path`` whose env.py is the page's, as ``alembic init``
    (then the page's env.py) leaves it."""
    if importlib.util.find_spec("alembic") is None:
        missing("alembic is not installed (the dev extra has it)", "pip install -e '.[dev]'")
    import alembic
    from alembic.config import Config

    scripts = tmp_path / "migrations"
    (scripts / "versions").mkdir(parents=True)
    shutil.copy(ROOT / "docs_src/migrations/env.py", scripts / "env.py")
    template = Path(alembic.__file__).parent / "templates/async/script.py.mako"
    shutil.copy(template, scripts / "script.py.mako")
    config = Config()
    config.set_main_option("script_location", str(scripts))
    return config


def tables(path: Path) -> dict[str, set[str]]:
    """The tables of the SQLite file at ``path``, each with its index names."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        rows = db.execute("SELECT type, name, tbl_name FROM sqlite_master").fetchall()
    found: dict[str, set[str]] = {}
    for kind, name, table in rows:
        if kind == "table":
            found.setdefault(name, set())
        elif kind == "index" and not name.startswith("sqlite_autoindex"):
            found.setdefault(table, set()).add(name)
    return found


def test_alembic_autogenerate_creates_the_sessions_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = alembic_config(tmp_path)
    from alembic import command
    from alembic.util import AutogenerateDiffsDetected

    database = tmp_path / "app.sqlite3"
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{database}")
    models = importlib.reload(importlib.import_module("docs_src.migrations.models"))
    with pytest.raises(AutogenerateDiffsDetected):
        command.check(config)  # the empty database lacks both tables
    command.revision(config, message="users and sessions", autogenerate=True)
    (migration,) = (tmp_path / "migrations/versions").glob("*.py")
    text = migration.read_text()
    assert "op.create_table('asgi_kit_sessions'" in text
    assert "op.create_table('users'" in text
    assert "op.drop_table('asgi_kit_sessions')" in text

    command.upgrade(config, "head")
    created = tables(database)
    assert created["asgi_kit_sessions"] == {
        "ix_asgi_kit_sessions_token_digest",
        "ix_asgi_kit_sessions_user_id",
        "ix_asgi_kit_sessions_deadline",
    }
    assert "users" in created
    command.check(config)  # nothing left to migrate: the table is the store's own

    async def use_the_table() -> None:
        assert models.store.table is models.sessions
        await round_trip(SessionManager(session_db=models.store))
        await models.store.aclose()
        await models.engine.dispose()  # the app's engine: the store leaves it open

    anyio.run(use_the_table)

    command.downgrade(config, "base")
    assert set(tables(database)) == {"alembic_version"}
