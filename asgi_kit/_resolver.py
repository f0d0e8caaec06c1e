"""``SessionResolver``: the one code path from a bearer token to an active session."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from typing import NamedTuple

from ._errors import ConfigurationError, StoreUnavailableError
from ._models import Session
from ._protocol import SessionDatabase
from ._tokens import AuthError, find_bearer, is_b64token, token_digest

logger = logging.getLogger("asgi_kit")


class AuthResult(NamedTuple):
    """The outcome of authenticating one request: a session, or why there is none."""

    session: Session | None
    error: AuthError | None = None


# The NamedTuple's own __new__ is a Python function; this makes the same tuple for less.
_tuple_new = tuple.__new__

#: One shared result per reason a request is anonymous (results are immutable).
_ANONYMOUS = {error: AuthResult(None, error) for error in AuthError}
_INVALID = _ANONYMOUS[AuthError.INVALID]  # looking up an Enum member costs more than this


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
        self._touch_seconds = self.touch_interval.total_seconds()

    async def resolve(self, token: str) -> Session | None:
        """Return the active session of ``token``, or None (malformed tokens included)."""
        if not is_b64token(token):
            return None
        header = (b"authorization", b"Bearer " + token.encode("ascii"))
        return (await self.authenticate((header,))).session

    async def authenticate(self, headers: Iterable[tuple[bytes, bytes]]) -> AuthResult:
        """Authenticate raw ASGI headers; ``StoreUnavailableError`` propagates.

        This runs on every request, so it is written for speed: one store call, one
        clock read, float comparisons, and a store write only when activity is due.
        """
        token = find_bearer(headers)
        if not isinstance(token, bytes):
            return _ANONYMOUS[token]
        session = await self.session_db.get_by_token_digest(token_digest(token))
        now = time.time()
        # Session.is_active(now) and a "last seen before" test, as bare float compares.
        if session is None or now >= session._deadline_ts:
            return _INVALID
        if session._seen_ts < now - self._touch_seconds:
            session = await self._touch(session, now)
        return _tuple_new(AuthResult, (session, None))

    async def _touch(self, session: Session, now: float) -> Session:
        seen = datetime.fromtimestamp(now, timezone.utc)
        try:
            await self.session_db.touch(session, seen)
        except StoreUnavailableError:
            logger.warning("could not record activity on session %s", session.id)
        return session.replace(last_seen_at=seen)
