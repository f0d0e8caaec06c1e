"""``BearerAuthMiddleware``: session-backed bearer auth for any ASGI app."""

from __future__ import annotations

from collections.abc import MutableMapping
from datetime import timedelta
from typing import Any

from starlette.authentication import AuthCredentials, BaseUser, UnauthenticatedUser
from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocketClose

from ._errors import StoreUnavailableError
from ._http import ErrorCode, unauthorized_detail, www_authenticate
from ._models import Session
from ._protocol import SessionDatabase
from ._resolver import AuthResult, SessionResolver
from ._tokens import AuthError

#: The scope key under which the middleware leaves the ``Session``, or the ``AuthError``
#: saying why there is none (read it with ``get_session`` or ``get_auth_result``).
SCOPE_KEY = "asgi_kit.auth"

_AUTHENTICATED_SCOPES = frozenset({"http", "websocket"})


class SessionUser(BaseUser):
    """The Starlette user of an authenticated request; ``identity`` is the user id."""

    __slots__ = ("session",)

    def __init__(self, session: Session) -> None:
        self.session = session

    @property
    def is_authenticated(self) -> bool:
        """Always True."""
        return True

    @property
    def display_name(self) -> str:
        """The user id as a string."""
        return str(self.session.user_id)

    @property
    def identity(self) -> str:
        """The user id as a string."""
        return str(self.session.user_id)


_new = object.__new__


def attach(scope: Scope, found: Session | AuthError) -> None:
    """Leave on ``scope`` what ``SessionResolver.authenticate`` found for it.

    The result goes under ``SCOPE_KEY``; ``scope["auth"]`` and ``scope["user"]`` become
    ``AuthCredentials(["authenticated"])`` and a ``SessionUser``, or empty credentials
    and an ``UnauthenticatedUser``. They are fresh each call, so one request's change to
    ``request.auth.scopes`` never reaches another.
    """
    scope[SCOPE_KEY] = found
    # The same objects their constructors make, without the constructors' Python frames:
    # on the middleware's hot path those cost more than the rest of this function.
    credentials = _new(AuthCredentials)
    if isinstance(found, Session):
        credentials.scopes = ["authenticated"]
        user = _new(SessionUser)
        user.session = found
        scope["user"] = user
    else:
        credentials.scopes = []
        scope["user"] = _new(UnauthenticatedUser)
    scope["auth"] = credentials


def get_auth_result(conn: HTTPConnection | MutableMapping[str, Any]) -> AuthResult | None:
    """The ``AuthResult`` the middleware left on a request or scope; None if it did not run."""
    scope = conn.scope if isinstance(conn, HTTPConnection) else conn
    found = scope.get(SCOPE_KEY)
    return AuthResult.of(found) if isinstance(found, Session | AuthError) else None


def get_session(conn: HTTPConnection | MutableMapping[str, Any]) -> Session | None:
    """The session of a request (or raw scope), None when it is anonymous.

    Raises ``RuntimeError`` when neither ``BearerAuthMiddleware`` nor ``SessionAuthBackend``
    ran for the request, so a missing middleware is never mistaken for "logged out".
    """
    result = get_auth_result(conn)
    if result is None:
        raise RuntimeError("BearerAuthMiddleware must be installed to access the session")
    return result.session


class BearerAuthMiddleware:
    """Resolve ``Authorization: Bearer <token>`` to a session once per request.

    ``http`` and ``websocket`` scopes get ``scope["user"]``, ``scope["auth"]`` and the
    session (read it with ``get_session``); other scopes pass through untouched. A
    missing or bad token leaves the request anonymous, with the reason kept, unless
    ``reject_invalid`` is set: then a presented but bad token is answered with 401
    (a WebSocket is closed with 1008 before it is accepted). An unreachable store is
    answered with 503, never with a 401 that would look like a logout.

    >>> app = BearerAuthMiddleware(app, session_db=InMemorySessionDatabase())  # doctest: +SKIP
    """

    def __init__(
        self,
        app: ASGIApp,
        session_db: SessionDatabase,
        *,
        touch_interval: timedelta | float = 60,
        reject_invalid: bool = False,
    ) -> None:
        self.app = app
        self.resolver = SessionResolver(session_db, touch_interval=touch_interval)
        self.reject_invalid = reject_invalid

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Authenticate ``http`` and ``websocket`` scopes, then call the wrapped app."""
        if scope["type"] not in _AUTHENTICATED_SCOPES:
            await self.app(scope, receive, send)
            return
        try:
            found = await self.resolver.authenticate(scope["headers"])
        except StoreUnavailableError:
            await _refuse(scope, receive, send, 503, ErrorCode.SESSION_STORE_UNAVAILABLE, {})
            return
        # isinstance(found, Session), not AuthError: an Enum's isinstance check is slow.
        if not isinstance(found, Session) and self.reject_invalid and found.token_presented:
            challenge = {"WWW-Authenticate": www_authenticate(found)}
            await _refuse(scope, receive, send, 401, unauthorized_detail(found), challenge)
            return
        attach(scope, found)
        await self.app(scope, receive, send)


async def _refuse(
    scope: Scope, receive: Receive, send: Send, status: int, detail: str, headers: dict[str, str]
) -> None:
    if scope["type"] == "websocket":
        code = 1013 if status == 503 else 1008
        await WebSocketClose(code=code, reason=detail)(scope, receive, send)
        return
    await JSONResponse({"detail": detail}, status, headers)(scope, receive, send)
