from __future__ import annotations

from datetime import timedelta

from fastapi_users.extensions.session_manager import SessionManager

manager = SessionManager(
    lifetime=timedelta(days=30),  # no session lives longer
    idle_timeout=timedelta(days=7),  # a session unused for a week ends
    touch_interval=60,  # last_seen_at is written at most once a minute per session
    max_sessions_per_user=5,
    limit_policy="refuse",  # a sixth login is refused (the default ends the least recently used)
)
