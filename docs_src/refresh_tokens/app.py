import os

from fastapi import FastAPI, Request

from asgi_kit import BearerAuthMiddleware, InMemorySessionDatabase, expires_in
from fastapi_users.extensions.session_manager import SessionManager

manager = SessionManager(
    session_db=InMemorySessionDatabase(),
    access_token_lifetime=900,  # seconds (or a timedelta): access tokens of 15 minutes
    refresh_reuse_interval=10,  # the default
    refresh_secret=os.environ["REFRESH_SECRET"],  # >= 32 bytes, the same on every instance
)
app = FastAPI()
app.add_middleware(BearerAuthMiddleware, session_db=manager)
app.include_router(manager.router, prefix="/auth/sessions")  # POST /auth/sessions/refresh


@app.post("/auth/login/{user_id}")
async def login(user_id: str, request: Request):
    session = await manager.login(request, user_id)  # after checking the password
    return {
        "access_token": session.token,
        "token_type": "bearer",
        "expires_in": expires_in(session),
        "refresh_token": session.refresh_token,
    }
