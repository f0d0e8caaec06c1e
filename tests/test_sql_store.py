"""What only the SQL store does: its table, engines, URLs, and never a raw token in a row."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

import anyio
import pytest
from sqlalchemy import MetaData, func, select
from sqlalchemy.ext.asyncio import create_async_engine

from asgi_kit import (
    ConfigurationError,
    InMemorySessionDatabase,
    SQLAlchemySessionDatabase,
    StoreUnavailableError,
    session_database_from_url,
    session_table,
    utcnow,
)
from fastapi_users.extensions.session_manager import SessionManager

from .servers import unique_name
from .stores import open_store, store_url

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_rows_never_hold_the_raw_token(kind: str, tmp_path: Path) -> None:
    async with open_store(kind, tmp_path) as store:
        assert isinstance(store, SQLAlchemySessionDatabase)
        token = "raw-secret-token-" + uuid.uuid4().hex
        await SessionManager(session_db=store).create_session(
            uuid.uuid4(), token, user_agent="UA", ip_address="192.0.2.1"
        )
        async with store.engine.connect() as conn:
            rows = (await conn.execute(select(store.table))).all()
        assert len(rows) == 1
        dumped = repr([tuple(r) for r in rows])
        assert "raw-secret-token" not in dumped
        assert token not in dumped


async def test_sqlite_file_survives_a_new_store_object(tmp_path: Path) -> None:
    url = store_url("sqlite", tmp_path)
    first = SQLAlchemySessionDatabase(url)
    await first.create_table()
    session = await SessionManager(session_db=first).create_session(uuid.uuid4(), "tok")
    await first.aclose()
    second = SQLAlchemySessionDatabase(url)
    await second.create_table()  # idempotent
    assert await SessionManager(session_db=second).authenticate("tok") == session
    await second.aclose()


async def test_table_in_your_own_metadata_and_engine(tmp_path: Path) -> None:
    metadata = MetaData()
    table = session_table(metadata, unique_name("app_sessions"))
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'app.sqlite3'}")
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)  # as an app's own migrations would
    store = SQLAlchemySessionDatabase(engine, table=table)
    manager = SessionManager(session_db=store)
    session = await manager.create_session(uuid.uuid4(), "tok")
    assert await manager.get_sessions(session.user_id) == [session]
    await store.aclose()  # not ours: the engine keeps working
    async with engine.connect() as conn:
        count = (await conn.execute(select(func.count()).select_from(table))).scalar()
    assert count == 1
    await engine.dispose()


def test_urls_get_async_drivers(tmp_path: Path) -> None:
    cases = {
        f"sqlite:///{tmp_path}/a.sqlite3": "sqlite+aiosqlite",
        "postgresql://u@h/db": "postgresql+asyncpg",
        "postgres://u@h/db": "postgresql+asyncpg",
    }
    for url, driver in cases.items():
        store = session_database_from_url(url)
        assert isinstance(store, SQLAlchemySessionDatabase)
        assert store.engine.url.drivername == driver
    assert isinstance(session_database_from_url("memory://"), InMemorySessionDatabase)
    with pytest.raises(ConfigurationError, match="unsupported"):
        session_database_from_url("mysql://u@h/db")


async def test_purge_periodically_removes_expired_rows(tmp_path: Path) -> None:
    async with open_store("sqlite", tmp_path) as store:
        assert isinstance(store, SQLAlchemySessionDatabase)
        manager = SessionManager(session_db=store)
        await manager.create_session(
            uuid.uuid4(), "short", expires_at=utcnow() + timedelta(milliseconds=50)
        )
        keep = await manager.create_session(uuid.uuid4(), "long")
        await anyio.sleep(0.06)
        async with anyio.create_task_group() as tg:
            tg.start_soon(store.purge_periodically, 0.01)
            await anyio.sleep(0.1)
            tg.cancel_scope.cancel()
        async with store.engine.connect() as conn:
            ids = (await conn.execute(select(store.table.c.id))).scalars().all()
        assert ids == [keep.id]


async def test_unreachable_server_raises_store_unavailable() -> None:
    store = SQLAlchemySessionDatabase("postgresql://postgres@127.0.0.1:1/test")
    with pytest.raises(StoreUnavailableError, match="unavailable"):
        await store.get_by_token_digest("0" * 64)
    await store.aclose()
