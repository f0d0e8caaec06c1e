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
    """401: no bearer token (nor session cookie) came with the request."""
    INVALID_TOKEN = "INVALID_TOKEN"  # noqa: S105 - an error code, not a secret
    """401: the token is malformed, unknown, revoked or expired."""
    INVALID_REQUEST = "INVALID_REQUEST"
    """400: two ``Authorization`` headers or session cookies, or an unreadable refresh body."""
    CSRF_FAILED = "CSRF_FAILED"
    """403: a session cookie on a state-changing request that may come from another site."""
    SESSION_NOT_FOUND = "SESSION_NOT_FOUND"
    """404: no active session has this id."""
    SESSION_OF_ANOTHER_USER = "SESSION_OF_ANOTHER_USER"
    """403: the session belongs to another user."""
    NOT_AN_ADMIN = "NOT_AN_ADMIN"
    """403: the admin routes' ``is_admin`` said no."""
    INVALID_USER_ID = "INVALID_USER_ID"
    """422: the user id in the path is not a valid user id."""
    SESSION_LIMIT_REACHED = "SESSION_LIMIT_REACHED"
    """409: the user has ``max_sessions_per_user`` sessions and the policy refuses more."""
    SESSION_STORE_UNAVAILABLE = "SESSION_STORE_UNAVAILABLE"
    """503 (with ``Retry-After``): the session store cannot be reached."""
    # The refresh endpoint's codes (400, with the OAuth ``error`` beside them).
    REFRESH_TOKEN_MISSING = "REFRESH_TOKEN_MISSING"  # noqa: S105 - an error code
    """400 ``invalid_request``: no refresh token, or an empty one."""
    REFRESH_TOKEN_MALFORMED = "REFRESH_TOKEN_MALFORMED"  # noqa: S105 - an error code
    """400 ``invalid_grant``: not a refresh token of this app (format or signature)."""
    REFRESH_TOKEN_INVALID = "REFRESH_TOKEN_INVALID"  # noqa: S105 - an error code
    """400 ``invalid_grant``: its session ended, expired or never existed."""
    REFRESH_TOKEN_REUSED = "REFRESH_TOKEN_REUSED"  # noqa: S105 - an error code
    """400 ``invalid_grant``: a rotated-out refresh token came back; the session was ended."""
    REFRESH_TOKEN_REPEATED = "REFRESH_TOKEN_REPEATED"  # noqa: S105 - an error code
    """400 ``invalid_request``: a parameter given twice, or two refresh cookies."""
    REFRESH_TOKEN_OF_ANOTHER_SESSION = "REFRESH_TOKEN_OF_ANOTHER_SESSION"  # noqa: S105
    """400 ``invalid_grant``: the request's own token (or cookie) is another session's."""
    GRANT_TYPE_MISSING = "GRANT_TYPE_MISSING"
    """400 ``invalid_request``: a form without ``grant_type``."""
    UNSUPPORTED_GRANT_TYPE = "UNSUPPORTED_GRANT_TYPE"
    """400 ``unsupported_grant_type``: a ``grant_type`` other than ``refresh_token``."""
    REFRESH_NOT_ENABLED = "REFRESH_NOT_ENABLED"
    """400 ``unsupported_grant_type``: refresh tokens are off."""
    # Step-up (RFC 9470): 401 until the user proves who they are again.
    REAUTHENTICATION_REQUIRED = "REAUTHENTICATION_REQUIRED"
    """401 (RFC 9470 challenge): the session's user must prove who they are again."""
    REAUTHENTICATION_BAD_CREDENTIALS = "REAUTHENTICATION_BAD_CREDENTIALS"
    """400: a wrong password at ``POST /reauthenticate``; nothing changed."""
    REAUTHENTICATION_RATE_LIMITED = "REAUTHENTICATION_RATE_LIMITED"
    """429 (with ``Retry-After``): too many wrong re-authentications of this session."""
    SESSION_NOT_CURRENT = "SESSION_NOT_CURRENT"
    """403: a re-authentication may only name the caller's own session."""


class Refusal(NamedTuple):
    """An answer that refuses a request: status, JSON ``detail`` and headers.

    The middleware sends it as a ``JSONResponse``, FastAPI dependencies raise it as an
    ``HTTPException``: both render ``{"detail": ...}`` with these headers.
    """

    status: int
    """The HTTP status: 400, 401, 403 or 503."""
    detail: ErrorCode
    """The JSON body's ``detail``."""
    headers: dict[str, str]
    """Headers of the answer (``WWW-Authenticate``, ``Retry-After``)."""

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


STORE_UNAVAILABLE = Refusal(
    503, ErrorCode.SESSION_STORE_UNAVAILABLE, {"Retry-After": str(RETRY_AFTER_SECONDS)}
)
"""The answer while the session store cannot be reached: never a 401, which looks like a logout."""


async def store_unavailable_handler(request: Request, exc: Exception) -> JSONResponse:
    """An exception handler answering ``StoreUnavailableError`` from any route with the 503.

    One line in a FastAPI or Starlette app, so a login whose store is down answers like
    the session routes (JSON ``SESSION_STORE_UNAVAILABLE``, ``Retry-After``), not a 500:

        app.add_exception_handler(StoreUnavailableError, store_unavailable_handler)
    """
    return STORE_UNAVAILABLE.response()
