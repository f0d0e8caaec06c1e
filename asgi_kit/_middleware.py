"""``BearerAuthMiddleware``: session-backed bearer auth for any ASGI app."""

from __future__ import annotations

from datetime import timedelta

from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocketClose

from ._errors import StoreUnavailableError
from ._http import STORE_UNAVAILABLE, Refusal, refusal
from ._models import Session
from ._resolver import HasResolver, resolver_for
from ._stores import SessionDatabase

_AUTHENTICATED_SCOPES = frozenset({"http", "websocket"})


class BearerAuthMiddleware:
    """Resolve ``Authorization: Bearer <token>`` to a session once per request.

    ``session_db`` is a store, or better the app's ``SessionManager``: then the store and
    ``touch_interval`` are the manager's, configured once. ``http`` and ``websocket``
    scopes get ``scope["user"]``, ``scope["auth"]`` and the session (read it with
    ``request_session``, or ``Depends(manager.current_session)``: nothing resolves it a
    second time); other scopes pass through untouched. A missing or bad token leaves the
    request anonymous, with the reason kept, unless ``reject_invalid`` is set: then a
    presented but bad token is answered with 401 (a WebSocket is closed with 1008 before
    it is accepted). An unreachable store is answered with 503, never with a 401.

    Examples:
        >>> app = BearerAuthMiddleware(app, session_db=manager)  # doctest: +SKIP
    """

    def __init__(
        self,
        app: ASGIApp,
        session_db: SessionDatabase | HasResolver,
        *,
        touch_interval: timedelta | float | None = None,
        reject_invalid: bool = False,
    ) -> None:
        self.app = app
        """The ASGI app called next."""
        self.resolver = resolver_for(session_db, touch_interval)
        """Resolves each request's token to its session (the ``SessionManager``'s when given one).
        """
        self.reject_invalid = reject_invalid
        """Answer a presented but bad token with 401 instead of passing the request on anonymous."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Authenticate ``http`` and ``websocket`` scopes, then call the wrapped app."""
        if scope["type"] not in _AUTHENTICATED_SCOPES:
            await self.app(scope, receive, send)
            return
        try:
            found = await self.resolver.resolve_scope(scope)
        except StoreUnavailableError:
            await refuse(scope, receive, send, STORE_UNAVAILABLE)
            return
        if not isinstance(found, Session) and self.reject_invalid and found.token_presented:
            await refuse(scope, receive, send, refusal(found))
            return
        await self.app(scope, receive, send)


async def refuse(scope: Scope, receive: Receive, send: Send, answer: Refusal) -> None:
    """Send ``answer`` as JSON, or close a WebSocket handshake (1013 or 1008) with it."""
    if scope["type"] == "websocket":
        code = 1013 if answer.status == 503 else 1008
        await WebSocketClose(code=code, reason=answer.detail)(scope, receive, send)
        return
    await answer.response()(scope, receive, send)
