from __future__ import annotations

import os
import uuid

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from asgi_kit import (
    BearerAuthMiddleware,
    InMemorySessionDatabase,
    RefreshError,
    Session,
    TokenRefresher,
    expires_in,
    generate_token,
    utcnow,
)

store = InMemorySessionDatabase()
refresher = TokenRefresher(store, access_token_lifetime=900, secret=os.environ["REFRESH_SECRET"])


def tokens(session: Session) -> JSONResponse:
    body = {
        "access_token": session.token,
        "token_type": "bearer",
        "expires_in": expires_in(session),
        "refresh_token": session.refresh_token,
    }
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


async def login(request: Request) -> Response:
    user_id = request.path_params["user_id"]  # after checking the password
    session_id, now = uuid.uuid4(), utcnow()
    session = Session(
        id=session_id,
        user_id=user_id,
        token=generate_token(),
        created_at=now,
        **refresher.new_tokens(session_id, now),
    )
    await store.create(session)
    return tokens(session)


async def refresh(request: Request) -> Response:
    body = await request.json()
    try:
        session = await refresher.refresh(str(body.get("refresh_token", "")))
    except RefreshError as exc:  # RefreshTokenReusedError too: its session has ended
        return JSONResponse({"detail": exc.code.value}, 400)
    return tokens(session)


app = Starlette(
    routes=[
        Route("/login/{user_id}", login, methods=["POST"]),
        Route("/refresh", refresh, methods=["POST"]),
    ],
    middleware=[Middleware(BearerAuthMiddleware, session_db=store)],
)
