"""``SQLAlchemySessionDatabase``: sessions in one SQL table (SQLite or PostgreSQL)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import (
    ColumnElement,
    MetaData,
    Table,
    bindparam,
    delete,
    event,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.schema import CreateIndex, CreateTable

from .._clock import as_utc, utcnow
from .._errors import ConfigurationError, DuplicateSessionError, StoreUnavailableError
from .._models import Session
from .._user_ids import UserId
from .server import deadline, purge_periodically, store_unavailable
from .sql_reader import TIMEOUTS, DigestReader, discard, watch_file
from .sql_schema import (
    COLUMNS,
    ROTATED,
    active_session,
    active_sessions,
    session_from_row,
    session_row,
    session_table,
)

__all__ = ["SQLAlchemySessionDatabase", "make_engine", "session_table"]

_ASYNC_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
}
#: Seconds a SQLite connection waits for a lock (its busy_timeout) before it fails.
_SQLITE_WAIT = 30
#: Errors (besides a lost connection) that mean the server cannot answer right now.
_UNAVAILABLE = (PoolTimeoutError, OSError, *TIMEOUTS)


def make_engine(url: str, *, timeout: float = 5.0, pool_size: int = 10) -> AsyncEngine:
    """An async engine for ``url``; plain ``sqlite://`` and ``postgresql://`` get async drivers.

    Its pool holds at most ``pool_size`` connections, opened as needed and then kept: no
    overflow, whose connections SQLAlchemy closes on return, so that a steady load opened
    and closed connections all the time. A request beyond them waits for one to be free.
    PostgreSQL gets ``timeout`` seconds to connect, to answer each statement and to free a
    pooled connection; SQLite waits up to 30 s for a lock, and its connections are
    discarded once the file at the path is another one or none (see ``watch_file``).
    Error messages never show a statement's parameters (``hide_parameters``): they are
    token digests.
    """
    parsed = make_url(url)
    parsed = parsed.set(drivername=_ASYNC_DRIVERS.get(parsed.drivername, parsed.drivername))
    sizes: dict[str, Any] = {"pool_size": pool_size, "max_overflow": 0}
    if parsed.get_backend_name() != "sqlite":
        limits = {"timeout": timeout, "command_timeout": timeout}
        connect_args = limits if parsed.get_driver_name() == "asyncpg" else {}
        # Pre-ping on the pool's check-outs (writes, listings) finds a connection that a
        # server restart left dead before it fails a request; look-ups never check out.
        return create_async_engine(
            parsed,
            pool_pre_ping=True,
            pool_timeout=timeout,
            connect_args=connect_args,
            hide_parameters=True,
            **sizes,
        )
    if parsed.database in (None, "", ":memory:"):
        sizes = {}  # one connection, everybody's (a StaticPool): the database lives in it
    engine = create_async_engine(
        parsed, connect_args={"timeout": _SQLITE_WAIT}, hide_parameters=True, **sizes
    )

    @event.listens_for(engine.sync_engine, "connect")
    def _tune(dbapi_connection: Any, _record: Any) -> None:
        # busy_timeout queues writers instead of failing; WAL lets readers run beside the writer.
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={_SQLITE_WAIT * 1000}")
        _use_wal(cursor)
        cursor.close()

    if parsed.database and parsed.database != ":memory:":
        watch_file(engine, parsed.database)
    return engine


def _use_wal(cursor: Any) -> None:
    """Switch the database file to WAL mode (a no-op once it is: the mode is kept in the file).

    The switch takes the file's exclusive lock, and SQLite fails it at once, whatever
    busy_timeout, while another connection writes to a file still in rollback mode, or
    switches it too (waiting could deadlock). That is every worker's first connection to a
    new file at start-up, or to an app's own database while the app writes. So on "locked"
    the connection waits its turn to write (``BEGIN IMMEDIATE`` does wait, up to
    busy_timeout), and tries again, for as long as busy_timeout. Not a number of tries:
    a try also fails while another waiter holds its turn, and a server's workers starting
    at once on a busy machine were seen to lose ten tries in a row that way.
    """
    give_up = time.monotonic() + _SQLITE_WAIT
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if str(exc) != "database is locked" or time.monotonic() > give_up:
                raise
        cursor.execute("BEGIN IMMEDIATE")
        cursor.execute("ROLLBACK")


def _as_of(now: datetime | None) -> datetime:
    # In UTC: SQLite compares the stored (UTC, zone-less) text, not moments.
    return utcnow() if now is None else as_utc(now)


def _outage_sqlstate(error: BaseException | None) -> bool:
    """True if ``error`` carries a SQLSTATE of class 08 (connection), 53 (insufficient
    resources: "too many clients" once another client took every connection) or 57 (e.g.
    "the database system is starting up", after a restart). asyncpg's errors arrive as a
    plain DBAPIError, or (on connect, with SQLAlchemy 2.0) not wrapped at all."""
    sqlstate = str(getattr(error, "sqlstate", None) or "")
    return sqlstate[:2] in ("08", "53", "57")


def _deadline(session: Session) -> datetime:
    assert session.deadline is not None  # only sessions with a deadline expire
    return session.deadline


class SQLAlchemySessionDatabase:
    """Sessions in one table through SQLAlchemy's async engine (aiosqlite or asyncpg).

    ``url_or_engine`` is a URL (``sqlite:///sessions.sqlite3``,
    ``postgresql://user@host/db``; async drivers are chosen for you) or an ``AsyncEngine``
    you own. Create the table once with ``await store.create_table()``, or add
    ``session_table(your_metadata)`` to your own migrations and pass ``table=``:

        store = SQLAlchemySessionDatabase("sqlite:///sessions.sqlite3")
        await store.create_table()
        manager = SessionManager(session_db=store)
        ...
        await store.aclose()  # at shutdown

    ``timeout`` (seconds) bounds every operation on PostgreSQL as a whole, whatever engine:
    waiting for a free pooled connection, connecting and the statements together (an
    engine made from a URL also gets it as its driver's timeouts). SQLite waits for its
    locks instead. Outages and timeouts raise ``StoreUnavailableError``, and a connection
    that failed so is discarded, never returned to the pool.

    A store made from a URL holds at most ``pool_size`` connections (10 by default), each
    opened once and kept until ``aclose()``, so a steady load opens no connection after
    its first moments. Half of them (at least one) serve the token look-up, run on every
    request: those stay checked out for it, so a look-up is the query alone, and look-ups
    beyond them wait for one of them. The rest serve everything else (logins, touches,
    listings, revocations). With an engine you pass, its pool is yours to size, and each
    look-up checks a connection out of it (slower, but the store holds nothing).

    Only token digests are stored. Expired rows are never returned; ``pop_expired()``
    deletes and returns them in batches (``SessionManager.purge_expired()`` reports each
    one), ``purge_expired()`` deletes them all and counts, and
    ``purge_periodically(interval)`` runs it in a background task.
    """

    def __init__(
        self,
        url_or_engine: str | AsyncEngine,
        *,
        table_name: str = "asgi_kit_sessions",
        table: Table | None = None,
        timeout: float = 5.0,
        pool_size: int = 10,
    ) -> None:
        if isinstance(pool_size, bool) or not isinstance(pool_size, int) or pool_size < 2:
            raise ConfigurationError(
                f"pool_size must be an int of at least 2 (look-ups and writes each need one),"
                f" got {pool_size!r}"
            )
        self._owns_engine = isinstance(url_or_engine, str)
        self.engine = (
            make_engine(url_or_engine, timeout=timeout, pool_size=pool_size)
            if isinstance(url_or_engine, str)
            else url_or_engine
        )
        """The SQLAlchemy ``AsyncEngine`` (made from the URL, or the one passed)."""
        self.table = table if table is not None else session_table(MetaData(), table_name)
        """The sessions table (``session_table``)."""
        c = self.table.c
        self._select = select(*(c[name] for name in COLUMNS))
        by_digest = self._select.where(c.token_digest == bindparam("digest"))
        keep = pool_size // 2 if self._owns_engine else 0
        self._reader = DigestReader(self.engine, by_digest, timeout=timeout, keep=keep)
        self._unavailable_errors = (*_UNAVAILABLE, *self._reader.unavailable)
        self._server = self.engine.dialect.name
        # A SQLite statement cannot be interrupted (it runs in aiosqlite's thread, which a
        # discarded connection waits for): its waits are bounded by busy_timeout.
        self._timeout = None if self._server == "sqlite" else timeout
        self._generation = 0  # moved by aclose()

    async def create_table(self) -> None:
        """Create the table and its indexes if they do not exist yet.

        Safe to run from every worker process at once, as each one's start-up does: a
        check first, then a create, let two processes both find no table and the second
        fail. So each statement checks for itself (``IF NOT EXISTS``: atomic in SQLite), and
        on PostgreSQL, where concurrent creates can still collide in the catalog, creators
        of one table take turns (a transaction-level advisory lock, released at commit).
        """
        async with self._connect() as conn:
            if self._server == "postgresql":
                name = f"asgi_kit.create_table:{self.table.fullname}"
                await conn.execute(select(func.pg_advisory_xact_lock(func.hashtext(name))))
            await conn.execute(CreateTable(self.table, if_not_exists=True))
            for index in self.table.indexes:
                await conn.execute(CreateIndex(index, if_not_exists=True))

    async def drop_table(self) -> None:
        """Drop the table (all sessions with it)."""
        async with self._connect() as conn:
            await conn.run_sync(self.table.drop, checkfirst=True)

    async def aclose(self) -> None:
        """Return the connections kept for look-ups; dispose of the engine if the store made it.

        Connections in use by operations still running are closed when those end (a
        disposed engine's pool would otherwise keep them open until garbage collection).
        """
        self._generation += 1
        await self._reader.aclose()
        if self._owns_engine:
            await self.engine.dispose()

    async def create(self, session: Session) -> None:
        """Store a new session; raise ``DuplicateSessionError`` if its id or token is taken."""
        try:
            async with self._connect() as conn:
                await conn.execute(insert(self.table), [session_row(session)])
        except IntegrityError:
            # Not chained: PostgreSQL's message quotes the taken key, a token digest.
            raise DuplicateSessionError("a session with this id or token already exists") from None

    async def get_by_token_digest(self, digest: str) -> Session | None:
        """Return the active session whose token has this digest, or None."""
        try:
            with deadline(self._server, self._timeout):
                row = await self._reader.fetch(digest)
        except Exception as exc:
            unavailable = self._unavailable(exc)
            if unavailable is None:
                raise
            raise unavailable from exc
        return active_session(row)

    async def get(self, session_id: UUID) -> Session | None:
        """Return the active session with this id, or None."""
        async with self._connect() as conn:
            row = (await conn.execute(self._select.where(self.table.c.id == session_id))).first()
        return active_session(row)

    async def list_for_user(self, user_id: UserId) -> list[Session]:
        """Return the user's active sessions, newest first."""
        c = self.table.c
        query = self._select.where(c.user_id == str(user_id)).order_by(c.created_at.desc())
        async with self._connect() as conn:
            rows = (await conn.execute(query)).all()
        return active_sessions(rows)

    async def touch(self, session: Session, last_seen_at: datetime) -> Session | None:
        """Record activity on ``session``; return it updated (a no-op if it is gone)."""
        updated = session.replace(token="", last_seen_at=last_seen_at)
        query = update(self.table).where(self.table.c.id == session.id)
        async with self._connect() as conn:
            values = query.values(last_seen_at=last_seen_at, deadline=updated.deadline)
            touched = (await conn.execute(values)).rowcount
        return updated if touched else None

    async def rotate(self, session: Session, rotated: Session) -> bool:
        """Replace ``session`` by ``rotated`` (its next tokens) unless it rotated since read.

        One ``UPDATE ... WHERE id = ? AND refresh_digest = ?``: of concurrent rotations of
        one session (any number of processes), exactly one matches the row.
        """
        c = self.table.c
        row = session_row(rotated)
        query = (
            update(self.table)
            .where(c.id == session.id, c.refresh_digest == session.refresh_digest)
            .values({name: row[name] for name in ROTATED})
        )
        try:
            async with self._connect() as conn:
                return bool((await conn.execute(query)).rowcount)
        except IntegrityError:
            raise DuplicateSessionError("a session with this token already exists") from None

    async def record_authentication(self, session_id: UUID, at: datetime) -> Session | None:
        """Set the active session's ``authenticated_at`` to ``at``; return it (None if none).

        One ``UPDATE ... RETURNING`` of that column alone: a touch or a rotation running
        at the same time keeps it.
        """
        c = self.table.c
        query = (
            update(self.table)
            .where(c.id == session_id, or_(c.deadline.is_(None), c.deadline > _as_of(None)))
            .values(authenticated_at=as_utc(at))
            .returning(*(c[name] for name in COLUMNS))
        )
        async with self._connect() as conn:
            row = (await conn.execute(query)).first()
        return active_session(row)

    async def delete(self, session_id: UUID) -> Session | None:
        """Delete one session; return it if it existed and was active, else None."""
        ended = await self._delete(self.table.c.id == session_id)
        return ended[0] if ended else None

    async def delete_for_user(self, user_id: UserId, *, keep: Sequence[UUID] = ()) -> list[Session]:
        """Delete all of a user's sessions except those in ``keep``; return the active ones."""
        c = self.table.c
        where = c.user_id == str(user_id)
        if keep:
            where = where & c.id.not_in(list(keep))
        return await self._delete(where)

    async def purge_expired(self, now: datetime | None = None) -> int:
        """Delete sessions that stopped being active before ``now``; return how many."""
        query = delete(self.table).where(self.table.c.deadline <= _as_of(now))
        async with self._connect() as conn:
            return (await conn.execute(query)).rowcount

    async def pop_expired(self, now: datetime | None = None, *, limit: int = 500) -> list[Session]:
        """Delete and return up to ``limit`` sessions due by ``now``, earliest deadline first.

        One statement per call: a DELETE of the ``limit`` earliest due rows, RETURNING
        them (SQLite 3.35 or later, as every delete of this store). PostgreSQL picks the
        rows ``FOR UPDATE SKIP LOCKED``, so concurrent pops take different rows instead of
        waiting on each other; SQLite runs one writer at a time.
        """
        c = self.table.c
        due = select(c.id).where(c.deadline <= _as_of(now)).order_by(c.deadline).limit(limit)
        if self._server == "postgresql":
            due = due.with_for_update(skip_locked=True)
        popped = await self._delete(c.id.in_(due.scalar_subquery()), active=False)
        return sorted(popped, key=_deadline)

    async def purge_periodically(self, interval: float = 3600) -> None:
        """Run ``purge_expired`` every ``interval`` seconds, forever (start it in a task).

        An outage is logged and does not stop the loop.
        """
        await purge_periodically(self.purge_expired, interval)

    async def _delete(self, where: ColumnElement[bool], *, active: bool = True) -> list[Session]:
        """Delete the rows ``where`` matches; return their sessions (the active ones only)."""
        columns = [self.table.c[name] for name in COLUMNS]
        query = delete(self.table).where(where).returning(*columns)
        async with self._connect() as conn:
            rows = (await conn.execute(query)).all()
        return active_sessions(rows) if active else [session_from_row(row) for row in rows]

    @asynccontextmanager
    async def _connect(self) -> AsyncIterator[AsyncConnection]:
        """A connection whose work is committed at the end (rolled back on an error).

        It is discarded instead when the operation timed out or was cancelled (a ROLLBACK
        would only wait as long again), or failed as an outage would: its state is unknown.
        """
        generation = self._generation
        try:
            with deadline(self._server, self._timeout):
                async with self.engine.connect() as conn:
                    try:
                        yield conn
                        await conn.commit()
                    except BaseException as exc:
                        if not isinstance(exc, Exception) or self._lost(exc):
                            await discard(conn)
                        raise
                    if generation != self._generation and self._owns_engine:
                        await discard(conn)  # aclose() disposed of its pool meanwhile
        except Exception as exc:
            unavailable = self._unavailable(exc)
            if unavailable is None:
                raise
            raise unavailable from exc

    def _lost(self, exc: Exception) -> bool:
        """True if ``exc`` means the server (or the SQLite file) cannot answer right now."""
        if isinstance(exc, DBAPIError):
            lost = isinstance(exc, (OperationalError, InterfaceError)) or exc.connection_invalidated
            return lost or _outage_sqlstate(exc.orig)
        # SQLAlchemy 2.0 lets some of asyncpg's errors on connect through unwrapped.
        return isinstance(exc, self._unavailable_errors) or _outage_sqlstate(exc)

    def _unavailable(self, exc: Exception) -> StoreUnavailableError | None:
        """The error to raise instead of ``exc`` if it means the server cannot answer."""
        if not self._lost(exc):
            return None
        # The driver's own message only: SQLAlchemy's would add the statement's parameters.
        cause = exc.orig or exc if isinstance(exc, DBAPIError) else exc
        return store_unavailable(self._server, cause)
