import secrets
from typing import Annotated

from fastapi import Body, Depends, FastAPI, HTTPException, Request

from asgi_kit import BearerAuthMiddleware, Session
from fastapi_users.extensions.session_manager import SessionManager

PASSWORDS = {"alice": "wonderland", "bob": "builder"}

manager = SessionManager()
app = FastAPI()
# Resolves each request's token once; every route below reads what it found.
app.add_middleware(BearerAuthMiddleware, session_db=manager)
app.include_router(manager.router, prefix="/auth/sessions")


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


@app.post("/auth/logout", status_code=204)
async def logout(session: Annotated[Session, Depends(manager.current_session)]) -> None:
    await manager.revoke_session(session.id)  # this session only
