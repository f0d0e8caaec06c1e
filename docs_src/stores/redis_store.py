from __future__ import annotations

import os

from asgi_kit import RedisSessionDatabase
from fastapi_users.extensions.session_manager import SessionManager

SESSIONS_URL = os.environ.get("SESSIONS_URL", "redis://127.0.0.1:6379/0")
# Every key starts with the prefix: stores with different prefixes never meet.
KEY_PREFIX = os.environ.get("SESSIONS_KEY_PREFIX", "myapp:")

store = RedisSessionDatabase(SESSIONS_URL, key_prefix=KEY_PREFIX, timeout=5)
manager = SessionManager(session_db=store)
