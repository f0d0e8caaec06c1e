"""``POST /refresh``: a refresh token exchanged for the next pair (RFC 6749 sections 5 and 6).

The token comes in one of three ways: a JSON body ``{"refresh_token": "..."}``, an OAuth
2.0 form ``grant_type=refresh_token&refresh_token=...``, or (browsers) the refresh cookie,
CSRF-checked like every cookie-authenticated change. A token in the body wins: a client
that keeps cookies (``requests.Session``) may hold the cookie too, and a page of another
site cannot know the token to put in a body, so the cookie is then neither read nor
checked. Answers never let a cache keep them (``Cache-Control: no-store``), and a refused
request changes nothing, except a reused token, which has ended its session. A refused
cookie is cleared, so the browser stops sending it.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl
from uuid import UUID

from fastapi import APIRouter, HTTPException, Request
from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse
from starlette.routing import NoMatchFound

from asgi_kit import (
    AnonymousReason,
    ConfigurationError,
    ErrorCode,
    RefreshError,
    Session,
    SessionCookie,
    expires_in,
    resolve_request,
)

from ._manager import Manager
from ._session_api import store_errors_as_503

#: Largest request body read, in bytes: a refresh token is 115 characters.
MAX_BODY = 4096
ROUTE_NAME = "sessions:refresh"
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_JSON = "application/json"
_FORM = "application/x-www-form-urlencoded"
# RFC 6749 section 5.2's error for each code: the request's shape, or the grant itself.
_OAUTH_ERROR = {
    ErrorCode.INVALID_REQUEST: "invalid_request",
    ErrorCode.REFRESH_TOKEN_MISSING: "invalid_request",
    ErrorCode.REFRESH_TOKEN_REPEATED: "invalid_request",
    ErrorCode.GRANT_TYPE_MISSING: "invalid_request",
    ErrorCode.UNSUPPORTED_GRANT_TYPE: "unsupported_grant_type",
    ErrorCode.REFRESH_NOT_ENABLED: "unsupported_grant_type",
}


def refresh_path(connection: HTTPConnection) -> str:
    """The path of ``POST /refresh`` in the app serving ``connection`` (the refresh cookie's)."""
    try:
        return connection.url_for(ROUTE_NAME).path
    except NoMatchFound:
        raise ConfigurationError(
            "the refresh cookie is sent to POST /refresh only: include manager.router in the app"
        ) from None


def add_refresh_route(router: APIRouter, manager: Manager) -> None:
    """Add ``POST /refresh`` to ``router`` (the user router, so ``/auth/sessions/refresh``)."""

    @router.post(
        "/refresh",
        name=ROUTE_NAME,
        responses={400: {"description": "RFC 6749 error: error, and detail (an ErrorCode)"}},
        summary="Exchange a refresh token for a new access token and refresh token",
    )
    async def refresh(request: Request) -> JSONResponse:
        cookie = None
        try:
            if manager.refresher is None:
                raise RefreshError(ErrorCode.REFRESH_NOT_ENABLED, "refresh tokens are off")
            token, cookie = await read_grant(request, manager.refresh_cookie)
            with store_errors_as_503():
                session = await manager.refresh(token, session_id=await _bound(request, manager))
        except RefreshError as exc:
            response = refused(exc.code)
            if cookie is not None:  # it will never work again: stop the browser sending it
                manager.clear_cookie(response, request)
            return response
        return answer(manager, session, request, cookie)


def refused(code: ErrorCode) -> JSONResponse:
    """The 400 of a refused refresh: ``{"error": <RFC 6749 error>, "detail": <code>}``."""
    body = {"error": _OAUTH_ERROR.get(code, "invalid_grant"), "detail": code.value}
    return JSONResponse(body, 400, _NO_STORE)


def answer(
    manager: Manager, session: Session, request: Request, cookie: SessionCookie | None
) -> JSONResponse:
    """RFC 6749 section 5.1's answer; to a cookie request, cookies instead of tokens in it."""
    body: dict[str, Any] = {"token_type": "bearer", "expires_in": expires_in(session)}
    if cookie is None:
        body = {"access_token": session.token, **body, "refresh_token": session.refresh_token}
    response = JSONResponse(body, 200, _NO_STORE)
    if cookie is not None:  # an HttpOnly cookie came in: the tokens stay out of scripts' reach
        manager.set_cookie(response, session, request)
    return response


async def read_grant(
    request: Request, cookie: SessionCookie | None
) -> tuple[str, SessionCookie | None]:
    """The one refresh token of ``request``, and the cookie it came in (None: the body)."""
    found = await _from_body(request)
    if found is not None:
        return found, None
    if cookie is not None:
        value = cookie.refresh_token_of(request.scope)
        if value is AnonymousReason.CROSS_SITE:
            raise HTTPException(403, ErrorCode.CSRF_FAILED)
        if value is AnonymousReason.REPEATED:
            raise _error(ErrorCode.REFRESH_TOKEN_REPEATED, "two refresh cookies")
        if value is AnonymousReason.MALFORMED:
            raise _error(ErrorCode.REFRESH_TOKEN_MALFORMED, "a malformed refresh cookie")
        if isinstance(value, bytes):
            return value.decode("ascii"), cookie
    raise _error(ErrorCode.REFRESH_TOKEN_MISSING, "no refresh token in the request")


async def _from_body(request: Request) -> str | None:
    """The refresh token of a JSON or form body; None for an empty body."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise _error(ErrorCode.INVALID_REQUEST, "the body is too long")
    if not body.strip():
        return None
    kind = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if kind == _JSON:
        return _from_json(body)
    if kind == _FORM:
        return _from_form(body)
    raise _error(ErrorCode.INVALID_REQUEST, f"send {_JSON} or {_FORM}")


def _from_json(body: bytes) -> str:
    try:
        pairs = json.loads(body, object_pairs_hook=list)
    except (ValueError, RecursionError):
        raise _error(ErrorCode.INVALID_REQUEST, "the body is not JSON") from None
    if not isinstance(pairs, list) or any(not isinstance(p, tuple) for p in pairs):
        raise _error(ErrorCode.INVALID_REQUEST, "the body is not a JSON object")
    return _grant(pairs, grant_type_required=False)


def _from_form(body: bytes) -> str:
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=20)
    except (UnicodeDecodeError, ValueError):
        raise _error(ErrorCode.INVALID_REQUEST, "the body is not a form") from None
    return _grant(pairs, grant_type_required=True)


def _grant(pairs: list[tuple[Any, Any]], *, grant_type_required: bool) -> str:
    """The refresh token of a body's parameters (RFC 6749 section 6)."""
    grant_types = [v for k, v in pairs if k == "grant_type"]
    tokens = [v for k, v in pairs if k == "refresh_token"]
    if len(grant_types) > 1 or len(tokens) > 1:
        raise _error(ErrorCode.REFRESH_TOKEN_REPEATED, "a parameter is repeated")
    if not grant_types and grant_type_required:
        raise _error(ErrorCode.GRANT_TYPE_MISSING, "grant_type=refresh_token is missing")
    if grant_types and grant_types[0] != "refresh_token":
        raise _error(ErrorCode.UNSUPPORTED_GRANT_TYPE, "only grant_type=refresh_token")
    if not tokens or tokens[0] == "":
        raise _error(ErrorCode.REFRESH_TOKEN_MISSING, "refresh_token is missing or empty")
    if not isinstance(tokens[0], str):
        raise _error(ErrorCode.REFRESH_TOKEN_MALFORMED, "refresh_token is not a string")
    return tokens[0]


async def _bound(request: Request, manager: Manager) -> UUID | None:
    """The session the request's own credentials (Bearer, session cookie) prove, if any."""
    found = await resolve_request(request, manager.resolver)
    return found.id if isinstance(found, Session) else None


def _error(code: ErrorCode, message: str) -> RefreshError:
    return RefreshError(code, message)
