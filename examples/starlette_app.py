"""Plain Starlette behind ``BearerAuthMiddleware``: ``POST /login`` gives a token for ``/me``.

Run it with ``uvicorn examples.starlette_app:app``, then
``curl -H "Authorization: Bearer $(curl -s -X POST localhost:8000/login)" localhost:8000/me``.
"""

import uuid

from starlette.applications import Starlette
from starlette.authentication import requires
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from asgi_kit import BearerAuthMiddleware, InMemorySessionDatabase, Session, generate_token

store = InMemorySessionDatabase()


async def login(request: Request) -> PlainTextResponse:
    """Start a session for a new user (a real app checks a password first); answer its token."""
    session = Session(user_id=uuid.uuid4(), token=generate_token())
    await store.create(session)
    return PlainTextResponse(session.token)


@requires("authenticated")
async def me(request: Request) -> PlainTextResponse:
    """The caller's user id: 403 without a valid token, as ``requires`` does."""
    return PlainTextResponse(request.user.identity)


app = Starlette(
    routes=[Route("/login", login, methods=["POST"]), Route("/me", me)],
    middleware=[Middleware(BearerAuthMiddleware, session_db=store)],
)
