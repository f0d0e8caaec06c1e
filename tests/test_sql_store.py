"""What only the SQL store does: its table, engines, URLs, and never a raw token in a row."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

import anyio
import pytest
from sqlalchemy import MetaData, func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import QueuePool

from asgi_kit import (
    ConfigurationError,
    InMemorySessionDatabase,
    Session,
    SQLAlchemySessionDatabase,
    StoreUnavailableError,
    generate_token,
    session_database_from_url,
    session_table,
    utcnow,
)
from fastapi_users.extensions.session_manager import SessionManager

from .servers import POSTGRES_ADDRESS, POSTGRES_URL, require, unique_name
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


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_user_ids_are_stored_as_their_text(kind: str, tmp_path: Path) -> None:
    users = [uuid.uuid4(), "auth0|5f7c8ec7c33c6c004bbafe82", "42", "🙂" * 255]
    sessions = [Session(user_id=u, token=generate_token()) for u in users]
    async with open_store(kind, tmp_path) as store:
        assert isinstance(store, SQLAlchemySessionDatabase)
        for s in sessions:
            await store.create(s)
        async with store.engine.connect() as conn:
            stored = (await conn.execute(select(store.table.c.user_id))).scalars().all()
        assert sorted(stored) == sorted(str(u) for u in users)  # a UUID in canonical form
        for s in sessions:  # the token look-up runs on the driver: it reads them back too
            got = await store.get_by_token_digest(s.token_digest)
            assert got is not None
            assert got.user_id == s.user_id
            assert type(got.user_id) is type(s.user_id)


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_idle_timeouts_read_back_exactly(kind: str, tmp_path: Path) -> None:
    idle = timedelta(days=30, microseconds=7)
    session = Session(user_id=uuid.uuid4(), token=generate_token(), idle_timeout=idle)
    async with open_store(kind, tmp_path) as store:
        assert isinstance(store, SQLAlchemySessionDatabase)
        await store.create(session)
        for got in (
            await store.get_by_token_digest(session.token_digest),
            await store.get(session.id),
            *await store.list_for_user(session.user_id),
        ):
            assert got == session
            assert got.idle_timeout == idle
        async with store.engine.connect() as conn:
            stored = (await conn.execute(select(store.table.c.idle_timeout_us))).scalar()
        assert stored == idle // timedelta(microseconds=1)


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


def checked_out(engine: AsyncEngine) -> int:
    pool = engine.sync_engine.pool
    assert isinstance(pool, QueuePool)
    return pool.checkedout()


async def test_only_a_store_that_made_its_engine_keeps_a_connection(tmp_path: Path) -> None:
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'app.sqlite3'}")
    borrowed = SQLAlchemySessionDatabase(engine)
    owned = SQLAlchemySessionDatabase(f"sqlite:///{tmp_path / 'own.sqlite3'}")
    for store in (borrowed, owned):
        await store.create_table()
        session = await SessionManager(session_db=store).create_session(uuid.uuid4(), "tok")
        assert await store.get_by_token_digest(session.token_digest) == session
    # The app may dispose of its engine without closing the store: nothing is left out.
    assert checked_out(engine) == 0
    await engine.dispose()
    assert checked_out(owned.engine) == 1  # kept for look-ups...
    await owned.aclose()
    assert checked_out(owned.engine) == 0  # ...until aclose()


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


async def test_purge_periodically_refuses_a_non_positive_interval(tmp_path: Path) -> None:
    async with open_store("sqlite", tmp_path) as store:
        assert isinstance(store, SQLAlchemySessionDatabase)
        with pytest.raises(ConfigurationError, match="interval"):
            await store.purge_periodically(0)


async def test_a_pool_with_no_free_connection_raises_store_unavailable() -> None:
    require("PostgreSQL", POSTGRES_ADDRESS)
    engine = create_async_engine(POSTGRES_URL, pool_size=1, max_overflow=0, pool_timeout=0.1)
    store = SQLAlchemySessionDatabase(engine, table_name=unique_name("sessions"))
    await store.create_table()
    session = await SessionManager(session_db=store).create_session(uuid.uuid4(), "tok")
    digest, user = session.token_digest, session.user_id
    try:
        assert await store.get_by_token_digest(digest) == session
        assert await store.list_for_user(user) == [session]
        async with engine.connect() as busy:
            await busy.execute(text("SELECT 1"))
            with pytest.raises(StoreUnavailableError, match="TimeoutError"):
                await store.get_by_token_digest(digest)
            with pytest.raises(StoreUnavailableError, match="TimeoutError"):
                await store.list_for_user(user)
        assert await store.get_by_token_digest(digest) == session
    finally:
        await store.drop_table()
        await store.aclose()
        await engine.dispose()


def test_one_store_serves_one_event_loop_after_another(tmp_path: Path) -> None:
    # As the synchronous SessionManager calls do: each anyio.run() is a new event loop.
    store = SQLAlchemySessionDatabase(store_url("sqlite", tmp_path))
    session = Session(user_id=uuid.uuid4(), token=generate_token())

    async def set_up() -> None:
        await store.create_table()
        await store.create(session)

    anyio.run(set_up)
    for _ in range(3):
        assert anyio.run(store.get_by_token_digest, session.token_digest) == session
        assert anyio.run(store.list_for_user, session.user_id) == [session]
    anyio.run(store.aclose)


def sqlite_files(path: Path) -> list[Path]:
    return [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]


async def test_a_deleted_sqlite_file_accepts_no_session(tmp_path: Path) -> None:
    path = tmp_path / "sessions.sqlite3"
    store = SQLAlchemySessionDatabase(f"sqlite:///{path}")
    await store.create_table()
    session = await SessionManager(session_db=store).create_session(uuid.uuid4(), "tok")
    assert await store.get_by_token_digest(session.token_digest) == session  # kept connection
    for file in sqlite_files(path):
        file.unlink(missing_ok=True)
    # The kept connection could still read the unlinked file: it is not asked.
    with pytest.raises(StoreUnavailableError, match="no such table"):
        await store.get_by_token_digest(session.token_digest)
    with pytest.raises(StoreUnavailableError, match="no such table"):
        await store.list_for_user(session.user_id)
    await store.aclose()


async def test_a_replaced_sqlite_file_is_the_one_read(tmp_path: Path) -> None:
    path, other = tmp_path / "sessions.sqlite3", tmp_path / "restored.sqlite3"
    store = SQLAlchemySessionDatabase(f"sqlite:///{path}")
    replacement = SQLAlchemySessionDatabase(f"sqlite:///{other}")
    for db in (store, replacement):
        await db.create_table()
    old = await SessionManager(session_db=store).create_session(uuid.uuid4(), "old")
    new = await SessionManager(session_db=replacement).create_session(uuid.uuid4(), "new")
    await replacement.aclose()
    assert await store.get_by_token_digest(old.token_digest) == old
    for file in sqlite_files(path)[1:]:
        file.unlink(missing_ok=True)
    other.replace(path)  # as a restore from a backup would
    assert await store.get_by_token_digest(old.token_digest) is None
    assert await store.get_by_token_digest(new.token_digest) == new
    assert await store.list_for_user(new.user_id) == [new]
    assert await store.delete(new.id) == new
    await store.aclose()
