"""Bearer tokens: generation, the storage digest and RFC 6750 header parsing.

This is the only place that knows how a token is read from a request and how it
is turned into the key a store looks sessions up by.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable
from enum import Enum

#: Longest token we hash and look up; anything longer is rejected unread.
MAX_TOKEN_LENGTH = 2048

# RFC 6750 section 2.1: credentials = "Bearer" 1*SP b64token
_B64TOKEN = re.compile(rb"[A-Za-z0-9\-._~+/]+=*")
_BEARER = re.compile(rb"[Bb][Ee][Aa][Rr][Ee][Rr] +([A-Za-z0-9\-._~+/]+=*)")
_SCHEME_END = re.compile(rb"[ \t]")
# The b64token characters but "=", for a regex-free check of the common case.
_TOKEN_CHARS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/"
# Maps those characters to "a" and every other byte to NUL: a token is made of them
# alone exactly when its translation ``isalpha()`` (one pass in C, no table built per call).
_AS_ALPHA = bytes(0x61 if byte in _TOKEN_CHARS else 0 for byte in range(256))
_FAST_LIMIT = MAX_TOKEN_LENGTH + len(b"Bearer ")


class AnonymousReason(str, Enum):
    """Why a request carries no valid session."""

    MISSING = "missing"
    """No Authorization header at all."""
    OTHER_SCHEME = "other_scheme"
    """An Authorization header with a scheme other than Bearer."""
    EMPTY = "empty"
    """``Bearer`` with no token after it."""
    MALFORMED = "malformed"
    """A token that breaks RFC 6750's grammar or is too long."""
    REPEATED = "repeated"
    """Two or more ``Authorization`` headers: which one counts is ambiguous (RFC 6750 3.1,
    ``invalid_request``: answered 400, not 401)."""
    INVALID = "invalid"
    """A well-formed token that no active session has (unknown, revoked or expired)."""
    EXPIRED = "expired"
    """The token of an active session whose access token lifetime is over: refresh it
    (answered 401 ``invalid_token``, "The access token expired")."""
    CROSS_SITE = "cross_site"
    """A session cookie on a state-changing request that may come from another site
    (``asgi_kit._csrf``): refused unread, answered 403 ``CSRF_FAILED``."""

    @property
    def token_presented(self) -> bool:
        """True when the client sent something meant as a bearer token."""
        return self in _PRESENTED


_PRESENTED = frozenset(
    {
        AnonymousReason.MALFORMED,
        AnonymousReason.REPEATED,
        AnonymousReason.INVALID,
        AnonymousReason.EXPIRED,
    }
)


def generate_token() -> str:
    """Return a fresh, URL-safe session token with 256 bits of entropy."""
    return secrets.token_urlsafe(32)


def token_digest(token: str | bytes) -> str:
    """Return the SHA-256 hex digest stores use as the key of ``token`` (text or ASCII bytes)."""
    raw = token.encode("utf-8") if isinstance(token, str) else token
    return hashlib.sha256(raw).hexdigest()


def is_b64token(token: str) -> bool:
    """Return True if ``token`` is a non-empty RFC 6750 b64token of acceptable length."""
    if not token or len(token) > MAX_TOKEN_LENGTH or not token.isascii():
        return False
    raw = token.encode("ascii")
    # The regex only for what the table cannot tell alone: "=" padding (or a bad byte).
    return raw.translate(_AS_ALPHA).isalpha() or _B64TOKEN.fullmatch(raw) is not None


def _parse_authorization(value: bytes) -> bytes | AnonymousReason:
    """Parse one raw ``Authorization`` value by RFC 6750's full grammar (the slow path)."""
    value = value.strip(b" \t")
    if len(value) <= _FAST_LIMIT:
        match = _BEARER.fullmatch(value)
        if match is not None:
            return match.group(1)
    end = _SCHEME_END.search(value)
    scheme = value[: end.start()] if end else value
    if scheme.lower() != b"bearer":
        return AnonymousReason.OTHER_SCHEME
    if end is None:
        return AnonymousReason.EMPTY
    return AnonymousReason.MALFORMED


def find_bearer(headers: Iterable[tuple[bytes, bytes]]) -> bytes | AnonymousReason:
    """Find the bearer token's bytes in raw ASGI headers (names lower-case), or why not.

    Exactly one ``Authorization`` header is accepted; two or more are ``REPEATED``, so a
    proxy that appends a header can never smuggle a second identity in.
    """
    found: bytes | None = None
    for name, value in headers:
        if name == b"authorization":
            if found is not None:
                return AnonymousReason.REPEATED
            found = value
    if found is None:
        return AnonymousReason.MISSING
    # Fast path: what nearly every client sends, "Bearer <token>" with one space and no
    # "=" padding. Anything else (other casing, padding, bad bytes) takes the full grammar.
    if found.startswith(b"Bearer ") and len(found) <= _FAST_LIMIT:
        token = found[7:]
        if token.translate(_AS_ALPHA).isalpha():
            return token
    return _parse_authorization(found)


def bearer_token(
    headers: Iterable[tuple[bytes, bytes]],
) -> tuple[str | None, AnonymousReason | None]:
    """Return ``(token, None)`` for the one valid bearer token in raw ASGI headers, or
    ``(None, why)``: ``find_bearer`` with the token decoded to text."""
    found = find_bearer(headers)
    if isinstance(found, AnonymousReason):
        return None, found
    return found.decode("ascii"), None
