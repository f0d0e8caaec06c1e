from __future__ import annotations

from asgi_kit import InMemorySessionDatabase
from fastapi_users.extensions.session_manager import SessionManager

store = InMemorySessionDatabase()  # one process; every session is lost on restart
manager = SessionManager(session_db=store)  # SessionManager() alone does the same
