from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from asgi_kit import SQLAlchemySessionDatabase
from fastapi_users.extensions.session_manager import SessionManager

store = SQLAlchemySessionDatabase(os.environ.get("SESSIONS_URL", "sqlite:///sessions.sqlite3"))
manager = SessionManager(session_db=store)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    await store.create_table()  # IF NOT EXISTS: every worker may run it at once
    purger = asyncio.create_task(manager.purge_periodically(600))  # expired sessions
    yield
    purger.cancel()
    await store.aclose()


app = FastAPI(lifespan=lifespan)
app.include_router(manager.router, prefix="/auth/sessions")
