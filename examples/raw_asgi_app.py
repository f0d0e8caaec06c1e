"""A raw ASGI app behind ``BearerAuthMiddleware``: ``POST /login`` answers a fresh token, any
other HTTP request who is calling (or 401). Run: ``uvicorn examples.raw_asgi_app:app``."""

import uuid

from starlette.types import Receive, Scope, Send

from asgi_kit import BearerAuthMiddleware, InMemorySessionDatabase, Session, generate_token
from asgi_kit import request_session as session_of

store = InMemorySessionDatabase()


async def reply(send: Send, status: int, text: str) -> None:
    """Send a whole plain-text HTTP response."""
    headers = [(b"content-type", b"text/plain; charset=utf-8")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": text.encode()})


async def hello(scope: Scope, receive: Receive, send: Send) -> None:
    """The app: the lifespan (nothing to set up), ``POST /login`` and who-am-I."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
    elif scope["method"] == "POST" and scope["path"] == "/login":
        session = Session(user_id=uuid.uuid4(), token=generate_token())
        await store.create(session)
        await reply(send, 200, session.token)
    elif (current := session_of(scope)) is not None:
        await reply(send, 200, f"user {current.user_id}")
    else:
        await reply(send, 401, "anonymous: POST /login for a token")


app = BearerAuthMiddleware(hello, session_db=store)
