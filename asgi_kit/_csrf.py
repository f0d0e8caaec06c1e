"""Cross-site request refusal for cookie-authenticated requests (OWASP: verify the origin).

A browser attaches a cookie to any request to its site, including one a page of another
site makes it send; a bearer header it never adds by itself. So a request authenticated by
the session cookie that can change state (POST, PUT, PATCH, DELETE, or any WebSocket
handshake) must prove it comes from the app's own origin:

- ``Sec-Fetch-Site: cross-site`` is always refused (the browser says so itself);
- otherwise ``Origin`` must match the request's own origin (its scheme and ``Host``) or a
  trusted origin; without ``Origin``, the origin of ``Referer``; with neither, refused.

Every modern browser sends ``Origin`` with a cross-origin POST, fetch or WebSocket, and a
page cannot forge it; ``SameSite=Lax`` on the cookie is a second, independent defence.
"""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import HTTPConnection

#: Methods that must not change state (RFC 9110 section 9.2.1): not checked.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
_DEFAULT_PORTS = {"http": 80, "https": 443}
_WEB_SCHEME = {"http": "http", "https": "https", "ws": "http", "wss": "https"}


def normalise_origin(value: str) -> str | None:
    """``scheme://host[:port]`` in lower case without a default port; None if not one."""
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = parts.hostname
    if scheme not in _DEFAULT_PORTS or not host:
        return None
    shown = f"[{host}]" if ":" in host else host
    return (
        f"{scheme}://{shown}"
        if port in (None, _DEFAULT_PORTS[scheme])
        else f"{scheme}://{shown}:{port}"
    )


def _header(headers: Iterable[tuple[bytes, bytes]], wanted: bytes) -> str | None:
    for name, value in headers:
        if name == wanted:
            return value.decode("latin-1")
    return None


def own_origin(scope: MutableMapping[str, Any]) -> str | None:
    """The origin the request was sent to: its scheme and ``Host`` header (None without one)."""
    host = _header(scope.get("headers") or (), b"host")
    scheme = _WEB_SCHEME.get(scope.get("scheme", "http"), "http")
    return None if host is None else normalise_origin(f"{scheme}://{host}")


def from_other_origin(
    conn: HTTPConnection | MutableMapping[str, Any], trusted_origins: Iterable[str] = ()
) -> bool:
    """True when a browser says a page of another origin sent this request.

    That is ``Sec-Fetch-Site: cross-site``, or an ``Origin`` (else ``Referer``) that is
    neither the request's own origin nor one of ``trusted_origins``; ``Origin: null``
    counts. A request naming no origin at all (an API client such as curl) does not: use
    it where no cookie authenticates the request, e.g. against login CSRF (a page
    elsewhere signing the browser in to an account of its choosing):

        if from_other_origin(request):
            raise HTTPException(403, ErrorCode.CSRF_FAILED)
    """
    scope = conn.scope if isinstance(conn, HTTPConnection) else conn
    trusted = {o for o in map(normalise_origin, trusted_origins) if o is not None}
    return _refused(scope, frozenset(trusted), unnamed=False)


def cross_site(scope: MutableMapping[str, Any], trusted: frozenset[str]) -> bool:
    """True when a cookie-authenticated request must be refused as possibly cross-site."""
    if scope["type"] == "http" and scope.get("method", "GET") in SAFE_METHODS:
        return False
    return _refused(scope, trusted, unnamed=True)


def _refused(scope: MutableMapping[str, Any], trusted: frozenset[str], *, unnamed: bool) -> bool:
    """The one rule; ``unnamed`` is the verdict for a request naming no origin at all."""
    headers = scope.get("headers") or ()
    if _header(headers, b"sec-fetch-site") == "cross-site":
        return True
    origin = _header(headers, b"origin")
    if origin is None:
        origin = _header(headers, b"referer")
        if origin is None:
            return unnamed
    claimed = normalise_origin(origin)  # "null" and garbage give None: refused
    return claimed is None or (claimed != own_origin(scope) and claimed not in trusted)
