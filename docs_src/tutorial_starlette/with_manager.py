from __future__ import annotations

from starlette.applications import Starlette
from starlette.authentication import requires
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from asgi_kit import BearerAuthMiddleware, request_session
from fastapi_users.extensions.session_manager import SessionManager

manager = SessionManager()


async def login(request: Request) -> PlainTextResponse:
    user_id = "alice"  # a real app checks a password first
    session = await manager.login(request, user_id)
    return PlainTextResponse(session.token)


@requires("authenticated")
async def me(request: Request) -> PlainTextResponse:
    return PlainTextResponse(request.user.identity)  # the user id


async def my_session(request: Request) -> JSONResponse:
    session = request_session(request)  # None when anonymous
    if session is None:
        return JSONResponse({"detail": "anonymous"}, status_code=401)
    return JSONResponse({"id": str(session.id), "user_agent": session.user_agent})


async def greet(websocket: WebSocket) -> None:
    await websocket.accept()
    who = websocket.user.identity if websocket.user.is_authenticated else "anonymous"
    await websocket.send_text(f"hello {who}")
    await websocket.close()


app = Starlette(
    routes=[
        Route("/login", login, methods=["POST"]),
        Route("/me", me),
        Route("/session", my_session),
        WebSocketRoute("/greet", greet),
    ],
    middleware=[Middleware(BearerAuthMiddleware, session_db=manager)],
)
