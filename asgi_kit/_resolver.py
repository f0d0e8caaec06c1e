"""``SessionResolver``: the one code path from a bearer token to an active session."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from ._clock import utcnow
from ._errors import ConfigurationError, StoreUnavailableError
from ._models import Session
from ._protocol import SessionDatabase
from ._tokens import AuthError, bearer_token, is_b64token, token_digest

logger = logging.getLogger("asgi_kit")


@dataclass(frozen=True, slots=True)
class AuthResult:
    """The outcome of authenticating one request: a session, or why there is none."""

    session: Session | None
    error: AuthError | None = None


def as_interval(value: timedelta | float, name: str) -> timedelta:
    """Return ``value`` (seconds or a timedelta) as a non-negative timedelta."""
    interval = value if isinstance(value, timedelta) else timedelta(seconds=value)
    if interval < timedelta(0):
        raise ConfigurationError(f"{name} must not be negative, got {value!r}")
    return interval


class SessionResolver:
    """Resolve bearer tokens to active sessions through a ``SessionDatabase``.

    Expiry (absolute and idle) is decided by ``Session.is_active``; the store is asked
    by token digest only. ``last_seen_at`` is written back at most once per
    ``touch_interval`` per session, so a busy client does not cause a write per request.
    """

    def __init__(self, session_db: SessionDatabase, *, touch_interval: timedelta | float = 60):
        self.session_db = session_db
        self.touch_interval = as_interval(touch_interval, "touch_interval")

    async def resolve(self, token: str) -> Session | None:
        """Return the active session of ``token``, or None (malformed tokens included)."""
        if not is_b64token(token):
            return None
        return await self._lookup(token)

    async def authenticate(self, headers: Iterable[tuple[bytes, bytes]]) -> AuthResult:
        """Authenticate raw ASGI headers; ``StoreUnavailableError`` propagates."""
        token, error = bearer_token(headers)
        if token is None:
            return AuthResult(None, error)
        session = await self._lookup(token)
        if session is None:
            return AuthResult(None, AuthError.INVALID)
        return AuthResult(session)

    async def _lookup(self, token: str) -> Session | None:
        session = await self.session_db.get_by_token_digest(token_digest(token))
        if session is None:
            return None
        now = utcnow()
        if not session.is_active(now):
            return None
        if now - session.seen_at >= self.touch_interval:
            try:
                await self.session_db.touch(session, now)
            except StoreUnavailableError:
                logger.warning("could not record activity on session %s", session.id)
            session = session.replace(last_seen_at=now)
        return session
