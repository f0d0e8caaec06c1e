from __future__ import annotations

import os

from asgi_kit import SQLAlchemySessionDatabase
from fastapi_users.extensions.session_manager import SessionManager

# asyncpg is chosen for you; 5 s is the default timeout of every operation.
SESSIONS_URL = os.environ.get("SESSIONS_URL", "postgresql://app@db.internal/app")

store = SQLAlchemySessionDatabase(SESSIONS_URL, timeout=5)
manager = SessionManager(session_db=store)
