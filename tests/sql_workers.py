"""What the spawned processes of test_sql_startup.py run: an app's start-up, many at once."""

from __future__ import annotations

import traceback
from typing import Any

import anyio

from asgi_kit import SQLAlchemySessionDatabase, generate_token
from fastapi_users.extensions.session_manager import SessionManager


def start_up(places: tuple[tuple[str, str], ...], start: Any, number: int) -> list[str]:
    """For each ``(url, table name)`` in turn, the moment every worker is ready (``start``
    is a barrier): make the store, ``create_table()``, sign a user in and resolve the
    token, as an app's start-up and its first request do. Return each failure's traceback.
    """
    return anyio.run(_start_ups, places, start, number)


async def _start_ups(places: tuple[tuple[str, str], ...], start: Any, number: int) -> list[str]:
    failures = []
    for url, table_name in places:
        store = SQLAlchemySessionDatabase(url, table_name=table_name)
        start.wait(60)  # blocks the loop: nothing else runs here. A dead worker breaks it.
        try:
            await store.create_table()
            manager = SessionManager(session_db=store)
            token = generate_token()
            session = await manager.create_session(f"worker-{number}", token)
            assert await manager.authenticate(token) == session
        except Exception:
            failures.append(traceback.format_exc())
        finally:
            await store.aclose()
    return failures
