"""``SessionStrategy``: FastAPI Users' ``Strategy`` protocol, backed by a ``SessionManager``.

FastAPI Users is never imported here: the strategy matches its protocol structurally, so
this package installs and type-checks without it, and beside any FastAPI Users 15 release.
"""

from __future__ import annotations

from typing import Any, Generic, Protocol, TypeVar

from fastapi import HTTPException
from starlette.requests import HTTPConnection

from asgi_kit import (
    AnonymousReason,
    ErrorCode,
    InvalidUserIdError,
    Session,
    SessionLimitError,
    coerce_user_id,
    generate_token,
    refusal,
    resolve_token,
)

from ._events import EndReason
from ._manager import Manager
from ._session_api import as_http, device_of, store_errors_as_503
from ._transport import remember_issued, remember_request

__all__ = ["SessionStrategy", "UserDatabaseLike", "UserLike", "UserManagerLike"]


class UserLike(Protocol):
    """What the strategy needs of a user: its ``id`` (a UUID, a string or an int)."""

    @property
    def id(self) -> Any:
        """The user's primary key."""


U = TypeVar("U", bound=UserLike)
U_co = TypeVar("U_co", bound=UserLike, covariant=True)


class UserDatabaseLike(Protocol[U_co]):
    """The part of FastAPI Users' ``BaseUserDatabase`` the strategy uses."""

    async def get(self, id: Any) -> U_co | None:
        """Return the user with this (parsed) id, or None if there is none."""
        ...


class UserManagerLike(Protocol[U_co]):
    """The part of FastAPI Users' ``BaseUserManager`` the strategy uses."""

    @property
    def user_db(self) -> UserDatabaseLike[U_co]:
        """The user database adapter."""
        ...

    def parse_id(self, value: Any) -> Any:
        """Parse a user id from a string; raises (``InvalidID``) when it is not one."""
        ...


class SessionStrategy(Generic[U]):
    """A FastAPI Users authentication strategy whose tokens are ``SessionManager`` sessions.

    Every login through FastAPI Users' ``/login`` route creates a session with a fresh
    token (with the user agent and client IP of ``connection``, the request being served),
    every authenticated request resolves its bearer token through the manager, and
    ``/logout`` ends the session. FastAPI makes one per request from ``manager.strategy``:

        AuthenticationBackend(
            name="session",
            transport=BearerTransport(tokenUrl="auth/login"),
            get_strategy=manager.strategy,
        )

    Any FastAPI Users id type works (``UUIDIDMixin``, ``IntegerIDMixin``, your own): the
    session keeps ``coerce_user_id(user.id)`` and the user manager's ``parse_id`` reads it.
    """

    def __init__(self, manager: Manager, connection: HTTPConnection | None = None):
        self.manager = manager
        """The ``SessionManager`` whose sessions the tokens are."""
        self.connection = connection
        """The request being served (its user agent and IP go into new sessions), or None."""

    async def read_token(self, token: str | None, user_manager: UserManagerLike[U]) -> U | None:
        """The user of an active session with this token, or None.

        The request's own token is the session ``BearerAuthMiddleware`` (or an earlier
        dependency) resolved: reused, never looked up again. A token that is not an
        RFC 6750 b64token is refused before any store look-up; a session whose user id the
        user manager cannot parse, or whose user no longer exists, yields None. An
        unreachable session store answers 503.
        """
        if token is None:
            return None
        with store_errors_as_503():
            session = await self._session_of(token)
        if session is None:
            return None
        try:
            user_id = user_manager.parse_id(str(session.user_id))
        except Exception:
            return None
        return await user_manager.user_db.get(user_id)

    async def write_token(self, user: U) -> str:
        """Create a session for ``user`` (a login) and return its fresh token.

        The user agent and client IP come from the strategy's ``connection`` (none are
        recorded without one). A login refused by ``max_sessions_per_user`` with
        ``limit_policy="refuse"`` answers 409 ``SESSION_LIMIT_REACHED``. With refresh tokens
        on, the token is a short-lived access token, and a transport from
        ``manager.transport()`` adds the session's refresh token to the login response.
        """
        connection = self.connection
        scope = None if connection is None else connection.scope
        user_agent, ip_address, device = await device_of(scope)
        try:
            with store_errors_as_503():
                session = await self.manager.create_session(
                    user.id,
                    generate_token(),
                    user_agent=user_agent,
                    ip_address=ip_address,
                    refresh_token=self.manager.refresher is not None,
                    device=device,
                )
        except SessionLimitError as exc:
            raise HTTPException(409, ErrorCode.SESSION_LIMIT_REACHED) from exc
        remember_issued(session, connection)
        return session.token

    async def destroy_token(self, token: str, user: U) -> None:
        """End the session of ``token`` (a logout); a no-op if it is not ``user``'s or gone.

        The session is the one the request resolved: ending it takes no second look-up.
        """
        remember_request(self.connection)
        with store_errors_as_503():
            session = await self._session_of(token)
            if session is None or not _owned_by(session, user):
                return
            await self.manager.revoke_session(session.id, reason=EndReason.LOGOUT)

    async def _session_of(self, token: str) -> Session | None:
        if self.connection is None:  # made by hand, outside a request
            return await self.manager.authenticate(token)
        found = await resolve_token(self.connection, token, self.manager.resolver)
        if found is AnonymousReason.CROSS_SITE:  # CookieTransport, and a cross-site request
            raise as_http(refusal(found))
        return found if isinstance(found, Session) else None


def _owned_by(session: Session, user: UserLike) -> bool:
    try:
        return session.user_id == coerce_user_id(user.id)
    except InvalidUserIdError:
        return False
