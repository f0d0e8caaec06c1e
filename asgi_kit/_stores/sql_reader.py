"""The token look-up of ``SQLAlchemySessionDatabase``: the one query of every request.

SQLAlchemy stays in charge of connections (its pool, its dialect's set-up of the driver)
and compiles the query once, with its result processors. The look-up itself then runs
straight on the driver connection: asyncpg's cached prepared statement, or aiosqlite in
one hop to its thread. With ``keep`` (an engine the store made, with a queue pool), one
connection stays checked out for look-ups, so the usual case skips the pool too; look-ups
that overlap check out their own. An engine the caller owns is only borrowed from: its
owner may dispose of it without asking the store first.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, NamedTuple

import anyio
from sqlalchemy import Select
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


async def _discard(conn: AsyncConnection) -> None:
    """Close ``conn`` for good: after an error or a cancellation its state is unknown."""
    with anyio.CancelScope(shield=True):
        await conn.invalidate()
        await conn.close()


class DigestReader:
    """Run ``query`` (one ``bindparam``, the digest) on the driver; see the module docstring.

    Not thread-safe, like the async engine itself. A failed look-up on the kept connection
    (gone stale, say, after a server restart) is retried once on a fresh pooled one,
    unless it timed out: the server was reached and did not answer.
    """

    def __init__(
        self, engine: AsyncEngine, query: Select[Any], *, timeout: float | None, keep: bool
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
        self._keep = keep and isinstance(engine.sync_engine.pool, QueuePool)
        self._kept: AsyncConnection | None = None
        self._kept_driver: Any = None
        self._busy = False

    async def fetch(self, digest: str) -> Row | None:
        """The row whose token digest is ``digest`` (in the query's column order), or None."""
        if self._busy or not self._keep:
            return await self._fetch_pooled(digest)
        self._busy = True
        try:
            return await self._fetch_kept(digest)
        finally:
            self._busy = False

    async def aclose(self) -> None:
        """Return the kept connection to the pool."""
        kept, self._kept = self._kept, None
        if kept is not None:
            await kept.close()

    async def _fetch_kept(self, digest: str) -> Row | None:
        kept = self._kept
        if kept is None:
            kept = self._kept = await self._engine.connect()
            self._kept_driver = (await kept.get_raw_connection()).driver_connection
        try:
            return await self._run(self._kept_driver, digest)
        except BaseException as exc:
            self._kept = None
            await _discard(kept)
            if not isinstance(exc, Exception) or isinstance(exc, TIMEOUTS):
                raise
        return await self._fetch_pooled(digest)

    async def _fetch_pooled(self, digest: str) -> Row | None:
        conn = await self._engine.connect()
        try:
            row = await self._run((await conn.get_raw_connection()).driver_connection, digest)
        except BaseException:
            await _discard(conn)
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
