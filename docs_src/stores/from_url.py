from __future__ import annotations

import os

from asgi_kit import session_database_from_url

# memory://, sqlite:///sessions.sqlite3, postgresql://app@db/app or redis://cache:6379/0
store = session_database_from_url(os.environ.get("SESSIONS_URL", "memory://"))
