"""The HTTP answers of the request path: one rule for every 401 and 503 (RFC 6750 section 3)."""

from __future__ import annotations

from enum import Enum
from typing import NamedTuple

from starlette.requests import Request
from starlette.responses import JSONResponse

from ._tokens import AnonymousReason


class ErrorCode(str, Enum):
    """The ``detail`` values of asgi-kit's JSON error responses."""

    NOT_AUTHENTICATED = "NOT_AUTHENTICATED"
    INVALID_TOKEN = "INVALID_TOKEN"  # noqa: S105 - an error code, not a secret
    INVALID_REQUEST = "INVALID_REQUEST"
    CSRF_FAILED = "CSRF_FAILED"
    SESSION_NOT_FOUND = "SESSION_NOT_FOUND"
    SESSION_OF_ANOTHER_USER = "SESSION_OF_ANOTHER_USER"
    NOT_AN_ADMIN = "NOT_AN_ADMIN"
    INVALID_USER_ID = "INVALID_USER_ID"
    SESSION_LIMIT_REACHED = "SESSION_LIMIT_REACHED"
    SESSION_STORE_UNAVAILABLE = "SESSION_STORE_UNAVAILABLE"
    # The refresh endpoint's codes (400, with the OAuth ``error`` beside them).
    REFRESH_TOKEN_MISSING = "REFRESH_TOKEN_MISSING"  # noqa: S105 - an error code
    REFRESH_TOKEN_MALFORMED = "REFRESH_TOKEN_MALFORMED"  # noqa: S105 - an error code
    REFRESH_TOKEN_INVALID = "REFRESH_TOKEN_INVALID"  # noqa: S105 - an error code
    REFRESH_TOKEN_REUSED = "REFRESH_TOKEN_REUSED"  # noqa: S105 - an error code
    REFRESH_TOKEN_REPEATED = "REFRESH_TOKEN_REPEATED"  # noqa: S105 - an error code
    REFRESH_TOKEN_OF_ANOTHER_SESSION = "REFRESH_TOKEN_OF_ANOTHER_SESSION"  # noqa: S105
    GRANT_TYPE_MISSING = "GRANT_TYPE_MISSING"
    UNSUPPORTED_GRANT_TYPE = "UNSUPPORTED_GRANT_TYPE"
    REFRESH_NOT_ENABLED = "REFRESH_NOT_ENABLED"
    # Step-up (RFC 9470): 401 until the user proves who they are again.
    REAUTHENTICATION_REQUIRED = "REAUTHENTICATION_REQUIRED"
    REAUTHENTICATION_BAD_CREDENTIALS = "REAUTHENTICATION_BAD_CREDENTIALS"
    REAUTHENTICATION_RATE_LIMITED = "REAUTHENTICATION_RATE_LIMITED"
    SESSION_NOT_CURRENT = "SESSION_NOT_CURRENT"


class Refusal(NamedTuple):
    """An answer that refuses a request: status, JSON ``detail`` and headers.

    The middleware sends it as a ``JSONResponse``, FastAPI dependencies raise it as an
    ``HTTPException``: both render ``{"detail": ...}`` with these headers.
    """

    status: int
    detail: ErrorCode
    headers: dict[str, str]

    def response(self) -> JSONResponse:
        """This answer as a response: ``{"detail": ...}`` with the status and headers."""
        return JSONResponse({"detail": self.detail}, self.status, self.headers)


#: Seconds a client should wait before retrying while the store is unreachable.
RETRY_AFTER_SECONDS = 5


def www_authenticate(reason: AnonymousReason | None) -> str:
    """The ``WWW-Authenticate`` challenge for a request refused because of ``reason``."""
    if reason is AnonymousReason.REPEATED:
        return 'Bearer error="invalid_request"'
    if reason is AnonymousReason.EXPIRED:
        return 'Bearer error="invalid_token", error_description="The access token expired"'
    if reason is not None and reason.token_presented:
        return 'Bearer error="invalid_token"'
    return "Bearer"


def refusal(reason: AnonymousReason | None) -> Refusal:
    """The answer to a request without a valid session, and why (None: not said).

    401 with a Bearer challenge (``error="invalid_token"`` when a token was presented),
    400 ``invalid_request`` for two ``Authorization`` headers or session cookies (RFC 6750
    section 3.1), 403 ``CSRF_FAILED`` for a cookie on a possibly cross-site request.
    """
    if reason is AnonymousReason.CROSS_SITE:
        return Refusal(403, ErrorCode.CSRF_FAILED, {})
    challenge = {"WWW-Authenticate": www_authenticate(reason)}
    if reason is AnonymousReason.REPEATED:
        return Refusal(400, ErrorCode.INVALID_REQUEST, challenge)
    presented = reason is not None and reason.token_presented
    detail = ErrorCode.INVALID_TOKEN if presented else ErrorCode.NOT_AUTHENTICATED
    return Refusal(401, detail, challenge)


#: The answer while the session store cannot be reached: never a 401, which looks like a logout.
STORE_UNAVAILABLE = Refusal(
    503, ErrorCode.SESSION_STORE_UNAVAILABLE, {"Retry-After": str(RETRY_AFTER_SECONDS)}
)


async def store_unavailable_handler(request: Request, exc: Exception) -> JSONResponse:
    """An exception handler answering ``StoreUnavailableError`` from any route with the 503.

    One line in a FastAPI or Starlette app, so a login whose store is down answers like
    the session routes (JSON ``SESSION_STORE_UNAVAILABLE``, ``Retry-After``), not a 500::

        app.add_exception_handler(StoreUnavailableError, store_unavailable_handler)
    """
    return STORE_UNAVAILABLE.response()
