"""``SessionResolver``: the one code path from a bearer token to an active session."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from hashlib import sha256
from typing import NamedTuple

from ._errors import ConfigurationError, StoreUnavailableError
from ._models import Session
from ._protocol import SessionDatabase
from ._tokens import AuthError, find_bearer, is_b64token

logger = logging.getLogger("asgi_kit")


class AuthResult(NamedTuple):
    """The outcome of authenticating one request: a session, or why there is none."""

    session: Session | None
    error: AuthError | None = None

    @classmethod
    def of(cls, found: Session | AuthError) -> AuthResult:
        """The result for what ``SessionResolver.authenticate`` found."""
        return cls(found) if isinstance(found, Session) else _ANONYMOUS[found]


#: One shared result per reason a request is anonymous (results are immutable).
_ANONYMOUS = {error: AuthResult(None, error) for error in AuthError}
_INVALID = AuthError.INVALID  # a module global is read faster than an Enum member


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
        found = await self.authenticate((header,))
        return found if isinstance(found, Session) else None

    async def authenticate(self, headers: Iterable[tuple[bytes, bytes]]) -> Session | AuthError:
        """The active session of raw ASGI headers, or why there is none.

        ``StoreUnavailableError`` propagates. This runs on every request, so it is written
        for speed: one store call, one clock read, float comparisons, no result object,
        and a store write only when activity is due.
        """
        token = find_bearer(headers)
        # Not isinstance(token, AuthError): an Enum's metaclass makes that check slow.
        if not isinstance(token, bytes):
            return token
        # token_digest(token), inlined: the call would cost a tenth of this method.
        session = await self.session_db.get_by_token_digest(sha256(token).hexdigest())
        now = time.time()
        # Session.is_active(now) and a "last seen before" test, as bare float compares.
        if session is None or now >= session._deadline_ts:
            return _INVALID
        if session._seen_ts < now - self._touch_seconds:
            session = await self._touch(session, now)
        return session

    async def _touch(self, session: Session, now: float) -> Session:
        seen = datetime.fromtimestamp(now, timezone.utc)
        try:
            await self.session_db.touch(session, seen)
        except StoreUnavailableError:
            logger.warning("could not record activity on session %s", session.id)
        return session.replace(last_seen_at=seen)
