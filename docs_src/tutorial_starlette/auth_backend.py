from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from asgi_kit import SessionAuthBackend, get_auth_result
from fastapi_users.extensions.session_manager import SessionManager

manager = SessionManager()


async def whoami(request: Request) -> JSONResponse:
    if request.user.is_authenticated:
        return JSONResponse({"user_id": request.user.identity})
    reason = get_auth_result(request).reason  # why: an AnonymousReason
    return JSONResponse({"detail": "anonymous", "reason": reason}, status_code=401)


app = Starlette(
    routes=[Route("/whoami", whoami)],
    middleware=[
        Middleware(
            AuthenticationMiddleware,
            backend=SessionAuthBackend(manager),
            on_error=SessionAuthBackend.on_error,  # an unreachable store: a JSON 503
        )
    ],
)
