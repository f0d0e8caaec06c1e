"""FastAPI pieces of the session manager: the bearer dependency and the response models."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any
from uuid import UUID

import anyio
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
    Device,
    Refusal,
    Session,
    SessionResolver,
    StoreUnavailableError,
    describe_device,
    device_of_headers,
    refusal,
    resolve_request,
)


class DeviceRead(BaseModel):
    """A session's device, named for people (``asgi_kit.Device``)."""

    browser: str | None
    os: str | None
    #: ``desktop``, ``mobile``, ``tablet``, ``bot`` or ``unknown``.
    kind: str
    #: What a list of sessions shows, e.g. ``"Firefox on Windows"``.
    label: str

    @classmethod
    def of(cls, device: Device) -> DeviceRead:
        """``device`` as the API shows it."""
        return cls(browser=device.browser, os=device.os, kind=device.kind, label=device.label)


class SessionRead(BaseModel):
    """A session as the API shows it: never its token."""

    id: UUID
    """The session's id (to revoke it with ``DELETE /auth/sessions/{id}``)."""
    user_id: str
    """The user id as text: ``str(session.user_id)`` (a UUID's canonical form, or the id)."""
    created_at: datetime
    """When the session started."""
    expires_at: datetime | None
    """Absolute end of the session, or None."""
    last_seen_at: datetime | None
    """Last recorded activity."""
    authenticated_at: datetime
    """When the user last proved who they are on this session (login, re-authentication)."""
    user_agent: str | None
    """The login's ``User-Agent``, or None."""
    device: DeviceRead
    """The device as people name it: ``browser``, ``os``, ``kind`` and ``label``."""
    ip_address: str | None
    """The login's client IP address, or None."""
    current: bool
    """True for the session making this request."""

    @classmethod
    def of(cls, session: Session, current: Session | None) -> SessionRead:
        """Describe ``session`` to the holder of ``current``."""
        return cls(
            id=session.id,
            user_id=str(session.user_id),
            created_at=session.created_at,
            expires_at=session.expires_at,
            last_seen_at=session.last_seen_at,
            authenticated_at=session.authenticated,
            user_agent=session.user_agent,
            # Sessions stored before device names get theirs from their user agent here.
            device=DeviceRead.of(session.device or describe_device(session.user_agent)),
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

    Examples:
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


async def device_of(scope: Scope | None) -> tuple[str | None, str | None, Device | None]:
    """The user agent, client address and device of the request ``scope`` describes."""
    global _parser_built
    if scope is None:
        return None, None, None
    client = scope.get("client")
    headers = Headers(scope=scope)
    address = str(client[0]) if client else None
    if _parser_built:  # tens of microseconds: not worth a trip to a worker thread
        device = device_of_headers(headers)
    else:  # ua-parser builds its rules on first use (about 0.1 s): never on the event loop
        device = await anyio.to_thread.run_sync(device_of_headers, headers)
        _parser_built = True
    return headers.get("user-agent") or None, address, device


#: Whether a device was worked out in this process yet (see ``device_of``).
_parser_built = False
