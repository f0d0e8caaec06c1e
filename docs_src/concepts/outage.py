import os

from fastapi import FastAPI, Request

from asgi_kit import (
    BearerAuthMiddleware,
    SessionDatabase,
    StoreUnavailableError,
    session_database_from_url,
    store_unavailable_handler,
)
from fastapi_users.extensions.session_manager import SessionManager


def create_app(store: SessionDatabase) -> FastAPI:
    manager = SessionManager(session_db=store)
    app = FastAPI()
    app.add_middleware(BearerAuthMiddleware, session_db=manager)
    app.include_router(manager.router, prefix="/auth/sessions")
    # Your own routes answer an outage as the session routes do: 503, Retry-After: 5.
    app.add_exception_handler(StoreUnavailableError, store_unavailable_handler)

    @app.post("/auth/login")
    async def login(request: Request) -> dict[str, str]:
        user_id = "alice"  # check the password first
        session = await manager.login(request, user_id)
        return {"access_token": session.token, "token_type": "bearer"}

    return app


app = create_app(session_database_from_url(os.environ.get("SESSION_STORE_URL", "memory://")))
