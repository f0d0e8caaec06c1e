from __future__ import annotations

import uuid

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from asgi_kit import BearerAuthMiddleware, InMemorySessionDatabase, Session, generate_token

store = InMemorySessionDatabase()


async def login(request: Request) -> PlainTextResponse:
    session = Session(user_id=uuid.uuid4(), token=generate_token())
    await store.create(session)
    return PlainTextResponse(session.token)


async def hello(request: Request) -> PlainTextResponse:
    who = request.user.identity if request.user.is_authenticated else "anonymous"
    return PlainTextResponse(f"hello {who}")


async def greet(websocket: WebSocket) -> None:
    await websocket.accept()
    who = websocket.user.identity if websocket.user.is_authenticated else "anonymous"
    await websocket.send_text(f"hello {who}")
    await websocket.close()


app = Starlette(
    routes=[
        Route("/login", login, methods=["POST"]),
        Route("/hello", hello),
        WebSocketRoute("/greet", greet),
    ],
    # A plain store: the middleware makes its own resolver, with this touch interval.
    middleware=[
        Middleware(BearerAuthMiddleware, session_db=store, touch_interval=60, reject_invalid=True)
    ],
)
