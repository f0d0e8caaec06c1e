"""``SessionAuthBackend``: the same resolution for Starlette's ``AuthenticationMiddleware``."""

from __future__ import annotations

from datetime import timedelta

from starlette.authentication import (
    AuthCredentials,
    AuthenticationBackend,
    AuthenticationError,
    BaseUser,
)
from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse, Response

from ._errors import StoreUnavailableError
from ._http import ErrorCode
from ._middleware import attach
from ._models import Session
from ._protocol import SessionDatabase
from ._resolver import SessionResolver


class SessionAuthBackend(AuthenticationBackend):
    """A Starlette ``AuthenticationBackend`` over the same resolution as the middleware.

    A missing or bad token makes the request anonymous (the reason is kept for
    ``get_auth_result``). Pass ``on_error=SessionAuthBackend.on_error`` to Starlette's
    middleware so an unreachable store is answered with a JSON 503::

        app.add_middleware(
            AuthenticationMiddleware,
            backend=SessionAuthBackend(store),
            on_error=SessionAuthBackend.on_error,
        )
    """

    def __init__(self, session_db: SessionDatabase, *, touch_interval: timedelta | float = 60):
        self.resolver = SessionResolver(session_db, touch_interval=touch_interval)

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser] | None:
        """Return credentials and a ``SessionUser`` for a valid token, else None."""
        try:
            found = await self.resolver.authenticate(conn.scope["headers"])
        except StoreUnavailableError as exc:
            raise AuthenticationError(ErrorCode.SESSION_STORE_UNAVAILABLE.value) from exc
        attach(conn.scope, found)
        if not isinstance(found, Session):
            return None
        return conn.scope["auth"], conn.scope["user"]

    @staticmethod
    def on_error(conn: HTTPConnection, exc: AuthenticationError) -> Response:
        """Render an authentication failure as JSON: 503 for an unreachable store, else 400."""
        status = 503 if str(exc) == ErrorCode.SESSION_STORE_UNAVAILABLE.value else 400
        return JSONResponse({"detail": str(exc)}, status_code=status)
