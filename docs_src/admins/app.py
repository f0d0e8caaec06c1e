from __future__ import annotations

from fastapi import FastAPI

from asgi_kit import BearerAuthMiddleware, Session
from fastapi_users.extensions.session_manager import SessionManager

ADMINS = {"alice"}  # user ids; in a real app, a flag on the user (below)

manager = SessionManager()


def is_admin(session: Session) -> bool:
    """Decides who may use the admin routes (an ``async def`` works too)."""
    return str(session.user_id) in ADMINS


app = FastAPI()
app.add_middleware(BearerAuthMiddleware, session_db=manager)
app.include_router(manager.router, prefix="/auth/sessions")
app.include_router(manager.get_admin_router(is_admin), prefix="/admin/sessions")
