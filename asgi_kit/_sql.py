"""``SQLAlchemySessionDatabase``: sessions in one SQL table (SQLite or PostgreSQL)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone
from typing import Any
from uuid import UUID

import anyio
from sqlalchemy import (
    Column,
    ColumnElement,
    DateTime,
    Float,
    Index,
    MetaData,
    Row,
    String,
    Table,
    Uuid,
    bindparam,
    delete,
    event,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from ._clock import utcnow
from ._errors import DuplicateSessionError, StoreUnavailableError
from ._models import Session

logger = logging.getLogger("asgi_kit")

_ASYNC_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
}


def session_table(metadata: MetaData, name: str = "asgi_kit_sessions") -> Table:
    """Define the sessions table in ``metadata`` (plug it into your own migrations).

    One row per session, keyed by id, with a unique index on the token digest (the raw
    token is never stored) and indexes on the user id and on ``deadline``, the moment the
    session stops being active (kept up to date on every write).
    """
    return Table(
        name,
        metadata,
        Column("id", Uuid, primary_key=True),
        Column("token_digest", String(64), nullable=False),
        Column("user_id", Uuid, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("expires_at", DateTime(timezone=True)),
        Column("idle_timeout", Float),
        Column("last_seen_at", DateTime(timezone=True), nullable=False),
        Column("deadline", DateTime(timezone=True)),
        Column("user_agent", String(512)),
        Column("ip_address", String(45)),
        Index(f"ix_{name}_token_digest", "token_digest", unique=True),
        Index(f"ix_{name}_user_id", "user_id"),
        Index(f"ix_{name}_deadline", "deadline"),
    )


def make_engine(url: str) -> AsyncEngine:
    """An async engine for ``url``; plain ``sqlite://`` and ``postgresql://`` get async drivers."""
    parsed = make_url(url)
    parsed = parsed.set(drivername=_ASYNC_DRIVERS.get(parsed.drivername, parsed.drivername))
    if parsed.get_backend_name() != "sqlite":
        return create_async_engine(parsed, pool_pre_ping=True)
    engine = create_async_engine(parsed, connect_args={"timeout": 30})

    @event.listens_for(engine.sync_engine, "connect")
    def _tune(dbapi_connection: Any, _record: Any) -> None:
        # WAL lets readers run beside the writer; busy_timeout queues writers instead of failing.
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    return engine


