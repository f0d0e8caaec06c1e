from typing import Annotated

from fastapi import Depends, FastAPI
from pydantic import BaseModel

from asgi_kit import BearerAuthMiddleware, Session
from fastapi_users.extensions.session_manager import AccountEvent, SessionManager

manager = SessionManager()
app = FastAPI()
app.add_middleware(BearerAuthMiddleware, session_db=manager)
app.include_router(manager.router, prefix="/auth/sessions")

Current = Annotated[Session, Depends(manager.current_session)]


class NewPassword(BaseModel):
    password: str


@app.post("/account/password", status_code=204)
async def change_password(body: NewPassword, session: Current) -> None:
    ...  # check and store the new password
    # The user's other devices must sign in again; the one that made the change stays.
    await manager.end_sessions_for_account_event(
        session.user_id, AccountEvent.PASSWORD_CHANGED, keep_current=session.id
    )


@app.post("/account/disable", status_code=204)
async def disable_account(session: Current) -> None:
    ...  # mark the account disabled
    await manager.end_sessions_for_account_event(session.user_id, AccountEvent.ACCOUNT_DISABLED)
