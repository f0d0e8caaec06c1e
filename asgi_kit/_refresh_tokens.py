"""Refresh tokens: their format, the server secret that signs them, and the rotation seal.

A refresh token is ``r1.`` and the URL-safe base64 of 84 bytes: the session id (16), the
token's generation (4, big-endian: 0 at login, one more per rotation), 32 random bytes and
an HMAC-SHA256 tag (32) of everything before it under the server secret. A store keeps
only the SHA-256 digest of the current one, so:

- a dump of a store cannot use or mint a token (the random part is only in its digest,
  and minting a tag needs the secret, which is configuration, never stored);
- the secret alone cannot mint a usable token either (it lacks the random part); at worst
  it forges a *rotated-out* token of a session whose id it knows, which ends that session;
- a token that was rotated out is recognised whatever its age: its tag proves it was
  ours and its generation says it is old. That is how reuse is detected.

The seal (``seal``/``unseal``) keeps the tokens a rotation issued, encrypted under the
refresh token the rotation consumed, so that a second request presenting that same token
within the reuse interval (two tabs, a retry after a lost response) gets the same current
tokens instead of ending the session. Only a holder of the consumed token can open it:
the key is derived from the raw token, which no store keeps.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Sequence
from typing import NamedTuple
from uuid import UUID

from ._errors import ConfigurationError

#: Shortest server secret accepted, in bytes (HMAC-SHA256's block of strength).
MIN_SECRET_BYTES = 32
_PREFIX = "r1."
_BODY = 16 + 4 + 32
_TAG = 32
_LENGTH = len(_PREFIX) + 112  # base64 of _BODY + _TAG = 84 bytes, no padding
_SEAL_CONTEXT = b"asgi-kit refresh seal v1\x00"
_MAX_GENERATION = 2**32 - 1


class RefreshClaim(NamedTuple):
    """What a genuine refresh token says: its session and its generation."""

    session_id: UUID
    """The id of the session the token refreshes."""
    generation: int
    """The rotation the token was issued at (``Session.refresh_generation``)."""


class RefreshSecret:
    """The server secret(s) that sign refresh tokens; never stored, never shown.

    ``secret`` is one secret (text or bytes, at least 32 bytes) or a sequence of them:
    new tokens are signed with the first, and tokens signed with any of them are read, so
    a secret is rotated by putting the new one first and dropping the old one once every
    session has refreshed (or ended) since.
    """

    __slots__ = ("_keys",)

    def __init__(self, secret: str | bytes | Sequence[str | bytes] | None) -> None:
        given = [secret] if isinstance(secret, (str, bytes)) else list(secret or ())
        keys = [k.encode() if isinstance(k, str) else k for k in given]
        if not keys:
            raise ConfigurationError(
                "refresh tokens need a server secret: pass refresh_secret=... (at least 32 "
                "bytes, the same on every instance), e.g. from "
                '`python -c "import secrets; print(secrets.token_urlsafe(32))"`'
            )
        for number, key in enumerate(keys, 1):
            if not isinstance(key, bytes) or len(key) < MIN_SECRET_BYTES:
                raise ConfigurationError(
                    f"refresh secret number {number} is too short: it must be text or bytes "
                    f"of at least {MIN_SECRET_BYTES} bytes"
                )
        self._keys = tuple(keys)

    def __repr__(self) -> str:
        return f"RefreshSecret(<{len(self._keys)} secret(s) hidden>)"

    def mint(self, session_id: UUID, generation: int) -> str:
        """A new refresh token of ``session_id`` at ``generation``."""
        if not 0 <= generation <= _MAX_GENERATION:
            raise ValueError("refresh token generation out of range")
        body = session_id.bytes + generation.to_bytes(4, "big") + secrets.token_bytes(32)
        tag = hmac.digest(self._keys[0], body, "sha256")
        return _PREFIX + base64.urlsafe_b64encode(body + tag).decode("ascii")

    def read(self, token: str) -> RefreshClaim | None:
        """The claim of a genuine refresh token; None if it is malformed or not ours."""
        if len(token) != _LENGTH or not token.startswith(_PREFIX):
            return None
        encoded = token[len(_PREFIX) :].encode("ascii", "replace")
        try:
            raw = base64.urlsafe_b64decode(encoded)
        except (binascii.Error, ValueError):
            return None
        # The decoder also takes "+" and "/" (and skips other bytes): one spelling only.
        if base64.urlsafe_b64encode(raw) != encoded:
            return None
        body, tag = raw[:_BODY], raw[_BODY:]
        if len(tag) != _TAG or not any(
            hmac.compare_digest(hmac.digest(key, body, "sha256"), tag) for key in self._keys
        ):
            return None
        return RefreshClaim(UUID(bytes=body[:16]), int.from_bytes(body[16:20], "big"))


def seal(consumed: str, access_token: str, refresh_token: str) -> str:
    """The tokens a rotation issued, encrypted under the refresh token it consumed.

    The key stream is SHAKE-256 of the consumed token (256 bits of randomness, used for
    this one seal only: a token is consumed by exactly one rotation), so the seal is a
    one-time pad. Integrity is checked by ``unseal``'s caller: the tokens it gives must
    match the digests the store keeps.
    """
    plain = f"{access_token}\n{refresh_token}".encode("ascii")
    return base64.urlsafe_b64encode(_xor(plain, _stream(consumed, len(plain)))).decode("ascii")


def unseal(consumed: str, sealed: str) -> tuple[str, str] | None:
    """The (access, refresh) tokens ``seal`` kept under ``consumed``; None if they are not."""
    try:
        cipher = base64.urlsafe_b64decode(sealed.encode("ascii"))
        plain = _xor(cipher, _stream(consumed, len(cipher))).decode("ascii")
    except (binascii.Error, UnicodeError, ValueError):
        return None
    access, sep, refresh = plain.partition("\n")
    return (access, refresh) if sep else None


def _stream(token: str, length: int) -> bytes:
    return hashlib.shake_256(_SEAL_CONTEXT + token.encode("ascii")).digest(length)


def _xor(data: bytes, stream: bytes) -> bytes:
    return (int.from_bytes(data, "big") ^ int.from_bytes(stream, "big")).to_bytes(len(data), "big")
