"""HTTP answers shared by the middleware and the session routers (RFC 6750 section 3)."""

from __future__ import annotations

from enum import Enum

from ._tokens import AuthError


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


def www_authenticate(error: AuthError | None) -> str:
    """The ``WWW-Authenticate`` challenge for a 401 caused by ``error``."""
    if error is not None and error.token_presented:
        return 'Bearer error="invalid_token"'
    return "Bearer"


def unauthorized_detail(error: AuthError | None) -> ErrorCode:
    """The JSON ``detail`` of a 401 caused by ``error``."""
    if error is not None and error.token_presented:
        return ErrorCode.INVALID_TOKEN
    return ErrorCode.NOT_AUTHENTICATED
