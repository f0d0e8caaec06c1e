from __future__ import annotations

import os

from asgi_kit import InMemorySessionDatabase
from fastapi_users.extensions.session_manager import SessionManager

manager = SessionManager(
    session_db=InMemorySessionDatabase(),
    access_token_lifetime=900,
    # New tokens are signed with the first secret; tokens signed with either still work.
    refresh_secret=[os.environ["REFRESH_SECRET"], os.environ["OLD_REFRESH_SECRET"]],
)
