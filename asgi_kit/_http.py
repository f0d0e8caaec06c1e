"""The HTTP answers of the request path: one rule for every 401 and 503 (RFC 6750 section 3)."""

from __future__ import annotations

from enum import Enum
from typing import NamedTuple

from ._tokens import AnonymousReason


class ErrorCode(str, Enum):
    """The ``detail`` values of asgi-kit's JSON error responses."""

    NOT_AUTHENTICATED = "NOT_AUTHENTICATED"
    INVALID_TOKEN = "INVALID_TOKEN"  # noqa: S105 - an error code, not a secret
    SESSION_NOT_FOUND = "SESSION_NOT_FOUND"
    SESSION_OF_ANOTHER_USER = "SESSION_OF_ANOTHER_USER"
    NOT_AN_ADMIN = "NOT_AN_ADMIN"
    INVALID_USER_ID = "INVALID_USER_ID"
    SESSION_LIMIT_REACHED = "SESSION_LIMIT_REACHED"
    SESSION_STORE_UNAVAILABLE = "SESSION_STORE_UNAVAILABLE"


class Refusal(NamedTuple):
    """An answer that refuses a request: status, JSON ``detail`` and headers.

    The middleware sends it as a ``JSONResponse``, FastAPI dependencies raise it as an
    ``HTTPException``: both render ``{"detail": ...}`` with these headers.
    """

    status: int
    detail: ErrorCode
    headers: dict[str, str]


def www_authenticate(reason: AnonymousReason | None) -> str:
    """The ``WWW-Authenticate`` challenge for a 401 caused by ``reason``."""
    if reason is not None and reason.token_presented:
        return 'Bearer error="invalid_token"'
    return "Bearer"


def unauthorized(reason: AnonymousReason | None) -> Refusal:
    """The 401 for a request without a valid session, and why (None: not said)."""
    presented = reason is not None and reason.token_presented
    detail = ErrorCode.INVALID_TOKEN if presented else ErrorCode.NOT_AUTHENTICATED
    return Refusal(401, detail, {"WWW-Authenticate": www_authenticate(reason)})


#: The answer while the session store cannot be reached: never a 401, which looks like a logout.
STORE_UNAVAILABLE = Refusal(503, ErrorCode.SESSION_STORE_UNAVAILABLE, {})
