"""``TokenRefresher``: short-lived access tokens, rotating refresh tokens, reuse detection.

The rule (OAuth 2.0 Security BCP, RFC 9700 section 4.14.2): each refresh consumes the
refresh token and issues a new pair; a consumed token presented again means two parties
hold it, one of them an attacker, so the session ends. Except within ``reuse_interval``
of its rotation, when the token that was just consumed gets the same current pair (two
tabs refreshing at once, or a retry after a lost response): all of them converge.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from ._clock import duration_setting, utcnow
from ._errors import AsgiKitError, ConfigurationError
from ._http import ErrorCode
from ._models import Session
from ._refresh_tokens import RefreshClaim, RefreshSecret, seal, unseal
from ._stores import RotatingSessionDatabase, SessionDatabase
from ._tokens import generate_token, is_b64token, token_digest

__all__ = ["RefreshError", "RefreshTokenReusedError", "TokenRefresher"]


class RefreshError(AsgiKitError, ValueError):
    """A refresh token that gets nothing; ``code`` (an ``ErrorCode``) says why.

    The message never quotes the token.
    """

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        """Why the refresh token got nothing (an ``ErrorCode``)."""


class RefreshTokenReusedError(RefreshError):
    """A refresh token rotated out before the reuse interval was presented: the session ended.

    ``session`` is the session that was ended (None if something else ended it first).
    """

    def __init__(self, session: Session | None) -> None:
        super().__init__(
            ErrorCode.REFRESH_TOKEN_REUSED,
            "a refresh token that was already used was presented again: the session was ended",
        )
        self.session = session
        """The session that was ended, or None if something else ended it first."""


def _invalid(why: str) -> RefreshError:
    return RefreshError(ErrorCode.REFRESH_TOKEN_INVALID, f"the refresh token {why}")


class TokenRefresher:
    """Issue and rotate a session's tokens in ``session_db`` (a ``RotatingSessionDatabase``).

    ``access_token_lifetime`` (seconds or a timedelta) is how long an access token works;
    ``reuse_interval`` how long a consumed refresh token still gets the current pair;
    ``secret`` signs refresh tokens (``RefreshSecret``: at least 32 bytes, the same on
    every instance; a list to rotate it). ``SessionManager(access_token_lifetime=...)``
    makes one; use it directly in a Starlette or plain ASGI app:

        refresher = TokenRefresher(store, access_token_lifetime=300, secret=SECRET)
        session = await refresher.refresh(token)  # or RefreshError
    """

    def __init__(
        self,
        session_db: SessionDatabase,
        *,
        access_token_lifetime: timedelta | float,
        reuse_interval: timedelta | float = 10,
        secret: str | bytes | Sequence[str | bytes] | None,
    ) -> None:
        if not isinstance(session_db, RotatingSessionDatabase):
            raise ConfigurationError(
                f"{type(session_db).__name__} cannot rotate tokens: refresh tokens need a "
                "store with rotate() (every asgi-kit store has it)"
            )
        self.session_db = session_db
        """The store whose sessions' tokens are rotated."""
        lifetime = duration_setting(access_token_lifetime, "access_token_lifetime")
        self.access_token_lifetime = lifetime
        """How long an access token works."""
        self.reuse_interval = duration_setting(reuse_interval, "refresh_reuse_interval", zero=True)
        """How long a consumed refresh token still gets the current pair."""
        self.secret = RefreshSecret(secret)
        """The secret(s) that sign refresh tokens."""

    def new_tokens(self, session_id: UUID, now: datetime) -> dict[str, Any]:
        """The refresh fields of a new session ``session_id`` (generation 0) created ``now``.

        As ``Session`` takes them: the refresh token and the access token's expiry.
        """
        return {
            "refresh_token": self.secret.mint(session_id, 0),
            "access_expires_at": now + self.access_token_lifetime,
        }

    def claim(self, refresh_token: str) -> RefreshClaim:
        """What a genuine refresh token says; ``RefreshError`` if it is malformed or forged."""
        if not refresh_token:
            raise RefreshError(ErrorCode.REFRESH_TOKEN_MISSING, "no refresh token was given")
        claim = self.secret.read(refresh_token) if is_b64token(refresh_token) else None
        if claim is None:
            raise RefreshError(
                ErrorCode.REFRESH_TOKEN_MALFORMED, "this is not a refresh token of this app"
            )
        return claim

    async def refresh(self, refresh_token: str, *, session_id: UUID | None = None) -> Session:
        """Exchange a refresh token for the session with its next tokens (both set, raw).

        ``session_id``, when the request also proved a session (a Bearer header, a
        cookie), must be the token's own. Raises ``RefreshError`` (nothing changed), or
        ``RefreshTokenReusedError`` after ending the session; ``StoreUnavailableError``
        propagates.
        """
        claim = self.claim(refresh_token)
        if session_id is not None and session_id != claim.session_id:
            raise RefreshError(
                ErrorCode.REFRESH_TOKEN_OF_ANOTHER_SESSION,
                "the refresh token belongs to another session than the request's credentials",
            )
        session = await self._current(claim)
        if claim.generation == session.refresh_generation:
            if token_digest(refresh_token) != session.refresh_digest:
                raise _invalid("is not the session's current one")
            rotated = self._rotated(session, refresh_token)
            if await self.session_db.rotate(session, rotated):
                return rotated
            session = await self._current(claim)  # another request rotated it first
        if claim.generation < session.refresh_generation:
            return await self._replayed(session, claim, refresh_token)
        raise _invalid("is not one the session was given")

    async def _current(self, claim: RefreshClaim) -> Session:
        session = await self.session_db.get(claim.session_id)
        if session is None or session.refresh_digest is None:
            raise _invalid("belongs to no active session (unknown, ended or expired)")
        return session

    async def _replayed(self, session: Session, claim: RefreshClaim, token: str) -> Session:
        """The answer to a token rotated out: the current pair within the interval, else the end."""
        if self._within_interval(session, claim):
            assert session.rotation_seal is not None  # a rotation left it
            tokens = unseal(token, session.rotation_seal)
            try:
                if tokens is None:
                    raise ValueError("unreadable seal")
                # Session checks each token against the digest the store keeps.
                return session.replace(token=tokens[0], refresh_token=tokens[1])
            except ValueError:
                # A genuine tag on a token that was never issued: the secret leaked.
                raise _invalid("is not the one this session's last rotation consumed") from None
        ended = await self.session_db.delete(session.id)
        raise RefreshTokenReusedError(ended)

    def _within_interval(self, session: Session, claim: RefreshClaim) -> bool:
        """True for the token the last rotation consumed, within ``reuse_interval`` of it."""
        rotated_at = session.refreshed_at
        return (
            claim.generation == session.refresh_generation - 1
            and rotated_at is not None
            and session.rotation_seal is not None
            and utcnow() - rotated_at <= self.reuse_interval
        )

    def _rotated(self, session: Session, consumed: str) -> Session:
        now = utcnow()
        generation = session.refresh_generation + 1
        access, refresh = generate_token(), self.secret.mint(session.id, generation)
        return session.replace(
            token=access,
            token_digest="",
            refresh_token=refresh,
            refresh_digest=None,
            refresh_generation=generation,
            access_expires_at=now + self.access_token_lifetime,
            refreshed_at=now,
            rotation_seal=seal(consumed, access, refresh),
            last_seen_at=now,  # a refresh is activity
        )


def expires_in(session: Session, now: float | None = None) -> int:
    """Whole seconds until ``session``'s access token expires (or the session ends) from ``now``."""
    now = time.time() if now is None else now
    ends = [m.timestamp() for m in (session.access_expires_at, session.deadline) if m is not None]
    return max(0, round(min(ends) - now)) if ends else 0
