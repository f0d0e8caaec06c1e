"""The README's FastAPI Users app under uvicorn, on a fresh database, for ``burst_logins.py``.

``fresh_database`` makes an empty SQLite file in a temporary directory, or a PostgreSQL
database of its own (127.0.0.1:5432, user postgres), and drops it afterwards;
``app_server`` serves a copy of ``examples/fastapi_users_app.py`` from a temporary
directory with ``DATABASE_URL`` pointing at it, and always stops the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import importlib.metadata
import importlib.util
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import load_middleware
from load_middleware import HOST

APP = Path(__file__).resolve().parents[1] / "examples" / "fastapi_users_app.py"
#: Where the run's own database is made (and dropped); trust auth on loopback.
POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
TABLE = "asgi_kit_sessions"
#: The last line of a traceback: ``package.module.SomeError: message``.
EXCEPTION = re.compile(r"^((?:\w+\.)*\w+(?:Error|Exception)): ", re.MULTILINE)


async def _postgres(url: str, statement: str) -> int:
    connection = await asyncpg.connect(url, timeout=10)
    try:
        if statement.startswith("SELECT"):
            return int(await connection.fetchval(statement, timeout=30))
        await connection.execute(statement, timeout=30)
        return 0
    finally:
        await connection.close(timeout=10)


@contextlib.contextmanager
def fresh_database(kind: str) -> Iterator[tuple[str, Callable[[], int]]]:
    """Yield ``(DATABASE_URL, count of stored sessions)`` for a new, empty database."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="asgi-kit-burst-db-") as tmp:
            path = Path(tmp) / "app.sqlite3"

            def count_sqlite() -> int:
                with contextlib.closing(sqlite3.connect(path, timeout=10)) as db:
                    return int(db.execute(f"SELECT count(*) FROM {TABLE}").fetchone()[0])  # noqa: S608

            yield f"sqlite+aiosqlite:///{path}", count_sqlite
        return
    name = f"asgi_kit_burst_{uuid.uuid4().hex[:12]}"
    asyncio.run(_postgres(POSTGRES_ADMIN, f'CREATE DATABASE "{name}"'))
    url = POSTGRES_ADMIN.rsplit("/", 1)[0] + f"/{name}"

    def count_postgres() -> int:
        return asyncio.run(_postgres(url, f"SELECT count(*) FROM {TABLE}"))  # noqa: S608

    try:
        yield url.replace("postgresql://", "postgresql+asyncpg://"), count_postgres
    finally:
        asyncio.run(_postgres(POSTGRES_ADMIN, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def wait_ready(proc: subprocess.Popen[bytes], port: int, timeout: float = 90) -> None:
    """Wait until the app answers ``GET /users/me`` without a token (401)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server on port {port} exited with {proc.returncode}")
        with contextlib.suppress(OSError):
            conn = http.client.HTTPConnection(HOST, port, timeout=5)
            try:
                conn.request("GET", "/users/me")
                status = conn.getresponse().status
            finally:
                conn.close()
            if status != 401:
                raise SystemExit(f"GET /users/me without a token answered {status}")
            return
        time.sleep(0.2)
    raise SystemExit(f"the server on port {port} not ready after {timeout:.0f} s")


@contextlib.contextmanager
def app_server(database_url: str, failures: Counter[str]) -> Iterator[int]:
    """Serve a copy of the README's app on a free port of ``HOST``; yield the port.

    The server's log goes to a file; when it has stopped, the exceptions its tracebacks end
    with are counted into ``failures`` (so a burst's 500s say what failed).
    """
    with tempfile.TemporaryDirectory(prefix="asgi-kit-burst-app-") as tmp:
        shutil.copy2(APP, Path(tmp) / "app.py")
        log_path = Path(tmp) / "server.log"
        port = load_middleware.free_port()
        command = [
            sys.executable, "-m", "uvicorn", "app:app", "--host", HOST, "--port", str(port),
            "--log-level", "warning", "--no-access-log",
        ]  # fmt: skip
        env = {**os.environ, "DATABASE_URL": database_url}
        with log_path.open("wb") as log:
            proc = subprocess.Popen(command, cwd=tmp, env=env, stdout=log, stderr=log)
        try:
            wait_ready(proc, port)
            yield port
        finally:
            load_middleware.stop_server(proc)
            failures.update(EXCEPTION.findall(log_path.read_text(errors="replace")))


def describe() -> str:
    """One line saying what ran."""
    versions = ", ".join(
        f"{name} {importlib.metadata.version(name)}"
        for name in ("fastapi-users", "fastapi", "uvicorn", "sqlalchemy", "httpx2")
    )
    fast = [m for m in ("httptools", "uvloop") if importlib.util.find_spec(m) is not None]
    stack = ", ".join(fast) if fast else "h11 + asyncio"
    python = sys.version.split()[0]
    return f"uvicorn 1 worker, {stack}; {versions}; Python {python}; {os.cpu_count()} CPUs"
