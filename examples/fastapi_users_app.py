"""A complete FastAPI Users 15 app whose logins are asgi-kit sessions.

Every login through FastAPI Users' own routes (Bearer for API clients, an HttpOnly cookie
for browsers) is a session that its user can list and end, one or all; refresh tokens
rotate and a reused one ends its session; account changes ask for a recent sign-in.

    pip install "fastapi-users[sqlalchemy]>=15,<16" "./asgi-kit[sqlalchemy,devices]" uvicorn
    cd asgi-kit
    uvicorn examples.fastapi_users_app:app

asgi-kit is not on PyPI: install it from a clone (the pip line runs in the directory that
holds it), then run the app from the clone's root as above. Saved elsewhere as
fastapi_users_app.py, it runs with ``uvicorn fastapi_users_app:app`` in that directory.

The documentation shows this file as it is (docs/tutorial/fastapi-users.md). The tests run
it against FastAPI Users from PyPI (tests/test_fastapi_users_wheel.py drives it with
tests/fastapi_users_env/check.py) and the benchmarks serve it (benchmarks/load_real_db.py).

No ``from __future__ import annotations``: FastAPI reads the dependency signatures below
at run time.
"""

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

import anyio
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.security import OAuth2PasswordRequestForm
from fastapi_users.authentication import AuthenticationBackend, BearerTransport, CookieTransport
from fastapi_users.db import SQLAlchemyBaseUserTableUUID, SQLAlchemyUserDatabase
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase

from asgi_kit import (
    BearerAuthMiddleware,
    RecentAuthentication,
    Session,
    SessionCookie,
    SQLAlchemySessionDatabase,
    session_table,
)
from fastapi_users import BaseUserManager, FastAPIUsers, UUIDIDMixin, exceptions, schemas
from fastapi_users.extensions.session_manager import SessionManager, SessionUserManagerMixin

DATABASE_URL = os.environ.get("DATABASE_URL", "sqlite+aiosqlite:///./app.sqlite3")
SECRET = os.environ.get("SECRET", "change-me-to-a-long-random-secret")
# Signs refresh tokens: at least 32 bytes, the same on every instance, never stored.
REFRESH_SECRET = os.environ.get("REFRESH_SECRET", "change-me-to-another-long-random-secret")


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


# A pool sized for the requests served at once, and kept: SQLAlchemy's default (5, plus
# 10 of "overflow", each closed on return) opens and closes connections all the time under
# a steady load of more than 5 concurrent requests.
engine = create_async_engine(DATABASE_URL, pool_size=10, max_overflow=0)
async_session_maker = async_sessionmaker(engine, expire_on_commit=False)

# --8<-- [start:manager]
# Sessions live in the users' database, in a table of the same metadata (and migrations),
# through an engine of their own: a login holds one of the users' pooled connections while
# it stores its session, so a shared pool deadlocks under a burst of logins.
session_store = SQLAlchemySessionDatabase(DATABASE_URL, table=session_table(Base.metadata))
# token_url: the session routes share FastAPI Users' OAuth2 scheme (one Authorize in /docs).
# cookie: browsers' requests may carry the token in FastAPI Users' HttpOnly cookie instead.
manager = SessionManager(
    session_db=session_store,
    max_sessions_per_user=10,
    token_url="auth/login",
    cookie=SessionCookie("fastapiusersauth"),
    # Logins get 15-minute access tokens and a refresh token (POST /auth/sessions/refresh);
    # a refresh token used twice (a copy of it, stolen) ends the session.
    access_token_lifetime=900,
    refresh_secret=REFRESH_SECRET,
    # Log out everywhere (DELETE /auth/sessions) asks for a sign-in within 10 minutes.
    revoke_all_max_age=600,
)
# --8<-- [end:manager]


async def get_async_session() -> AsyncIterator[AsyncSession]:
    async with async_session_maker() as session:
        yield session


async def get_user_db(
    session: Annotated[AsyncSession, Depends(get_async_session)],
) -> AsyncIterator[SQLAlchemyUserDatabase[User, uuid.UUID]]:
    yield SQLAlchemyUserDatabase(session, User)


