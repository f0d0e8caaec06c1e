"""The docs' FastAPI Users app (examples/fastapi_users_app.py) with integer user ids.

What differs from that app: the user table's ``id`` is an ``Integer`` primary key,
the user manager mixes in ``IntegerIDMixin``, the generics say ``int``, and the admin
predicate turns the session's user id (``"42"``: ints are kept as their decimal string)
back into an ``int`` with the user manager's own ``parse_id``. check.py drives it like app.py.
"""

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

import anyio
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.security import OAuth2PasswordRequestForm
from fastapi_users.authentication import AuthenticationBackend, BearerTransport, CookieTransport
from fastapi_users.db import SQLAlchemyBaseUserTable, SQLAlchemyUserDatabase
from sqlalchemy import Integer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from asgi_kit import (
    BearerAuthMiddleware,
    RecentAuthentication,
    Session,
    SessionCookie,
    SQLAlchemySessionDatabase,
    session_table,
)
from fastapi_users import BaseUserManager, FastAPIUsers, IntegerIDMixin, exceptions, schemas
from fastapi_users.extensions.session_manager import SessionManager, SessionUserManagerMixin

DATABASE_URL = os.environ.get("DATABASE_URL", "sqlite+aiosqlite:///./app.sqlite3")
SECRET = os.environ.get("SECRET", "change-me-to-a-long-random-secret")
# Signs refresh tokens: at least 32 bytes, the same on every instance, never stored.
REFRESH_SECRET = os.environ.get("REFRESH_SECRET", "change-me-to-another-long-random-secret")


class Base(DeclarativeBase):
    pass


class User(SQLAlchemyBaseUserTable[int], Base):
    id: Mapped[int] = mapped_column(Integer, primary_key=True)


class UserRead(schemas.BaseUser[int]):
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
# An engine of its own for the session store (see app.py): no pool deadlock in bursts.
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


async def get_async_session() -> AsyncIterator[AsyncSession]:
    async with async_session_maker() as session:
        yield session


async def get_user_db(
    session: Annotated[AsyncSession, Depends(get_async_session)],
) -> AsyncIterator[SQLAlchemyUserDatabase[User, int]]:
    yield SQLAlchemyUserDatabase(session, User)


class UserManager(SessionUserManagerMixin, IntegerIDMixin, BaseUserManager[User, int]):
    session_manager = manager
    reset_password_token_secret = SECRET
    verification_token_secret = SECRET

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
    user_db: Annotated[SQLAlchemyUserDatabase[User, int], Depends(get_user_db)],
) -> AsyncIterator[UserManager]:
    yield UserManager(user_db)


auth_backend: AuthenticationBackend[User, int] = AuthenticationBackend(
    name="session",
    transport=manager.transport(BearerTransport(tokenUrl="auth/login")),
    get_strategy=manager.strategy,
)
# Browsers: the same sessions through FastAPI Users' CookieTransport (HttpOnly, SameSite=Lax,
# Secure); asgi-kit refuses state-changing cookie requests from other origins (CSRF).
cookie_backend: AuthenticationBackend[User, int] = AuthenticationBackend(
    name="cookie",
    transport=manager.transport(CookieTransport(cookie_name="fastapiusersauth")),
    get_strategy=manager.strategy,
)
users = FastAPIUsers[User, int](get_user_manager, [auth_backend, cookie_backend])
current_active_user = users.current_user(active=True)
# Changing an account (PATCH /users/me: e-mail, password; an admin's PATCH or DELETE) asks
# for a sign-in within 10 minutes (RFC 9470 step-up; reading it does not): older sessions
# get 401 REAUTHENTICATION_REQUIRED until POST /auth/sessions/reauthenticate {"password"}.
recent_sign_in = RecentAuthentication(600)


async def changes_need_a_recent_sign_in(request: Request) -> None:
    answer = None if request.method in ("GET", "HEAD") else recent_sign_in.check(request)
    if answer is not None:
        raise HTTPException(answer.status, answer.detail, answer.headers)


async def is_superuser(session: Session) -> bool:
    """Admin routes of the session API: for active FastAPI Users superusers."""
    async with async_session_maker() as db:
        user_db: SQLAlchemyUserDatabase[User, int] = SQLAlchemyUserDatabase(db, User)
        user = await user_db.get(UserManager(user_db).parse_id(session.user_id))
    return user is not None and user.is_active and user.is_superuser


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    yield
    await session_store.aclose()
    await engine.dispose()


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


@app.get("/me/email")
async def my_email(user: Annotated[User, Depends(current_active_user)]) -> dict[str, str]:
    return {"email": user.email}
