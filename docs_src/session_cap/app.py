import os

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from asgi_kit import ErrorCode, SessionLimitError
from fastapi_users.extensions.session_manager import SessionManager

manager = SessionManager(
    max_sessions_per_user=3,
    limit_policy=os.environ.get("SESSION_LIMIT_POLICY", "evict_lru"),  # or "refuse"
)
app = FastAPI()
app.include_router(manager.router, prefix="/auth/sessions")


class Credentials(BaseModel):
    username: str
    password: str


@app.post("/auth/login")
async def login(request: Request, credentials: Credentials) -> dict[str, str]:
    user_id = credentials.username  # once the password is checked
    session = await manager.login(request, user_id)
    return {"access_token": session.token, "token_type": "bearer"}


@app.exception_handler(SessionLimitError)
async def session_limit_reached(request: Request, exc: SessionLimitError) -> JSONResponse:
    # What a FastAPI Users login answers by itself under limit_policy="refuse".
    return JSONResponse({"detail": ErrorCode.SESSION_LIMIT_REACHED}, status_code=409)