# --8<-- [start:user_manager]
class UserManager(SessionUserManagerMixin, UUIDIDMixin, BaseUserManager[User, uuid.UUID]):
    # Password reset, password change, deactivation and deletion end the user's sessions.
    session_manager = manager
    reset_password_token_secret = SECRET
    verification_token_secret = SECRET
    # --8<-- [end:user_manager]

    async def on_after_forgot_password(
        self, user: User, token: str, request: Request | None = None
    ) -> None: ...  # e-mail the reset token to the user

    async def authenticate(self, credentials: OAuth2PasswordRequestForm) -> User | None:
        # FastAPI Users checks the password on the event loop. Argon2 takes about 0.1 s of
        # CPU, so in a burst of logins each waits for all the others while it holds a
        # pooled connection: check it in a worker thread (argon2 releases the GIL).
        try:
            user = await self.get_by_email(credentials.username)
        except exceptions.UserNotExists:
            await anyio.to_thread.run_sync(self.password_helper.hash, credentials.password)
            return None  # (hashed anyway, so an unknown e-mail takes as long)
        verified, new_hash = await anyio.to_thread.run_sync(
            self.password_helper.verify_and_update, credentials.password, user.hashed_password
        )
        if not verified:
            return None
        if new_hash is not None:
            await self.user_db.update(user, {"hashed_password": new_hash})
        return user


async def get_user_manager(
    user_db: Annotated[SQLAlchemyUserDatabase[User, uuid.UUID], Depends(get_user_db)],
) -> AsyncIterator[UserManager]:
    yield UserManager(user_db)


# --8<-- [start:backends]
auth_backend: AuthenticationBackend[User, uuid.UUID] = AuthenticationBackend(
    name="session",
    transport=manager.transport(BearerTransport(tokenUrl="auth/login")),
    get_strategy=manager.strategy,
)
# Browsers: the same sessions through FastAPI Users' CookieTransport (HttpOnly, SameSite=Lax,
# Secure); asgi-kit refuses state-changing cookie requests from other origins (CSRF).
cookie_backend: AuthenticationBackend[User, uuid.UUID] = AuthenticationBackend(
    name="cookie",
    transport=manager.transport(CookieTransport(cookie_name="fastapiusersauth")),
    get_strategy=manager.strategy,
)
# --8<-- [end:backends]
users = FastAPIUsers[User, uuid.UUID](get_user_manager, [auth_backend, cookie_backend])
current_active_user = users.current_user(active=True)
# Changing an account (PATCH /users/me: e-mail, password; an admin's PATCH or DELETE) asks
# for a sign-in within 10 minutes (RFC 9470 step-up; reading it does not): older sessions
# get 401 REAUTHENTICATION_REQUIRED until POST /auth/sessions/reauthenticate {"password"}.
recent_sign_in = RecentAuthentication(600)


async def changes_need_a_recent_sign_in(request: Request) -> None:
    answer = None if request.method in ("GET", "HEAD") else recent_sign_in.check(request)
    if answer is not None:
        raise HTTPException(answer.status, answer.detail, answer.headers)


# --8<-- [start:howto_is_superuser]
async def is_superuser(session: Session) -> bool:
    """Admin routes of the session API: for active FastAPI Users superusers."""
    async with async_session_maker() as db:
        user = await db.get(User, session.user_id)
    return user is not None and user.is_active and user.is_superuser
# --8<-- [end:howto_is_superuser]


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)  # users and sessions tables
    yield
    await session_store.aclose()
    await engine.dispose()


# --8<-- [start:app]
app = FastAPI(lifespan=lifespan)
# Handed the manager: one store and touch interval, and each request's session is
# resolved once, for FastAPI Users' current_user and the session routes alike.
app.add_middleware(BearerAuthMiddleware, session_db=manager)
app.include_router(users.get_auth_router(auth_backend), prefix="/auth", tags=["auth"])
app.include_router(users.get_auth_router(cookie_backend), prefix="/auth/cookie", tags=["auth"])
app.include_router(users.get_register_router(UserRead, UserCreate), prefix="/auth", tags=["auth"])
app.include_router(users.get_reset_password_router(), prefix="/auth", tags=["auth"])
app.include_router(
    users.get_users_router(UserRead, UserUpdate),
    prefix="/users",
    tags=["users"],
    dependencies=[Depends(changes_need_a_recent_sign_in)],
)
app.include_router(manager.router, prefix="/auth/sessions")
app.include_router(manager.get_reauthenticate_router(get_user_manager), prefix="/auth/sessions")
app.include_router(manager.get_admin_router(is_superuser), prefix="/admin/sessions")
# --8<-- [end:app]


@app.get("/me/email")
async def my_email(user: Annotated[User, Depends(current_active_user)]) -> dict[str, str]:
    return {"email": user.email}
