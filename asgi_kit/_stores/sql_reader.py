"""The token look-up of ``SQLAlchemySessionDatabase``: the one query of every request.

SQLAlchemy stays in charge of connections (its pool, its dialect's set-up of the driver)
and compiles the query once, with its result processors. The look-up itself then runs
straight on the driver connection: asyncpg's cached prepared statement, or aiosqlite in
one hop to its thread. With ``keep`` (an engine the store made, with a queue pool), up to
that many connections stay checked out for look-ups, so look-ups skip the pool too: no
pool check-out, pre-ping or reset per request, and overlapping look-ups share the kept
connections instead of opening more. An engine the caller owns is only borrowed from: its
owner may dispose of it without asking the store first.

A SQLite file is watched (``watch_file``): each connection remembers which file it opened
and whether it could write to it, so one whose file was deleted or replaced at its path,
or that opened read-only while the file could not be written, is never used again.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, NamedTuple

import anyio
from sqlalchemy import Select, event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.pool import QueuePool

from .._errors import ConfigurationError

TIMEOUTS = (TimeoutError, asyncio.TimeoutError)

Row = Sequence[Any]
#: ``fetch(driver connection, sql, digest, seconds)``: the row, or None.
Fetch = Callable[[Any, str, str, "float | None"], Awaitable["Row | None"]]


class _Driver(NamedTuple):
    fetch: Fetch
    #: The driver's own errors that mean the server cannot answer (beyond OSError, timeouts).
    unavailable: tuple[type[BaseException], ...]


async def _asyncpg_fetch(conn: Any, sql: str, digest: str, seconds: float | None) -> Row | None:
    row: Row | None = await conn.fetchrow(sql, digest, timeout=seconds)
    return row


async def _aiosqlite_fetch(conn: Any, sql: str, digest: str, seconds: float | None) -> Row | None:
    # The statement and its rows in one call: each aiosqlite call is a hop to its thread.
    rows: list[Row] = await conn.execute_fetchall(sql, (digest,))
    return rows[0] if rows else None


def _driver(name: str) -> _Driver:
    if name == "asyncpg":
        import asyncpg  # type: ignore[import-untyped]

        errors = (asyncpg.InterfaceError, asyncpg.PostgresConnectionError)
        return _Driver(_asyncpg_fetch, (*errors, asyncpg.exceptions.OperatorInterventionError))
    if name == "aiosqlite":
        return _Driver(_aiosqlite_fetch, (sqlite3.OperationalError, sqlite3.InterfaceError))
    raise ConfigurationError(
        f"SQLAlchemySessionDatabase needs the aiosqlite or asyncpg driver, not {name!r}"
    )


async def discard(conn: AsyncConnection) -> None:
    """Close ``conn`` for good: after an error or a cancellation its state is unknown."""
    with anyio.CancelScope(shield=True):
        await conn.invalidate()
        await conn.close()


#: Key of a connection's ``info``: the ``_FileState`` of the SQLite file it opened.
_FILE = "asgi_kit_sqlite_file"


class _Kept(NamedTuple):
    """A connection a ``DigestReader`` holds checked out, and its driver's own connection."""

    connection: AsyncConnection
    driver: Any


class _FileState(NamedTuple):
    path: str
    device: int
    inode: int
    writable: bool


def _file_state(path: str, *, writable: bool) -> _FileState | None:
    """The file at ``path`` now (None if it is gone); ``writable`` is only checked if False."""
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    # SQLite opens a file it cannot write read-only, and the connection stays so: ask again.
    writable = writable or os.access(path, os.W_OK)
    return _FileState(path, stat.st_dev, stat.st_ino, writable)


def _outdated(info: dict[Any, Any]) -> bool:
    """True if a connection with this ``info`` opened a file no longer at its path, or
    opened it read-only and it can be written now (it must be replaced to write)."""
    then: _FileState | None = info.get(_FILE)
    return then is not None and _file_state(then.path, writable=then.writable) != then


