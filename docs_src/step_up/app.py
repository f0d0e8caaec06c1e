import hmac
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Request
from pydantic import BaseModel

from asgi_kit import BearerAuthMiddleware, InMemorySessionDatabase, Session
from fastapi_users.extensions.session_manager import (
    ReauthenticationFailedError,
    ReauthenticationLimitError,
    SessionManager,
)

manager = SessionManager(
    session_db=InMemorySessionDatabase(),
    revoke_all_max_age=600,  # "log out everywhere" asks a sign-in of the last 10 minutes too
)
app = FastAPI()
app.add_middleware(BearerAuthMiddleware, session_db=manager)
app.include_router(manager.router, prefix="/auth/sessions")

# The caller's session, if its user signed in (or re-authenticated) in the last 10 minutes.
RecentSession = Annotated[Session, Depends(manager.recent_authentication(600))]
CurrentSession = Annotated[Session, Depends(manager.current_session)]
PASSWORDS = {"alice": "correct horse battery staple"}  # stands for your user store


class Password(BaseModel):
    password: str


@app.post("/account/password")
async def change_password(session: RecentSession):
    return {"changed_for": session.user_id}


@app.post("/account/reauthenticate", status_code=204)
async def reauthenticate(body: Password, session: CurrentSession):
    async def verify() -> bool:  # your own check: a password here, or a second factor
        known = PASSWORDS.get(str(session.user_id), "")
        return bool(known) and hmac.compare_digest(body.password.encode(), known.encode())

    try:
        await manager.reauthenticate(session, verify)
    except ReauthenticationFailedError:
        raise HTTPException(400, "REAUTHENTICATION_BAD_CREDENTIALS") from None
    except ReauthenticationLimitError as exc:  # 5 wrong answers in 15 minutes
        retry = {"Retry-After": str(exc.retry_after)}
        raise HTTPException(429, "REAUTHENTICATION_RATE_LIMITED", headers=retry) from None


@app.post("/auth/login/{user_id}")
async def login(user_id: str, request: Request):
    session = await manager.login(request, user_id)  # after checking the password
    return {"access_token": session.token}
