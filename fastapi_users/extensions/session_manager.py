"""``SessionManager``: create, list and revoke sessions, and serve ``/auth/sessions``.

manager = SessionManager(session_db=InMemorySessionDatabase())
app.include_router(manager.router, prefix="/auth/sessions")
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any, cast
from uuid import UUID

from fastapi import APIRouter
from starlette.requests import HTTPConnection

from asgi_kit import (
    ConfigurationError,
    InMemorySessionDatabase,
    Session,
    SessionDatabase,
    SessionLimitError,
    SessionResolver,
    SyncUsageError,
    coerce_user_id,
    generate_token,
    is_b64token,
    utcnow,
)
from asgi_kit._clock import as_utc
from asgi_kit._resolver import as_interval

from ._events import AccountEvent, EndReason, LimitPolicy
from ._session_api import SessionBearer, SessionRead
from ._session_routes import AdminPredicate, admin_router, user_router
from ._strategy import SessionStrategy
from ._sync import AwaitableSession, PendingSession, event_loop_running, run_now
from ._user_manager import SessionUserManagerMixin

__all__ = [
    "AccountEvent",
    "AwaitableSession",
    "EndReason",
    "InMemorySessionDatabase",
    "LimitPolicy",
    "Session",
    "SessionDatabase",
    "SessionManager",
    "SessionRead",
    "SessionStrategy",
    "SessionUserManagerMixin",
]

logger = logging.getLogger("asgi_kit.sessions")

#: Longest user agent kept with a session; the rest is cut off.
MAX_USER_AGENT = 512


class SessionManager:
    """Sessions of users: create them at login, list them, revoke one or all.

    ``session_db`` is any ``SessionDatabase``; None makes a fresh in-memory store, and a
    plain ``dict`` (or other ``MutableMapping``) becomes the in-memory store's backing map.
    ``lifetime`` caps every session's age; ``idle_timeout`` ends sessions unused that long;
    ``touch_interval`` is how often activity is written back (``last_seen_at``).
    ``max_sessions_per_user`` caps concurrent sessions (off by default); ``limit_policy``
    evicts the least recently used session or refuses the new one.

    Every change of state is made first; the hooks ``on_after_create`` and
    ``on_after_end`` run after it (override them, e.g. for an audit trail). A hook that
    raises is logged and never undoes, or interrupts, the change or the other hooks.
    """

    def __init__(
        self,
        session_db: SessionDatabase | MutableMapping[str, Session] | None = None,
        *,
        lifetime: timedelta | float | None = None,
        idle_timeout: timedelta | float | None = None,
        touch_interval: timedelta | float = 60,
        max_sessions_per_user: int | None = None,
        limit_policy: LimitPolicy | str = LimitPolicy.EVICT_LEAST_RECENTLY_USED,
    ) -> None:
        if session_db is None or isinstance(session_db, MutableMapping):
            session_db = InMemorySessionDatabase(session_db)
        self.session_db: SessionDatabase = session_db
        self.lifetime = _positive(lifetime, "lifetime")
        self.idle_timeout = _positive(idle_timeout, "idle_timeout")
        if max_sessions_per_user is not None and max_sessions_per_user < 1:
            raise ConfigurationError(
                f"max_sessions_per_user must be at least 1 (or None for no cap), "
                f"got {max_sessions_per_user!r}"
            )
        self.max_sessions_per_user = max_sessions_per_user
        try:
            self.limit_policy = LimitPolicy(limit_policy)
        except ValueError:
            choices = ", ".join(repr(p.value) for p in LimitPolicy)
            raise ConfigurationError(f"limit_policy must be one of {choices}") from None
        self.resolver = SessionResolver(session_db, touch_interval=touch_interval)
        self.current_session = SessionBearer(self.resolver)

    def create_session(
        self,
        user_id: UUID | str,
        token: str,
        *,
        expires_at: datetime | None = None,
        user_agent: str | None = None,
        ip_address: str | None = None,
    ) -> AwaitableSession:
        """Create and store a session for ``token``; return it (its ``token`` set).

        In async code, await it: ``session = await manager.create_session(uid, token)``.
        In plain synchronous code (scripts, sync tests) with the in-memory store it returns
        the ``Session`` directly; with another store it raises ``SyncUsageError``.
        Bad arguments raise ``InvalidUserIdError`` or ``ValueError`` either way, and a
        refused session (``limit_policy="refuse"``) raises ``SessionLimitError``.
        """
        session = self._new_session(user_id, token, expires_at, user_agent, ip_address)
        work = self._store_new(session)
        if event_loop_running():
            return cast(AwaitableSession, PendingSession(work))
        if not isinstance(self.session_db, InMemorySessionDatabase):
            work.close()
            raise SyncUsageError(
                f"{type(self.session_db).__name__} is asynchronous: "
                "call `await manager.create_session(...)` from async code"
            )
        return run_now(work)

    async def login(self, request: HTTPConnection, user_id: UUID | str) -> Session:
        """Start a session for a user who just proved who they are; return it with its token.

        The token is fresh (``secrets.token_urlsafe(32)``); the request's user agent and
        client IP are recorded so the user can recognise the device later.
        """
        client = request.client.host if request.client else None
        user_agent = request.headers.get("user-agent")
        return await self.create_session(
            user_id, generate_token(), user_agent=user_agent, ip_address=client
        )

    async def authenticate(self, token: str) -> Session | None:
        """Return the active session of a raw token, or None."""
        return await self.resolver.resolve(token)

    async def get_sessions(self, user_id: UUID | str) -> list[Session]:
        """Return a user's active sessions, newest first."""
        return await self.session_db.list_for_user(coerce_user_id(user_id))

    async def get_session(self, session_id: UUID) -> Session | None:
        """Return the active session with this id, or None."""
        return await self.session_db.get(session_id)

    async def revoke_session(
        self, session_id: UUID, *, reason: EndReason | str = EndReason.LOGOUT
    ) -> Session | None:
        """End one session; return it, or None if it was not active."""
        ended = await self.session_db.delete(session_id)
        await self._ended([ended] if ended else [], EndReason(reason))
        return ended

    async def revoke_all(
        self,
        user_id: UUID | str,
        *,
        keep: Sequence[UUID] = (),
        reason: EndReason | str = EndReason.LOGOUT,
    ) -> list[Session]:
        """End all of a user's sessions except those in ``keep``; return the ended ones."""
        ended = await self.session_db.delete_for_user(coerce_user_id(user_id), keep=keep)
        await self._ended(ended, EndReason(reason))
        return ended

    async def end_sessions_for_account_event(
        self, user_id: UUID | str, event: AccountEvent | str, *, keep_current: UUID | None = None
    ) -> list[Session]:
        """End a user's sessions after an account event; return the ended ones.

        Password changed or reset: every session ends, except ``keep_current`` if given
        (the session that made the change). Account disabled or deleted: every session
        ends, always; passing ``keep_current`` then raises ``ValueError``.
        """
        event = AccountEvent(event)
        if keep_current is not None and not event.may_keep_current:
            raise ValueError(f"{event.value} ends every session; keep_current is not allowed")
        keep = (keep_current,) if keep_current is not None else ()
        ended = await self.revoke_all(user_id, keep=keep, reason=EndReason.ACCOUNT_EVENT)
        logger.info("account event=%s user=%s sessions_ended=%d", event.value, user_id, len(ended))
        return ended

    async def purge_expired(self) -> int:
        """Delete expired sessions from the store; return how many (logged as one line)."""
        count = await self.session_db.purge_expired()
        logger.info("expired sessions purged count=%d reason=%s", count, EndReason.EXPIRED.value)
        return count

    async def on_after_create(self, session: Session) -> None:
        """Called after a session was stored. Default: one audit log line (id, never token)."""
        logger.info("session created id=%s user=%s", session.id, session.user_id)

    async def on_after_end(self, session: Session, reason: EndReason) -> None:
        """Called after a session ended. Default: one audit log line (id and reason)."""
        logger.info(
            "session ended id=%s user=%s reason=%s", session.id, session.user_id, reason.value
        )

    @cached_property
    def router(self) -> APIRouter:
        """``GET``/``DELETE /auth/sessions`` and ``DELETE /auth/sessions/{id}``; no prefix."""
        return user_router(self)

    def strategy(self) -> SessionStrategy[Any]:
        """A FastAPI Users authentication strategy backed by this manager's sessions.

        Logins through FastAPI Users' own routes then create sessions (user agent and IP
        recorded under ``BearerAuthMiddleware``), logouts end them, and ``/auth/sessions``
        lists them::

            AuthenticationBackend(
                name="session",
                transport=BearerTransport(tokenUrl="auth/login"),
                get_strategy=lambda: manager.strategy(),
            )
        """
        return SessionStrategy(self)

    def get_admin_router(self, is_admin: AdminPredicate) -> APIRouter:
        """Routes for admins over any user's sessions; ``is_admin(session)`` decides who."""
        return admin_router(self, is_admin)

    def _new_session(
        self,
        user_id: UUID | str,
        token: str,
        expires_at: datetime | None,
        user_agent: str | None,
        ip_address: str | None,
    ) -> Session:
        if not is_b64token(token):
            raise ValueError("token must be a non-empty RFC 6750 b64token of at most 2048 chars")
        now = utcnow()
        if expires_at is not None:
            expires_at = as_utc(expires_at)
        if self.lifetime is not None:
            cap = now + self.lifetime
            expires_at = cap if expires_at is None else min(expires_at, cap)
        if expires_at is not None and expires_at <= now:
            raise ValueError("expires_at must be in the future")
        return Session(
            user_id=coerce_user_id(user_id),
            token=token,
            created_at=now,
            expires_at=expires_at,
            idle_timeout=self.idle_timeout,
            user_agent=user_agent[:MAX_USER_AGENT] if user_agent else None,
            ip_address=ip_address,
        )

    async def _store_new(self, session: Session) -> Session:
        await self._make_room(session.user_id)
        await self.session_db.create(session)
        await self._notify(self.on_after_create, session)
        return session

    async def _make_room(self, user_id: UUID) -> None:
        cap = self.max_sessions_per_user
        if cap is None:
            return
        sessions = await self.session_db.list_for_user(user_id)
        excess = len(sessions) - cap + 1
        if excess <= 0:
            return
        if self.limit_policy is LimitPolicy.REFUSE:
            raise SessionLimitError(f"this user already has the maximum of {cap} sessions")
        sessions.sort(key=lambda s: s.seen_at)
        for session in sessions[:excess]:
            await self.revoke_session(session.id, reason=EndReason.EVICTED)

    async def _ended(self, sessions: Sequence[Session], reason: EndReason) -> None:
        for session in sessions:
            await self._notify(self.on_after_end, session, reason)

    async def _notify(self, hook: Callable[..., Awaitable[None]], *args: object) -> None:
        try:
            await hook(*args)
        except Exception:
            logger.exception("session hook %s failed; the change it reports stands", hook.__name__)


def _positive(value: timedelta | float | None, name: str) -> timedelta | None:
    if value is None:
        return None
    interval = as_interval(value, name)
    if not interval:
        raise ConfigurationError(f"{name} must be positive, got {value!r}")
    return interval
