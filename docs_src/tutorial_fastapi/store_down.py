import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Body, Depends, FastAPI, HTTPException, Request

from asgi_kit import (
    BearerAuthMiddleware,
    RedisSessionDatabase,
    Session,
    StoreUnavailableError,
    store_unavailable_handler,
)
from fastapi_users.extensions.session_manager import SessionManager

PASSWORDS = {"alice": "wonderland", "bob": "builder"}

store = RedisSessionDatabase(os.environ.get("REDIS_URL", "redis://localhost:6379/0"))
manager = SessionManager(session_db=store)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield
    await store.aclose()


app = FastAPI(lifespan=lifespan)
app.add_middleware(BearerAuthMiddleware, session_db=manager)
app.include_router(manager.router, prefix="/auth/sessions")
# A login while the store is down: 503 JSON with Retry-After, like the session routes.
app.add_exception_handler(StoreUnavailableError, store_unavailable_handler)


@app.post("/auth/login")
async def login(
    request: Request, username: Annotated[str, Body()], password: Annotated[str, Body()]
) -> dict[str, str]:
    expected = PASSWORDS.get(username)
    if expected is None or not secrets.compare_digest(expected.encode(), password.encode()):
        raise HTTPException(400, "LOGIN_BAD_CREDENTIALS")
    session = await manager.login(request, username)
    return {"access_token": session.token, "token_type": "bearer"}


@app.get("/me")
async def me(session: Annotated[Session, Depends(manager.current_session)]) -> dict[str, str]:
    return {"user_id": str(session.user_id), "session_id": str(session.id)}
