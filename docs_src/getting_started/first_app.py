from hmac import compare_digest
from typing import Annotated

from fastapi import Body, Depends, FastAPI, HTTPException, Request

from asgi_kit import BearerAuthMiddleware, Session
from fastapi_users.extensions.session_manager import SessionManager

USERS = {"alice": "wonderland"}  # your users and your password check
manager = SessionManager()  # sessions in memory; SQL and Redis stores keep them
app = FastAPI()
app.add_middleware(BearerAuthMiddleware, session_db=manager)
app.include_router(manager.router, prefix="/auth/sessions")  # list, end one, end all


@app.post("/auth/login")
async def login(
    request: Request, username: Annotated[str, Body()], password: Annotated[str, Body()]
):
    known = USERS.get(username)
    if known is None or not compare_digest(known, password):
        raise HTTPException(400, "LOGIN_BAD_CREDENTIALS")
    session = await manager.login(request, username)  # records the device and IP
    return {"access_token": session.token, "token_type": "bearer"}


@app.get("/me")
async def me(session: Annotated[Session, Depends(manager.current_session)]):
    return {"user": session.user_id, "device": session.device}