class SQLAlchemySessionDatabase:
    """Sessions in one table through SQLAlchemy's async engine.

    ``url_or_engine`` is a URL (``sqlite:///sessions.sqlite3``,
    ``postgresql://user@host/db``; async drivers are chosen for you) or an ``AsyncEngine``
    you own. Create the table once with ``await store.create_table()``, or add
    ``session_table(your_metadata)`` to your own migrations and pass ``table=``::

        store = SQLAlchemySessionDatabase("sqlite:///sessions.sqlite3")
        await store.create_table()
        manager = SessionManager(session_db=store)

    Only token digests are stored. Expired rows are never returned; ``purge_expired()``
    deletes them, and ``purge_periodically(interval)`` does so in a background task.
    """

    def __init__(
        self,
        url_or_engine: str | AsyncEngine,
        *,
        table_name: str = "asgi_kit_sessions",
        table: Table | None = None,
    ) -> None:
        self._owns_engine = isinstance(url_or_engine, str)
        self.engine = (
            make_engine(url_or_engine) if isinstance(url_or_engine, str) else url_or_engine
        )
        self.table = table if table is not None else session_table(MetaData(), table_name)
        c = self.table.c
        self._select = select(self.table)
        self._by_digest = self._select.where(c.token_digest == bindparam("key"), _alive(c))
        self._by_id = self._select.where(c.id == bindparam("key"), _alive(c))

    async def create_table(self) -> None:
        """Create the table and its indexes if they do not exist yet."""
        async with self._connect() as conn:
            await conn.run_sync(self.table.create, checkfirst=True)

    async def drop_table(self) -> None:
        """Drop the table (all sessions with it)."""
        async with self._connect() as conn:
            await conn.run_sync(self.table.drop, checkfirst=True)

    async def aclose(self) -> None:
        """Dispose of the engine if this store created it."""
        if self._owns_engine:
            await self.engine.dispose()

    async def create(self, session: Session) -> None:
        """Store a new session; raise ``DuplicateSessionError`` if its id or token is taken."""
        try:
            async with self._connect() as conn:
                await conn.execute(insert(self.table), [_row(session)])
        except IntegrityError as exc:
            raise DuplicateSessionError("a session with this id or token already exists") from exc

    async def get_by_token_digest(self, digest: str) -> Session | None:
        """Return the active session whose token has this digest, or None."""
        return await self._one(self._by_digest, digest)

    async def get(self, session_id: UUID) -> Session | None:
        """Return the active session with this id, or None."""
        return await self._one(self._by_id, session_id)

    async def list_for_user(self, user_id: UUID) -> list[Session]:
        """Return the user's active sessions, newest first."""
        c = self.table.c
        query = self._select.where(c.user_id == user_id, _alive(c)).order_by(c.created_at.desc())
        async with self._connect() as conn:
            rows = (await conn.execute(query, {"now": utcnow()})).all()
        return [_session(r) for r in rows]

    async def touch(self, session: Session, last_seen_at: datetime) -> None:
        """Record activity on ``session`` (nothing happens if it no longer exists)."""
        deadline = session.replace(last_seen_at=last_seen_at).deadline
        query = update(self.table).where(self.table.c.id == session.id)
        async with self._connect() as conn:
            await conn.execute(query.values(last_seen_at=last_seen_at, deadline=deadline))

    async def delete(self, session_id: UUID) -> Session | None:
        """Delete one session; return it if it existed and was active, else None."""
        ended = await self._delete(self.table.c.id == session_id)
        return ended[0] if ended else None

    async def delete_for_user(self, user_id: UUID, *, keep: Sequence[UUID] = ()) -> list[Session]:
        """Delete all of a user's sessions except those in ``keep``; return the active ones."""
        c = self.table.c
        where = c.user_id == user_id
        if keep:
            where = where & c.id.not_in(list(keep))
        return await self._delete(where)

    async def purge_expired(self, now: datetime | None = None) -> int:
        """Delete sessions that stopped being active before ``now``; return how many."""
        query = delete(self.table).where(self.table.c.deadline <= (now or utcnow()))
        async with self._connect() as conn:
            return (await conn.execute(query)).rowcount

    async def purge_periodically(self, interval: float = 3600) -> None:
        """Run ``purge_expired`` every ``interval`` seconds, forever (start it in a task)."""
        while True:
            await self.purge_expired()
            await anyio.sleep(interval)

    async def _one(self, query: Any, key: object) -> Session | None:
        async with self._connect() as conn:
            row = (await conn.execute(query, {"key": key, "now": utcnow()})).first()
        return None if row is None else _session(row)

    async def _delete(self, where: ColumnElement[bool]) -> list[Session]:
        query = delete(self.table).where(where).returning(*self.table.c)
        async with self._connect() as conn:
            rows = (await conn.execute(query)).all()
        now = utcnow()
        return [s for s in map(_session, rows) if s.is_active(now)]

    @asynccontextmanager
    async def _connect(self) -> AsyncIterator[AsyncConnection]:
        """A connection in a transaction; server trouble becomes ``StoreUnavailableError``."""
        try:
            async with self.engine.begin() as conn:
                yield conn
        except (OperationalError, InterfaceError, OSError, TimeoutError) as exc:
            raise _unavailable(exc) from exc
        except DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
            raise _unavailable(exc) from exc


def _unavailable(exc: BaseException) -> StoreUnavailableError:
    # The driver's own message only: SQLAlchemy's str() would add the statement's parameters.
    cause = getattr(exc, "orig", None) or exc
    reason = f"{type(cause).__name__}: {str(cause).splitlines()[0] if str(cause) else ''}"
    logger.warning("session store unavailable (%s)", reason)
    return StoreUnavailableError(f"session store unavailable ({reason})")


def _alive(c: Any) -> ColumnElement[bool]:
    return or_(c.deadline.is_(None), c.deadline > bindparam("now"))


def _row(session: Session) -> dict[str, Any]:
    idle = session.idle_timeout
    return {
        "id": session.id,
        "token_digest": session.token_digest,
        "user_id": session.user_id,
        "created_at": session.created_at,
        "expires_at": session.expires_at,
        "idle_timeout": None if idle is None else idle.total_seconds(),
        "last_seen_at": session.seen_at,
        "deadline": session.deadline,
        "user_agent": session.user_agent,
        "ip_address": session.ip_address,
    }


def _session(row: Row[Any]) -> Session:
    m = row._mapping
    return Session(
        id=m["id"],
        user_id=m["user_id"],
        token_digest=m["token_digest"],
        created_at=_utc(m["created_at"]),
        expires_at=None if m["expires_at"] is None else _utc(m["expires_at"]),
        idle_timeout=None if m["idle_timeout"] is None else timedelta(seconds=m["idle_timeout"]),
        last_seen_at=_utc(m["last_seen_at"]),
        user_agent=m["user_agent"],
        ip_address=m["ip_address"],
    )


def _utc(value: datetime) -> datetime:
    # SQLite keeps no time zone; everything written was UTC.
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value
