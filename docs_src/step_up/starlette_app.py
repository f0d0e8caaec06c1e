from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.types import Receive, Scope, Send

from asgi_kit import BearerAuthMiddleware, InMemorySessionDatabase, RecentAuthentication

store = InMemorySessionDatabase()
recent = RecentAuthentication(600)  # seconds, or a timedelta


@recent
async def change_password(request: Request) -> Response:
    return JSONResponse({"changed_for": request.user.display_name})


async def export_everything(scope: Scope, receive: Receive, send: Send) -> None:
    """A raw ASGI app: the same rule, checked on the scope the middleware resolved."""
    answer = recent.check(scope)  # None, or the Refusal to send
    if answer is not None:
        return await answer.response()(scope, receive, send)
    await JSONResponse({"export": "started"})(scope, receive, send)


app = Starlette(
    routes=[
        Route("/account/password", change_password, methods=["POST"]),
        Mount("/export", app=export_everything),
    ],
    middleware=[Middleware(BearerAuthMiddleware, session_db=store)],
)
