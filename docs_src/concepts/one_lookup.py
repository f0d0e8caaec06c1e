from typing import Annotated

from fastapi import Depends, FastAPI

from asgi_kit import BearerAuthMiddleware, InMemorySessionDatabase, Session
from fastapi_users.extensions.session_manager import SessionManager


class CountingStore(InMemorySessionDatabase):
    """The in-memory store, counting token look-ups."""

    lookups = 0

    async def get_by_token_digest(self, digest: str) -> Session | None:
        self.lookups += 1
        return await super().get_by_token_digest(digest)


store = CountingStore()
manager = SessionManager(session_db=store)
app = FastAPI()
app.add_middleware(BearerAuthMiddleware, session_db=manager)  # resolves the token once
app.include_router(manager.router, prefix="/auth/sessions")  # reads what it found


@app.get("/me")
async def me(session: Annotated[Session, Depends(manager.current_session)]) -> dict[str, str]:
    return {"user_id": str(session.user_id)}  # read from the scope: no second look-up
