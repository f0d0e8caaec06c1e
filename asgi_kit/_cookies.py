"""``SessionCookie``: the session token in an HttpOnly cookie, for browsers.

The request path reads the cookie only when a request has no ``Authorization`` header:
API clients keep sending ``Bearer``; a browser app never hands the token to JavaScript.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterable, MutableMapping
from dataclasses import dataclass, field
from typing import Any, Literal

from starlette.requests import HTTPConnection
from starlette.responses import Response

from ._csrf import cross_site, normalise_origin
from ._errors import ConfigurationError
from ._models import Session
from ._tokens import AnonymousReason, is_b64token

# RFC 6265 section 4.1.1: a cookie name is an HTTP token.
_COOKIE_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


@dataclass(frozen=True)
class SessionCookie:
    """Where browsers keep the session token, and how the cookie is set.

    Defaults are the safe ones: ``HttpOnly`` (always), ``SameSite=Lax`` (``"strict"`` if
    you prefer), ``Secure`` when the request came over https (``secure=True`` always,
    ``False`` never: local development over http), ``Path=/``, ``Max-Age`` from the
    session's deadline when it has one. A name starting ``__Host-`` makes browsers insist
    on ``Secure``, ``Path=/`` and no ``Domain`` (so ``secure=False`` is refused).
    ``trusted_origins`` are other origins whose pages may make state-changing requests
    with the cookie (``"https://admin.example.com"``); see ``asgi_kit._csrf``.

    With refresh tokens, the refresh token has a cookie of its own, ``refresh_name``
    (default: the name and ``_refresh``; ``__Host-x`` gives ``__Secure-x_refresh``, since
    ``__Host-`` forbids a path), with the same attributes but ``Path``: only the refresh
    endpoint's, so the browser sends it nowhere else.

    Examples:
        >>> manager = SessionManager(cookie=SessionCookie("__Host-session"))  # doctest: +SKIP
    """

    name: str = "asgi_kit_session"
    """The cookie's name; ``__Host-`` first makes browsers insist on ``Secure`` and ``Path=/``."""
    samesite: Literal["lax", "strict"] = "lax"
    """The ``SameSite`` attribute: ``"lax"`` (the default) or ``"strict"``."""
    secure: bool | None = None
    """``Secure``: True always, False never, None (the default) when the request came over https."""
    trusted_origins: Iterable[str] = ()
    """Other origins whose pages may make state-changing requests with the cookie."""
    refresh_name: str = ""
    """The refresh token's cookie; empty (the default) derives it from ``name``."""
    _trusted: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not _COOKIE_NAME.fullmatch(self.name):
            raise ConfigurationError(f"cookie name {self.name!r} is not an HTTP token")
        if self.samesite not in ("lax", "strict"):
            raise ConfigurationError("samesite must be 'lax' or 'strict'")
        if self.name.startswith("__Host-") and self.secure is False:
            raise ConfigurationError("a __Host- cookie is always Secure: drop secure=False")
        if not self.refresh_name:
            base = f"__Secure-{self.name[7:]}" if self.name.startswith("__Host-") else self.name
            object.__setattr__(self, "refresh_name", f"{base}_refresh")
        if not _COOKIE_NAME.fullmatch(self.refresh_name) or self.refresh_name == self.name:
            raise ConfigurationError(
                f"refresh cookie name {self.refresh_name!r} is not an HTTP token of its own"
            )
        if self.refresh_name.startswith("__Host-"):
            raise ConfigurationError("the refresh cookie has a path: it cannot be __Host-")
        trusted = set()
        for origin in self.trusted_origins:
            normal = normalise_origin(origin)
            if normal is None:
                raise ConfigurationError(f"trusted origin {origin!r} is not scheme://host[:port]")
            trusted.add(normal)
        object.__setattr__(self, "trusted_origins", tuple(self.trusted_origins))
        object.__setattr__(self, "_trusted", frozenset(trusted))

    def token_of(self, scope: MutableMapping[str, Any]) -> bytes | AnonymousReason:
        """The token in the request's session cookie, or why there is none to use.

        Two cookies of the name are ``REPEATED`` (another site may have planted one); a
        state-changing request that may come from another site is ``CROSS_SITE``.
        """
        return self._read(scope, self.name)

    def refresh_token_of(self, scope: MutableMapping[str, Any]) -> bytes | AnonymousReason:
        """The token in the request's refresh cookie, or why there is none (as ``token_of``)."""
        return self._read(scope, self.refresh_name)

    def _read(self, scope: MutableMapping[str, Any], name: str) -> bytes | AnonymousReason:
        found = _cookie_values(scope.get("headers") or (), name.encode("latin-1"))
        if not found:
            return AnonymousReason.MISSING
        if len(found) > 1:
            return AnonymousReason.REPEATED
        token = found[0]
        if not is_b64token(token.decode("latin-1")):
            return AnonymousReason.MALFORMED
        if cross_site(scope, self._trusted):
            return AnonymousReason.CROSS_SITE
        return token

    def set(self, response: Response, session: Session, request: HTTPConnection) -> None:
        """Set the cookie holding ``session.token`` on ``response`` (at login).

        ``request`` is the login request: its scheme decides ``Secure`` when ``secure`` is
        None. ``Max-Age`` runs to the session's deadline; without one it is a browser
        session cookie.
        """
        response.set_cookie(
            self.name,
            session.token,
            max_age=_max_age(session),
            path="/",
            secure=self._secure(request),
            httponly=True,
            samesite=self.samesite,
        )

    def set_refresh(
        self, response: Response, session: Session, request: HTTPConnection, path: str
    ) -> None:
        """Set the refresh cookie holding ``session.refresh_token``, sent to ``path`` only."""
        response.set_cookie(
            self.refresh_name,
            session.refresh_token,
            max_age=_max_age(session),
            path=path,
            secure=self._secure(request),
            httponly=True,
            samesite=self.samesite,
        )

    def clear(self, response: Response, request: HTTPConnection) -> None:
        """Delete the cookie on ``response`` (at logout), with the attributes it was set with."""
        secure = self._secure(request)
        response.delete_cookie(
            self.name, path="/", secure=secure, httponly=True, samesite=self.samesite
        )

    def clear_refresh(self, response: Response, request: HTTPConnection, path: str) -> None:
        """Delete the refresh cookie set for ``path`` on ``response``."""
        secure = self._secure(request)
        response.delete_cookie(
            self.refresh_name, path=path, secure=secure, httponly=True, samesite=self.samesite
        )

    def _secure(self, request: HTTPConnection) -> bool:
        if self.name.startswith("__Host-"):
            return True
        https = request.url.scheme in ("https", "wss")
        return https if self.secure is None else self.secure


def _max_age(session: Session) -> int | None:
    """Seconds to the session's deadline; None (a browser session cookie) without one."""
    deadline = session.deadline
    return None if deadline is None else max(0, math.floor(deadline.timestamp() - time.time()))


def _cookie_values(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> list[bytes]:
    """Every value of the cookie ``name`` in the request's ``Cookie`` headers."""
    values = []
    for header, value in headers:
        if header == b"cookie":
            for pair in value.split(b";"):
                key, sep, found = pair.strip().partition(b"=")
                if sep and key == name:
                    values.append(found.strip().strip(b'"'))
    return values
