"""A complete FastAPI Users 15 app whose logins are asgi-kit sessions.

Everything below this docstring is the README's "With FastAPI Users" code, to the letter
(tests/test_fastapi_users_wheel.py checks it). It runs in the separate environment that
test makes (FastAPI Users from PyPI, asgi-kit as a built wheel), driven by check.py.

No ``from __future__ import annotations``: FastAPI reads the dependency signatures below
at run time.
"""

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from fastapi_users.authentication import AuthenticationBackend, BearerTransport
from fastapi_users.db import SQLAlchemyBaseUserTableUUID, SQLAlchemyUserDatabase
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase

from asgi_kit import BearerAuthMiddleware, Session, SQLAlchemySessionDatabase, session_table
from fastapi_users import BaseUserManager, FastAPIUsers, UUIDIDMixin, schemas
from fastapi_users.extensions.session_manager import SessionManager, SessionUserManagerMixin

DATABASE_URL = os.environ.get("DATABASE_URL", "sqlite+aiosqlite:///./app.sqlite3")
SECRET = os.environ.get("SECRET", "change-me-to-a-long-random-secret")


class Base(DeclarativeBase):
    pass


class User(SQLAlchemyBaseUserTableUUID, Base):
    pass


class UserRead(schemas.BaseUser[uuid.UUID]):
    pass


class UserCreate(schemas.BaseUserCreate):
    pass


class UserUpdate(schemas.BaseUserUpdate):
    pass


engine = create_async_engine(DATABASE_URL)
async_session_maker = async_sessionmaker(engine, expire_on_commit=False)

# Sessions live in the users' database, in a table of the same metadata (and migrations),
# through an engine of their own: a login holds one of the users' pooled connections while
# it stores its session, so a shared pool deadlocks under a burst of logins.
session_store = SQLAlchemySessionDatabase(DATABASE_URL, table=session_table(Base.metadata))
# token_url: the session routes share FastAPI Users' OAuth2 scheme (one Authorize in /docs).
manager = SessionManager(
    session_db=session_store, max_sessions_per_user=10, token_url="auth/login"
)


async def get_async_session() -> AsyncIterator[AsyncSession]:
    async with async_session_maker() as session:
        yield session


async def get_user_db(
    session: Annotated[AsyncSession, Depends(get_async_session)],
) -> AsyncIterator[SQLAlchemyUserDatabase[User, uuid.UUID]]:
    yield SQLAlchemyUserDatabase(session, User)


class UserManager(SessionUserManagerMixin, UUIDIDMixin, BaseUserManager[User, uuid.UUID]):
    # Password reset, password change, deactivation and deletion end the user's sessions.
    session_manager = manager
    reset_password_token_secret = SECRET
    verification_token_secret = SECRET

    async def on_after_forgot_password(
        self, user: User, token: str, request: Request | None = None
    ) -> None:
        ...  # e-mail the reset token to the user


async def get_user_manager(
    user_db: Annotated[SQLAlchemyUserDatabase[User, uuid.UUID], Depends(get_user_db)],
) -> AsyncIterator[UserManager]:
    yield UserManager(user_db)


auth_backend: AuthenticationBackend[User, uuid.UUID] = AuthenticationBackend(
    name="session",
    transport=BearerTransport(tokenUrl="auth/login"),
    get_strategy=manager.strategy,
)
users = FastAPIUsers[User, uuid.UUID](get_user_manager, [auth_backend])
current_active_user = users.current_user(active=True)


async def is_superuser(session: Session) -> bool:
    """Admin routes of the session API: for active FastAPI Users superusers."""
    async with async_session_maker() as db:
        user = await db.get(User, session.user_id)
    return user is not None and user.is_active and user.is_superuser


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)  # users and sessions tables
    yield
    await session_store.aclose()
    await engine.dispose()


app = FastAPI(lifespan=lifespan)
# Handed the manager: one store and touch interval, and each request's session is
# resolved once, for FastAPI Users' current_user and the session routes alike.
app.add_middleware(BearerAuthMiddleware, session_db=manager)
app.include_router(users.get_auth_router(auth_backend), prefix="/auth", tags=["auth"])
app.include_router(users.get_register_router(UserRead, UserCreate), prefix="/auth", tags=["auth"])
app.include_router(users.get_reset_password_router(), prefix="/auth", tags=["auth"])
app.include_router(users.get_users_router(UserRead, UserUpdate), prefix="/users", tags=["users"])
app.include_router(manager.router, prefix="/auth/sessions")
app.include_router(manager.get_admin_router(is_superuser), prefix="/admin/sessions")


@app.get("/me/email")
async def my_email(user: Annotated[User, Depends(current_active_user)]) -> dict[str, str]:
    return {"email": user.email}
