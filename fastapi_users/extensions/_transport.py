"""``RefreshTransport``: FastAPI Users' login response, with the refresh token added.

FastAPI Users hands a transport only the token its strategy wrote. The strategy leaves the
session it created (and the request) in a context variable of the request's task, and
the transport picks it up from there: a Bearer login answers RFC 6749 section 5.1's JSON
(``access_token``, ``token_type``, ``expires_in``, ``refresh_token``), a cookie login
gets the refresh cookie beside the access cookie. FastAPI Users is never imported: the
wrapper matches its ``Transport`` protocol structurally.
"""

from __future__ import annotations

import json
from contextvars import ContextVar
from typing import Any, Protocol

from fastapi.security.base import SecurityBase
from pydantic import BaseModel
from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse, Response

from asgi_kit import Session, SessionCookie, expires_in

from ._refresh_route import refresh_path

__all__ = [
    "BearerRefreshTransport",
    "CookieRefreshTransport",
    "RefreshTransport",
    "TransportLike",
    "remember_issued",
    "remember_request",
]

_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
#: The session the strategy's ``write_token`` just created, until the transport answers.
_ISSUED: ContextVar[Session | None] = ContextVar("asgi_kit_issued", default=None)
#: The request the strategy serves (a login or a logout), for the cookies' attributes.
_REQUEST: ContextVar[HTTPConnection | None] = ContextVar("asgi_kit_request", default=None)


class TransportLike(Protocol):
    """FastAPI Users' ``Transport`` protocol, as this wrapper uses it."""

    @property
    def scheme(self) -> SecurityBase:
        """The FastAPI security scheme the transport reads its token with."""
        ...

    async def get_login_response(self, token: str) -> Response:
        """The response of a login that wrote ``token``."""
        ...

    async def get_logout_response(self) -> Response:
        """The response of a logout."""
        ...

    @staticmethod
    def get_openapi_login_responses_success() -> dict[int | str, dict[str, Any]]:
        """OpenAPI ``responses`` of a login."""
        ...

    @staticmethod
    def get_openapi_logout_responses_success() -> dict[int | str, dict[str, Any]]:
        """OpenAPI ``responses`` of a logout."""
        ...


def remember_issued(session: Session, request: HTTPConnection | None) -> None:
    """Called by the strategy at a login: the session whose tokens the response carries."""
    _ISSUED.set(session)
    _REQUEST.set(request)


def remember_request(request: HTTPConnection | None) -> None:
    """Called by the strategy at a logout: the request whose cookies the response clears."""
    _REQUEST.set(request)


class RefreshedBearerResponse(BaseModel):
    """A Bearer login's answer with refresh tokens on (RFC 6749 section 5.1)."""

    access_token: str
    token_type: str
    expires_in: int
    refresh_token: str


class RefreshTransport:
    """A FastAPI Users transport (``inner``) whose logins hand out refresh tokens too.

    ``cookie`` is set for a ``CookieTransport``: the refresh cookie's settings. Made by
    ``SessionManager.transport()`` (as ``BearerRefreshTransport`` or
    ``CookieRefreshTransport``, whose OpenAPI descriptions differ); see there.
    """

    def __init__(self, inner: TransportLike, cookie: SessionCookie | None) -> None:
        self.inner = inner
        """The FastAPI Users transport wrapped (``BearerTransport`` or ``CookieTransport``)."""
        self.scheme = inner.scheme
        """The inner transport's OpenAPI security scheme."""
        self.cookie = cookie
        """The refresh cookie's settings (a ``CookieTransport``), or None."""

    async def get_login_response(self, token: str) -> Response:
        """``inner``'s login response, with the refresh token when the session has one."""
        response = await self.inner.get_login_response(token)
        session, request = _ISSUED.get(), _REQUEST.get()
        _ISSUED.set(None)  # the raw tokens are not kept past the response
        if session is None or session.token != token or not session.refresh_token:
            return response
        if self.cookie is None:
            body = {
                **json.loads(bytes(response.body)),
                "expires_in": expires_in(session),
                "refresh_token": session.refresh_token,
            }
            return JSONResponse(body, response.status_code, _NO_STORE)
        if request is None:
            return response  # a strategy made by hand, outside a request: no cookie path
        self.cookie.set_refresh(response, session, request, refresh_path(request))
        response.headers.update(_NO_STORE)
        return response

    async def get_logout_response(self) -> Response:
        """``inner``'s logout response; a cookie transport's also clears the refresh cookie."""
        response = await self.inner.get_logout_response()
        request = _REQUEST.get()
        if self.cookie is not None and request is not None:
            self.cookie.clear_refresh(response, request, refresh_path(request))
        return response


class BearerRefreshTransport(RefreshTransport):
    """``BearerTransport``, whose login answers ``expires_in`` and ``refresh_token`` too."""

    @staticmethod
    def get_openapi_login_responses_success() -> dict[int | str, dict[str, Any]]:
        """A login's 200, with the refresh fields."""
        return {200: {"model": RefreshedBearerResponse}}

    @staticmethod
    def get_openapi_logout_responses_success() -> dict[int | str, dict[str, Any]]:
        """Nothing: FastAPI Users answers a Bearer logout 204 by itself."""
        return {}


class CookieRefreshTransport(RefreshTransport):
    """``CookieTransport``, whose login sets the refresh cookie too."""

    @staticmethod
    def get_openapi_login_responses_success() -> dict[int | str, dict[str, Any]]:
        """A login's 204 (the tokens are in cookies)."""
        return {204: {"model": None}}

    @staticmethod
    def get_openapi_logout_responses_success() -> dict[int | str, dict[str, Any]]:
        """A logout's 204 (the cookies are cleared)."""
        return {204: {"model": None}}
