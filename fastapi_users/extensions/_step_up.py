"""Step-up for FastAPI (RFC 9470): the recent-authentication dependency and
``POST /reauthenticate``, where a user proves who they are again with their password.

No ``from __future__ import annotations`` here: FastAPI reads the signatures at run time.
"""

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Protocol
from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, Response
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel, Field

from asgi_kit import ErrorCode, RecentAuthentication, Session

from ._attempts import ReauthenticationFailedError, ReauthenticationLimitError
from ._manager import Manager
from ._session_api import as_http, error_responses, store_errors_as_503

_ENDED = 'Bearer error="invalid_token"'


class PasswordUserManager(Protocol):
    """What ``POST /reauthenticate`` uses of a FastAPI Users ``BaseUserManager``.

    FastAPI Users' own user manager has all three methods; the router gets it from the
    same dependency as FastAPI Users' routes:

        app.include_router(
            manager.get_reauthenticate_router(get_user_manager), prefix="/auth/sessions"
        )
    """

    def parse_id(self, value: Any) -> Any:
        """The user id of ``value`` (raises for text that is not one)."""
        ...

    async def get(self, id: Any) -> Any:
        """The user (with ``id``, ``email`` and ``is_active``) of ``id``; raises if none."""
        ...

    async def authenticate(self, credentials: OAuth2PasswordRequestForm) -> Any | None:
        """The user whose e-mail and password ``credentials`` carry, else None."""
        ...


class ReauthenticateIn(BaseModel):
    """The body of ``POST /reauthenticate``."""

    password: str = Field(min_length=1, max_length=1024)
    #: The session to re-authenticate: the caller's own (the default), never another.
    session_id: UUID | None = None


def recent_session(
    current: Callable[..., Awaitable[Session]], rule: RecentAuthentication
) -> Callable[..., Awaitable[Session]]:
    """The dependency giving the caller's session if ``rule`` holds for it, else a 401."""

    async def recent_authentication(session: Annotated[Session, Depends(current)]) -> Session:
        answer = rule.refusal(session)
        if answer is not None:
            raise as_http(answer)
        return session

    return recent_authentication


def reauthenticate_router(manager: Manager, get_user_manager: Callable[..., Any]) -> APIRouter:
    """``POST /reauthenticate``: the caller's password, checked by the user manager's own
    ``authenticate``, moves their session's ``authenticated_at`` to now (204)."""
    router = APIRouter(tags=["sessions"])
    Current = Annotated[Session, Depends(manager.current_session)]
    UserManager = Annotated[PasswordUserManager, Depends(get_user_manager)]

    @router.post(
        "/reauthenticate",
        name="sessions:reauthenticate",
        status_code=204,
        response_class=Response,
        responses={
            **error_responses(401, 403, 503),
            400: {"description": "REAUTHENTICATION_BAD_CREDENTIALS: a wrong password."},
            429: {"description": "REAUTHENTICATION_RATE_LIMITED: too many wrong passwords."},
        },
        summary="Prove who I am again (my password), for actions that ask a recent sign-in",
    )
    async def reauthenticate(body: ReauthenticateIn, session: Current, users: UserManager) -> None:
        if body.session_id is not None and body.session_id != session.id:
            raise HTTPException(403, ErrorCode.SESSION_NOT_CURRENT)

        async def password_is_right() -> bool:
            return await _check_password(users, session, body.password)

        try:
            with store_errors_as_503():
                proven = await manager.reauthenticate(session, password_is_right)
        except ReauthenticationLimitError as exc:
            headers = {"Retry-After": str(exc.retry_after)}
            raise HTTPException(429, ErrorCode.REAUTHENTICATION_RATE_LIMITED, headers) from exc
        except ReauthenticationFailedError as exc:
            raise HTTPException(400, ErrorCode.REAUTHENTICATION_BAD_CREDENTIALS) from exc
        if proven is None:  # the session ended meanwhile
            raise HTTPException(401, ErrorCode.INVALID_TOKEN, {"WWW-Authenticate": _ENDED})

    return router


async def _check_password(users: PasswordUserManager, session: Session, password: str) -> bool:
    """True when ``password`` is that of the session's user (active), by ``authenticate``."""
    try:
        user = await users.get(users.parse_id(str(session.user_id)))
    except Exception:  # FastAPI Users raises its own "no such user" / "invalid id" errors
        return False
    credentials = OAuth2PasswordRequestForm(username=user.email, password=password)
    proven = await users.authenticate(credentials)
    active = getattr(proven, "is_active", True)
    return proven is not None and active and proven.id == user.id
