"""FastAPI pieces of the session manager: the bearer dependency and the response models."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any
from uuid import UUID

from fastapi import HTTPException
from fastapi.openapi.models import HTTPBearer as HTTPBearerModel
from fastapi.security import OAuth2PasswordBearer
from fastapi.security.base import SecurityBase
from pydantic import BaseModel
from starlette.datastructures import Headers
from starlette.requests import HTTPConnection
from starlette.types import Scope

from asgi_kit import (
    STORE_UNAVAILABLE,
    Refusal,
    Session,
    SessionResolver,
    StoreUnavailableError,
    refusal,
    resolve_request,
)


class SessionRead(BaseModel):
    """A session as the API shows it: never its token."""

    id: UUID
    #: The user id as text: ``str(session.user_id)`` (a UUID's canonical form, or the id).
    user_id: str
    created_at: datetime
    expires_at: datetime | None
    last_seen_at: datetime | None
    user_agent: str | None
    ip_address: str | None
    current: bool

    @classmethod
    def of(cls, session: Session, current: Session | None) -> SessionRead:
        """Describe ``session`` to the holder of ``current``."""
        return cls(
            id=session.id,
            user_id=str(session.user_id),
            created_at=session.created_at,
            expires_at=session.expires_at,
            last_seen_at=session.last_seen_at,
            user_agent=session.user_agent,
            ip_address=session.ip_address,
            current=current is not None and session.id == current.id,
        )


class ErrorModel(BaseModel):
    """The body of every error response: ``{"detail": "<ERROR_CODE>"}``."""

    detail: str


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries for the given error statuses."""
    text = {
        401: "Missing, malformed, unknown, revoked or expired bearer token.",
        403: "The caller may not act on this session or user.",
        404: "No such active session.",
        409: "The session limit was reached.",
        422: "The user id is not one (empty, too long, or with control characters).",
        503: "The session store is unreachable; retry later.",
    }
    return {s: {"model": ErrorModel, "description": text[s]} for s in statuses}


def as_http(answer: Refusal) -> HTTPException:
    """``answer`` (asgi-kit's one rule for 400s, 401s and 503s) as FastAPI's exception."""
    return HTTPException(answer.status, answer.detail, headers=answer.headers or None)


@contextmanager
def store_errors_as_503() -> Iterator[None]:
    """Turn ``StoreUnavailableError`` into a JSON 503 (never a 500, never a 401)."""
    try:
        yield
    except StoreUnavailableError as exc:
        raise as_http(STORE_UNAVAILABLE) from exc


class SessionBearer(SecurityBase):
    """FastAPI dependency: the caller's active ``Session``, or a 401 with a Bearer challenge.

    Reads the request's session where the request path left it (``BearerAuthMiddleware``
    resolved it), or resolves it there once. Declared as a security scheme, so ``/docs``
    gets an Authorize button: HTTP bearer (paste a token), or with ``token_url`` the OAuth2
    password scheme FastAPI Users' ``BearerTransport(tokenUrl=...)`` declares, so one
    sign-in in ``/docs`` authorises both FastAPI Users' routes and these.

    >>> @app.get("/me")  # doctest: +SKIP
    ... async def me(session: Session = Depends(manager.current_session)): ...
    """

    def __init__(self, resolver: SessionResolver, *, token_url: str | None = None):
        self.resolver = resolver
        if token_url is None:
            self.model: Any = HTTPBearerModel(
                description="A session token from the login endpoint."
            )
            self.scheme_name = "SessionBearer"
        else:
            same_as_fastapi_users = OAuth2PasswordBearer(tokenUrl=token_url, auto_error=False)
            self.model = same_as_fastapi_users.model
            self.scheme_name = same_as_fastapi_users.scheme_name

    async def __call__(self, conn: HTTPConnection) -> Session:
        """Return the caller's session or raise a 401 (503 if the store is unreachable)."""
        with store_errors_as_503():
            found = await resolve_request(conn, self.resolver)
        if isinstance(found, Session):
            return found
        raise as_http(refusal(found))


def parse_uuid(value: str) -> UUID | None:
    """``value`` as a UUID, or None when it is not one."""
    try:
        return UUID(value)
    except ValueError:
        return None


def device_of(scope: Scope | None) -> tuple[str | None, str | None]:
    """The user agent and client address of the request ``scope`` describes, if known."""
    if scope is None:
        return None, None
    client = scope.get("client")
    return Headers(scope=scope).get("user-agent") or None, str(client[0]) if client else None