def watch_file(engine: AsyncEngine, path: str) -> None:
    """Discard, at checkout, the connections of ``engine`` that ``_outdated`` finds.

    The check is one ``stat`` (about a microsecond); the pool then opens a connection to
    whatever file is at ``path`` now (SQLite creates an empty one if none is).
    """

    @event.listens_for(engine.sync_engine, "connect")
    def _remember(_dbapi_connection: Any, record: Any) -> None:
        record.info[_FILE] = _file_state(path, writable=False)

    @event.listens_for(engine.sync_engine, "checkout")
    def _check(_dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        if _outdated(record.info):
            raise DisconnectionError("the SQLite file was replaced, deleted or made writable")


class DigestReader:
    """Run ``query`` (one ``bindparam``, the digest) on the driver; see the module docstring.

    With ``keep`` connections (0: none, each look-up checks one out of the pool), look-ups
    run on connections this reader holds checked out: an idle one if there is one, else a
    new one while fewer than ``keep`` are held, else the look-up waits for one to be free
    (its wait bounded by the caller's deadline, like a pool's). Not thread-safe, like the
    async engine itself. A failed look-up on a kept connection (gone stale, say, after a
    server restart) discards it and is retried once on a fresh pooled one, unless it timed
    out: the server was reached and did not answer.
    """

    def __init__(
        self, engine: AsyncEngine, query: Select[Any], *, timeout: float | None, keep: int
    ) -> None:
        dialect = engine.dialect
        self._driver = _driver(dialect.driver)
        self.unavailable = self._driver.unavailable
        self._engine = engine
        self._sql = str(query.compile(dialect=dialect))
        # Text columns such as user_id get none: session_from_row makes the UserId, once.
        processors = [
            column.type.dialect_impl(dialect).result_processor(dialect, None)
            for column in query.selected_columns
        ]
        self._processors = [(i, p) for i, p in enumerate(processors) if p is not None]
        self._timeout = timeout
        # Not from a StaticPool (SQLite :memory:): its one connection is everybody's.
        self._keep = keep if isinstance(engine.sync_engine.pool, QueuePool) else 0
        # A slot per connection this reader may hold; fast_acquire: no extra trip through
        # the event loop when one is free (the look-up itself yields soon enough).
        self._slots = anyio.Semaphore(max(self._keep, 1), fast_acquire=True)
        self._idle: list[_Kept] = []
        # Moved by aclose(): a connection taken before it is closed, not kept, once free.
        self._generation = 0

    async def fetch(self, digest: str) -> Row | None:
        """The row whose token digest is ``digest`` (in the query's column order), or None."""
        if not self._keep:
            return await self._fetch_pooled(digest)
        async with self._slots:
            generation = self._generation
            kept = await self._take()
            try:
                row = await self._run(kept.driver, digest)
            except BaseException as exc:
                await discard(kept.connection)
                if not isinstance(exc, Exception) or isinstance(exc, TIMEOUTS):
                    raise
            else:
                if generation == self._generation:
                    self._idle.append(kept)
                else:  # aclose() ran meanwhile: the engine may be disposed of by now
                    await discard(kept.connection)
                return row
        return await self._fetch_pooled(digest)

    async def aclose(self) -> None:
        """Return the idle kept connections to the pool; those in use are closed once free."""
        self._generation += 1
        idle, self._idle = self._idle, []
        for kept in idle:
            await kept.connection.close()

    async def _take(self) -> _Kept:
        """An idle kept connection still good to use, else a new one (a slot is held)."""
        while self._idle:
            kept = self._idle.pop()
            if not _outdated(kept.connection.info):
                return kept
            await discard(kept.connection)
        connection = await self._engine.connect()
        try:
            driver = (await connection.get_raw_connection()).driver_connection
        except BaseException:
            await discard(connection)
            raise
        return _Kept(connection, driver)

    async def _fetch_pooled(self, digest: str) -> Row | None:
        conn = await self._engine.connect()
        try:
            row = await self._run((await conn.get_raw_connection()).driver_connection, digest)
        except BaseException:
            await discard(conn)
            raise
        await conn.close()
        return row

    async def _run(self, driver_connection: Any, digest: str) -> Row | None:
        row = await self._driver.fetch(driver_connection, self._sql, digest, self._timeout)
        if row is None or not self._processors:
            return row
        values = list(row)
        for i, process in self._processors:
            values[i] = process(values[i])
        return values
