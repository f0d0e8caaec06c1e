from __future__ import annotations

import os

from asgi_kit import SQLAlchemySessionDatabase
from fastapi_users.extensions.session_manager import SessionManager

# One file beside the app; aiosqlite is chosen for you.
SESSIONS_URL = os.environ.get("SESSIONS_URL", "sqlite:///sessions.sqlite3")

store = SQLAlchemySessionDatabase(SESSIONS_URL)
manager = SessionManager(session_db=store)
