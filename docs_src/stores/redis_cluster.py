from __future__ import annotations

import os

from asgi_kit import RedisSessionDatabase
from fastapi_users.extensions.session_manager import SessionManager

SESSIONS_URL = os.environ.get("SESSIONS_URL", "redis://10.0.0.5:7000")  # any node
# A hash tag first in the prefix: every key of the store hashes to one slot.
KEY_PREFIX = os.environ.get("SESSIONS_KEY_PREFIX", "{myapp}:")

store = RedisSessionDatabase(SESSIONS_URL, cluster=True, key_prefix=KEY_PREFIX)
manager = SessionManager(session_db=store)
