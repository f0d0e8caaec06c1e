"""``SessionResolver``: the one code path from a request, or a bearer token, to its session."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, MutableMapping
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol, runtime_checkable

from starlette.authentication import AuthCredentials, UnauthenticatedUser

from ._clock import as_interval
from ._cookies import SessionCookie
from ._errors import ConfigurationError, StoreUnavailableError
from ._models import Session
from ._scope import SCOPE_KEY, SessionUser
from ._stores import SessionDatabase
from ._tokens import AnonymousReason, find_bearer, is_b64token, token_digest

logger = logging.getLogger("asgi_kit")
_MISSING = AnonymousReason.MISSING
#: The credentials' scopes of an authenticated request (copied by ``AuthCredentials``).
_AUTHENTICATED = ("authenticated",)


class SessionResolver:
    """Resolve requests, and bearer tokens, to active sessions through a ``SessionDatabase``.

    The store is asked by token digest only, and returns active sessions only (its
    contract: expiry is decided by ``Session.is_active`` there). ``last_seen_at`` is written
    back at most once per ``touch_interval`` per session, so a busy client does not cause
    a write per request. A ``SessionManager`` owns one (``manager.resolver``); hand the
    manager to ``BearerAuthMiddleware`` so both share it.
    """

    def __init__(
        self,
        session_db: SessionDatabase,
        *,
        touch_interval: timedelta | float = 60,
        cookie: SessionCookie | None = None,
    ):
        self.session_db = session_db
        """The store sessions are looked up in."""
        self.touch_interval = as_interval(touch_interval, "touch_interval")
        """How often a session's ``last_seen_at`` is written back, at most."""
        self.cookie = cookie
        """Where browsers' requests carry the token when they have no Authorization header."""
        self._touch_seconds = self.touch_interval.total_seconds()

    async def resolve(self, token: str) -> Session | None:
        """Return the active session of ``token``, or None (malformed tokens included)."""
        if not is_b64token(token):
            return None
        found = await self.look_up(token.encode("ascii"))
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
            return await self.look_up(token)
        return token

    async def resolve_scope(self, scope: MutableMapping[str, Any]) -> Session | AnonymousReason:
        """The session of the request ``scope`` describes, or why there is none.

        The one request path (``resolve_request`` is it for a connection): the first call
        resolves the request's ``credential`` and leaves the outcome on the scope
        (``SCOPE_KEY``), with Starlette's ``scope["auth"]`` and ``scope["user"]``, fresh
        per request so one request's change to ``request.auth.scopes`` never reaches
        another; every later call, in any layer, reads it back. ``StoreUnavailableError``
        propagates and leaves nothing on the scope.
        """
        found: Session | AnonymousReason | None = scope.get(SCOPE_KEY)
        if found is not None:
            return found
        token = self.credential(scope)
        found = await self.look_up(token) if isinstance(token, bytes) else token
        scope[SCOPE_KEY] = found
        if isinstance(found, Session):
            scope["auth"] = AuthCredentials(_AUTHENTICATED)
            scope["user"] = SessionUser(found)
        else:
            scope["auth"] = AuthCredentials()
            scope["user"] = UnauthenticatedUser()
        return found

    def credential(self, scope: MutableMapping[str, Any]) -> bytes | AnonymousReason:
        """The token a request presents, or why there is none.

        Its bearer token; without an ``Authorization`` header, its session cookie (if the
        resolver has one), refused unread on a state-changing request that may be
        cross-site (``SessionCookie.token_of``).
        """
        token = find_bearer(scope.get("headers") or ())
        if token is _MISSING and self.cookie is not None:
            return self.cookie.token_of(scope)
        return token

    async def look_up(self, token: bytes) -> Session | AnonymousReason:
        """The active session of a token's bytes (as ``credential`` gives them), or why not:
        ``INVALID``, or ``EXPIRED`` for an access token past its lifetime (the session lives
        on: refresh it).

        Activity is written back when due (``touch_interval``).
        """
        session = await self.session_db.get_by_token_digest(token_digest(token))
        if session is None:
            return AnonymousReason.INVALID
        now = time.time()
        if session.access_token_expired(now):
            return AnonymousReason.EXPIRED
        if session.last_seen_before(now - self._touch_seconds):
            session = await self._touch(session, now)
        return session

    async def _touch(self, session: Session, now: float) -> Session:
        seen = datetime.fromtimestamp(now, timezone.utc)
        try:
            updated = await self.session_db.touch(session, seen)
        except StoreUnavailableError:
            logger.warning("could not record activity on session %s", session.id)
            updated = None
        # The store's updated session when it built one: never built twice per touch.
        return session.replace(last_seen_at=seen) if updated is None else updated


@runtime_checkable
class HasResolver(Protocol):
    """What owns a ``SessionResolver`` (a ``SessionManager``), to share its configuration.

    ``BearerAuthMiddleware`` and ``SessionAuthBackend`` take one in place of a store, and
    then use its resolver: store, ``touch_interval`` and cookie are set once, there:

        manager = SessionManager(session_db=store, touch_interval=300)
        app = BearerAuthMiddleware(app, session_db=manager)  # manager.resolver
    """

    @property
    def resolver(self) -> SessionResolver:
        """The resolver every layer of the app uses."""
        ...


def resolver_for(
    session_db: SessionDatabase | HasResolver, touch_interval: timedelta | float | None
) -> SessionResolver:
    """The resolver of a manager (configured once, there), or a new one over a store."""
    if isinstance(session_db, HasResolver):
        if touch_interval is not None:
            raise ConfigurationError(
                "touch_interval belongs to the SessionManager handed in: set it there"
            )
        return session_db.resolver
    return SessionResolver(
        session_db, touch_interval=60 if touch_interval is None else touch_interval
    )
