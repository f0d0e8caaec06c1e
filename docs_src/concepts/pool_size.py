from __future__ import annotations

import os

from asgi_kit import SQLAlchemySessionDatabase

DATABASE_URL = os.environ.get("DATABASE_URL", "sqlite:///sessions.sqlite3")
store = SQLAlchemySessionDatabase(DATABASE_URL, pool_size=20)  # 10 for look-ups, 10 for the rest
