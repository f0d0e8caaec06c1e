import secrets
from typing import Annotated

from fastapi import Body, FastAPI, HTTPException, Request

from fastapi_users.extensions.session_manager import SessionManager

# A real app checks a password hash from its user database.
PASSWORDS = {"alice": "wonderland", "bob": "builder"}

manager = SessionManager()  # sessions in memory: one process, lost on restart
app = FastAPI()
app.include_router(manager.router, prefix="/auth/sessions")


@app.post("/auth/login")
async def login(
    request: Request, username: Annotated[str, Body()], password: Annotated[str, Body()]
) -> dict[str, str]:
    expected = PASSWORDS.get(username)
    if expected is None or not secrets.compare_digest(expected.encode(), password.encode()):
        raise HTTPException(400, "LOGIN_BAD_CREDENTIALS")
    session = await manager.login(request, username)  # a fresh token; user agent and IP
    return {"access_token": session.token, "token_type": "bearer"}
