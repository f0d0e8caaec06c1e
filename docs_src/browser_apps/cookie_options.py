from __future__ import annotations

from asgi_kit import SessionCookie
from fastapi_users.extensions.session_manager import SessionManager

cookie = SessionCookie(
    "__Host-session",
    samesite="strict",  # not sent at all when another site links here
    trusted_origins=["https://admin.example.com"],  # its pages may change state here too
)
manager = SessionManager(cookie=cookie)
