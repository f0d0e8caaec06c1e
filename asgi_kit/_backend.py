"""``SessionAuthBackend``: the same request path for Starlette's ``AuthenticationMiddleware``."""

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
from ._http import STORE_UNAVAILABLE
from ._models import Session
from ._request import resolve_request
from ._resolver import HasResolver, resolver_for
from ._stores import SessionDatabase


class SessionAuthBackend(AuthenticationBackend):
    """A Starlette ``AuthenticationBackend`` over the same request path as the middleware.

    ``session_db`` is a store or the app's ``SessionManager`` (as for the middleware). A
    missing or bad token makes the request anonymous (the reason is kept for
    ``get_auth_result``). Pass ``on_error=SessionAuthBackend.on_error`` to Starlette's
    middleware so an unreachable store is answered with a JSON 503:

        app.add_middleware(
            AuthenticationMiddleware,
            backend=SessionAuthBackend(manager),
            on_error=SessionAuthBackend.on_error,
        )
    """

    def __init__(
        self,
        session_db: SessionDatabase | HasResolver,
        *,
        touch_interval: timedelta | float | None = None,
    ):
        self.resolver = resolver_for(session_db, touch_interval)
        """Resolves each connection's token to its session (the ``SessionManager``'s when given
        one)."""

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser] | None:
        """Return credentials and a ``SessionUser`` for a valid token, else None."""
        try:
            found = await resolve_request(conn, self.resolver)
        except StoreUnavailableError as exc:
            raise AuthenticationError(STORE_UNAVAILABLE.detail.value) from exc
        if not isinstance(found, Session):
            return None
        # The request path left them on the scope: handed back, not built a second time.
        return conn.scope["auth"], conn.scope["user"]

    @staticmethod
    def on_error(conn: HTTPConnection, exc: AuthenticationError) -> Response:
        """Render an authentication failure as JSON: 503 for an unreachable store, else 400."""
        if str(exc) == STORE_UNAVAILABLE.detail.value:
            return STORE_UNAVAILABLE.response()
        return JSONResponse({"detail": str(exc)}, status_code=400)
