"""Worker processes starting together on one new database, each creating the table.

``uvicorn --workers 4`` (or gunicorn) starts every worker at once, and each one's start-up
runs ``await store.create_table()``. Spawned processes do that here, in the same instant
(a barrier), on new SQLite files and new PostgreSQL tables, then sign in and resolve;
and on a new SQLite file that another program is writing to as they start.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

from asgi_kit import SQLAlchemySessionDatabase
from fastapi_users.extensions.session_manager import SessionManager

from .processes import SPAWN, spawned
from .servers import POSTGRES_ADDRESS, POSTGRES_URL, require, unique_name
from .sql_workers import start_up

WORKERS = 6
# Before create_table() was safe to run at once, most rounds failed a worker: 5 make it sure.
ROUNDS = 5


def places(kind: str, tmp_path: Path) -> tuple[tuple[str, str], ...]:
    """A new database (SQLite file) or a new table (PostgreSQL) for every round."""
    if kind == "sqlite":
        return tuple(
            (f"sqlite+aiosqlite:///{tmp_path / f'round{k}.sqlite3'}", "asgi_kit_sessions")
            for k in range(ROUNDS)
        )
    require("PostgreSQL", POSTGRES_ADDRESS)
    return tuple((POSTGRES_URL, unique_name("startup")) for _ in range(ROUNDS))


async def signed_in(url: str, table_name: str) -> list[int]:
    """How many sessions each worker's user has in the table (then drop it)."""
    store = SQLAlchemySessionDatabase(url, table_name=table_name)
    try:
        manager = SessionManager(session_db=store)
        return [len(await manager.get_sessions(f"worker-{n}")) for n in range(WORKERS)]
    finally:
        await store.drop_table()
        await store.aclose()


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_workers_starting_together_each_create_the_table(kind: str, tmp_path: Path) -> None:
    rounds = places(kind, tmp_path)
    start = SPAWN.Barrier(WORKERS)
    try:
        failures = spawned(start_up, [(rounds, start, n) for n in range(WORKERS)])
    finally:
        counts = [anyio.run(signed_in, url, table_name) for url, table_name in rounds]
    assert failures == [[]] * WORKERS, "\n".join(f for found in failures for f in found)
    assert counts == [[1] * WORKERS] * ROUNDS


@contextmanager
def writing(path: Path, start: Any) -> Iterator[None]:
    """Another program writes to ``path`` (a new file, rollback mode) until one second after
    ``start`` (a barrier) lets the workers go: long enough for each to meet the lock.
    """
    app = sqlite3.connect(path, timeout=60, isolation_level=None, check_same_thread=False)
    app.execute("BEGIN IMMEDIATE")
    app.execute("CREATE TABLE notes (body TEXT)")
    app.execute("INSERT INTO notes VALUES ('kept')")

    def commit_later() -> None:
        start.wait(60)
        time.sleep(1)  # not measured: a worker that met no lock proves nothing, fails nothing
        app.execute("COMMIT")

    writer = threading.Thread(target=commit_later)
    writer.start()
    try:
        yield
    finally:
        writer.join()
        app.close()


def test_workers_wait_for_a_writer_on_a_new_file(tmp_path: Path) -> None:
    # An app that keeps its own tables in the same SQLite file is writing when its workers
    # start. Switching the file to WAL failed each of them at once, whatever busy_timeout.
    path = tmp_path / "app.sqlite3"
    rounds = ((f"sqlite+aiosqlite:///{path}", "asgi_kit_sessions"),)
    start = SPAWN.Barrier(WORKERS + 1)
    with writing(path, start):
        failures = spawned(start_up, [(rounds, start, n) for n in range(WORKERS)])
    assert failures == [[]] * WORKERS, "\n".join(f for found in failures for f in found)
    # closing(): a connection's own with-block only commits, and 3.13 warns on an unclosed one.
    with closing(sqlite3.connect(path)) as app:
        assert app.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert app.execute("SELECT body FROM notes").fetchall() == [("kept",)]
    assert anyio.run(signed_in, *rounds[0]) == [1] * WORKERS
