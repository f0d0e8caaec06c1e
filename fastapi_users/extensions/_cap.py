"""The per-user cap on concurrent sessions (``max_sessions_per_user``)."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import TypeVar
from uuid import UUID

import anyio
import anyio.lowlevel

from asgi_kit import ConfigurationError, Session, SessionDatabase, SessionLimitError, UserId

from ._events import LimitPolicy

logger = logging.getLogger("asgi_kit.sessions")
S = TypeVar("S", bound=Session)


def cap_setting(value: object) -> int | None:
    """Validate ``max_sessions_per_user``: None (no cap) or an int of at least 1."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigurationError(
            f"max_sessions_per_user must be an int (or None for no cap), "
            f"got {value!r} of type {type(value).__name__}"
        )
    if value < 1:
        raise ConfigurationError(
            f"max_sessions_per_user must be at least 1 (or None for no cap), got {value!r}"
        )
    return value


def policy_setting(value: LimitPolicy | str) -> LimitPolicy:
    """Validate ``limit_policy``: a ``LimitPolicy`` or its value."""
    try:
        return LimitPolicy(value)
    except ValueError:
        choices = ", ".join(repr(p.value) for p in LimitPolicy)
        raise ConfigurationError(f"limit_policy must be one of {choices}") from None


class UserLocks:
    """One lock per user, kept only while some task holds or awaits it (so never leaked).

    Locks are per event loop too: an anyio lock belongs to one loop, and synchronous
    callers of ``create_session`` each run a private loop (in their own threads).
    """

    def __init__(self) -> None:
        self._locks: dict[tuple[object, UserId], tuple[anyio.Lock, int]] = {}
        self._guard = threading.Lock()

    def __len__(self) -> int:
        """How many users' locks exist right now."""
        return len(self._locks)

    @asynccontextmanager
    async def hold(self, user_id: UserId) -> AsyncIterator[None]:
        """Hold ``user_id``'s lock for the body of the ``async with``."""
        key = (anyio.lowlevel.current_token(), user_id)
        with self._guard:
            # fast_acquire: a free lock is taken without yielding to the loop, so an
            # in-memory admission never suspends (``create_session`` without ``await``).
            lock, users = self._locks.get(key) or (anyio.Lock(fast_acquire=True), 0)
            self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            with self._guard:
                users = self._locks[key][1] - 1
                if users:
                    self._locks[key] = (lock, users)
                else:
                    del self._locks[key]


REFUSE = LimitPolicy.REFUSE


def _recency(session: Session) -> tuple[datetime, datetime, UUID]:
    return session.seen_at, session.created_at, session.id


def _admission(session: Session) -> tuple[datetime, UUID]:
    return session.created_at, session.id


class SessionCap:
    """``max_sessions_per_user`` over one store; the rules are in ``SessionManager``'s docs.

    The limit and policy are passed to each ``admit``, so changing them on the manager
    takes effect at the next login.
    """

    def __init__(self, session_db: SessionDatabase) -> None:
        self.session_db = session_db
        self.locks = UserLocks()

    async def admit(
        self,
        session: S,
        build: Callable[[], S],
        evicted: list[Session],
        *,
        limit: int | None,
        policy: LimitPolicy,
    ) -> S:
        """Store a new session within the cap and return it; evictions go to ``evicted``.

        Without a ``limit``, ``session`` is stored as it is. With one, ``build()`` makes
        it afresh under the user's lock (``build`` makes sessions like ``session``).
        ``SessionLimitError`` (refuse policy), or any failure once the session is stored,
        leaves the new session withdrawn; sessions evicted before a failure stay evicted.
        """
        if limit is None:
            await self.session_db.create(session)
            return session
        user_id = session.user_id
        async with self.locks.hold(user_id):
            session = build()  # stamped under the lock: this process's logins stay in order
            if policy == REFUSE and len(await self.session_db.list_for_user(user_id)) >= limit:
                raise _refused(limit)  # full already: refused before anything is stored
            await self.session_db.create(session)
            try:
                await self._settle(session, evicted, limit, policy)
            except BaseException:
                await self._withdraw(session)
                raise
        return session

    async def _settle(
        self, new: Session, evicted: list[Session], limit: int, policy: LimitPolicy
    ) -> None:
        # Listed again after storing: another instance may have stored sessions meanwhile.
        sessions = await self.session_db.list_for_user(new.user_id)
        if policy == REFUSE:
            # Ranked by admission, not counted: of logins racing for the last place, the
            # first admitted stays, so they are never all refused.
            if sum(_admission(s) < _admission(new) for s in sessions) >= limit:
                raise _refused(limit)
            return
        sessions.sort(key=_recency)
        for victim in sessions[: max(0, len(sessions) - limit)]:
            ended = await self.session_db.delete(victim.id)
            if ended is not None:  # None: another instance evicted it first
                evicted.append(ended)

    async def _withdraw(self, session: Session) -> None:
        with anyio.CancelScope(shield=True):  # a cancelled login leaves no session behind
            try:
                await self.session_db.delete(session.id)
            except Exception:
                logger.warning(
                    "could not withdraw session %s of a failed login; it ends when it expires",
                    session.id,
                    extra={"session_id": str(session.id), "user_id": str(session.user_id)},
                )


def _refused(limit: int) -> SessionLimitError:
    return SessionLimitError(f"this user already has the maximum of {limit} sessions")
