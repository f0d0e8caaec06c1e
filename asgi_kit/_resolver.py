"""``SessionResolver``: the one code path from a bearer token to an active session."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone

from ._errors import ConfigurationError, StoreUnavailableError
from ._models import Session
from ._protocol import SessionDatabase
from ._tokens import AnonymousReason, find_bearer, is_b64token, token_digest

logger = logging.getLogger("asgi_kit")


def as_interval(value: timedelta | float, name: str) -> timedelta:
    """Return ``value`` (seconds or a timedelta) as a non-negative timedelta."""
    interval = value if isinstance(value, timedelta) else timedelta(seconds=value)
    if interval < timedelta(0):
        raise ConfigurationError(f"{name} must not be negative, got {value!r}")
    return interval


class SessionResolver:
    """Resolve bearer tokens to active sessions through a ``SessionDatabase``.

    The store is asked by token digest only, and returns active sessions only (its
    contract: expiry is decided by ``Session.is_active`` there). ``last_seen_at`` is written
    back at most once per ``touch_interval`` per session, so a busy client does not cause
    a write per request. A ``SessionManager`` owns one (``manager.resolver``); hand the
    manager to ``BearerAuthMiddleware`` so both share it.
    """

    def __init__(self, session_db: SessionDatabase, *, touch_interval: timedelta | float = 60):
        self.session_db = session_db
        self.touch_interval = as_interval(touch_interval, "touch_interval")
        self._touch_seconds = self.touch_interval.total_seconds()

    async def resolve(self, token: str) -> Session | None:
        """Return the active session of ``token``, or None (malformed tokens included)."""
        if not is_b64token(token):
            return None
        found = await self._look_up(token.encode("ascii"))
        return found if isinstance(found, Session) else None

    async def authenticate(
        self, headers: Iterable[tuple[bytes, bytes]]
    ) -> Session | AnonymousReason:
        """The active session of raw ASGI headers, or why there is none.

        ``StoreUnavailableError`` propagates. One store call, and a store write only when
        activity is due.
        """
        token = find_bearer(headers)
        if isinstance(token, bytes):
            return await self._look_up(token)
        return token

    async def _look_up(self, token: bytes) -> Session | AnonymousReason:
        session = await self.session_db.get_by_token_digest(token_digest(token))
        if session is None:
            return AnonymousReason.INVALID
        now = time.time()
        if session.last_seen_before(now - self._touch_seconds):
            session = await self._touch(session, now)
        return session

    async def _touch(self, session: Session, now: float) -> Session:
        seen = datetime.fromtimestamp(now, timezone.utc)
        try:
            await self.session_db.touch(session, seen)
        except StoreUnavailableError:
            logger.warning("could not record activity on session %s", session.id)
        return session.replace(last_seen_at=seen)
