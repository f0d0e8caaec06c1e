import hmac
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Request, Response
from pydantic import BaseModel

from asgi_kit import BearerAuthMiddleware, InMemorySessionDatabase, Session, SessionCookie
from fastapi_users.extensions.session_manager import SessionManager

manager = SessionManager(
    session_db=InMemorySessionDatabase(),
    lifetime=30 * 24 * 3600,  # the cookie's Max-Age runs to the session's deadline
    cookie=SessionCookie("__Host-session"),
)
app = FastAPI()
app.add_middleware(BearerAuthMiddleware, session_db=manager)
app.include_router(manager.router, prefix="/auth/sessions")

CurrentSession = Annotated[Session, Depends(manager.current_session)]
PASSWORDS = {"alice": "correct horse battery staple"}  # stands for your user store


class Credentials(BaseModel):
    username: str
    password: str


@app.post("/auth/login")
async def login(credentials: Credentials, request: Request, response: Response):
    known = PASSWORDS.get(credentials.username, "")
    if not known or not hmac.compare_digest(credentials.password.encode(), known.encode()):
        raise HTTPException(400, "LOGIN_BAD_CREDENTIALS")
    session = await manager.login(request, credentials.username)
    manager.set_cookie(response, session, request)  # HttpOnly; Secure on https
    return {"access_token": session.token}  # API clients still get a bearer token


@app.post("/auth/logout", status_code=204)
async def logout(request: Request, response: Response, session: CurrentSession):
    await manager.revoke_session(session.id)
    manager.clear_cookie(response, request)


@app.post("/notes")
async def add_note(session: CurrentSession):
    return {"saved_for": session.user_id}  # a change: CSRF-checked when the cookie signs it
