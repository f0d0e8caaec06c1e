"""Reading the one request path: a request's session, resolved once, read from its scope.

``SessionResolver.resolve_scope`` resolves a request and leaves the outcome on its scope
(``SCOPE_KEY``); ``resolve_request`` is the same for a Starlette connection, and what
``SessionAuthBackend``, FastAPI dependencies and the FastAPI Users strategy call (the
middleware calls its resolver directly). Every later call, in any layer, reads the
outcome back; ``request_session`` and ``get_auth_result`` only read it.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any, NamedTuple

from starlette.requests import HTTPConnection

from ._models import Session
from ._resolver import SessionResolver
from ._scope import SCOPE_KEY
from ._tokens import AnonymousReason, token_digest

Conn = HTTPConnection | MutableMapping[str, Any]


class AuthResult(NamedTuple):
    """The outcome of authenticating one request: a session, or why there is none."""

    session: Session | None
    """The request's active session, or None."""
    reason: AnonymousReason | None = None
    """Why there is no session (None when there is one)."""

    @classmethod
    def of(cls, found: Session | AnonymousReason) -> AuthResult:
        """The result for what ``resolve_request`` found."""
        return cls(found) if isinstance(found, Session) else cls(None, found)

    @property
    def error(self) -> AnonymousReason | None:
        """``reason``, by its former name (kept for one release)."""
        return self.reason


def _scope(conn: Conn) -> MutableMapping[str, Any]:
    # A raw scope is a dict (the middleware's case, on every request): checked first, as
    # an isinstance() against HTTPConnection (a Mapping ABC) costs several times more.
    return conn if type(conn) is dict else conn.scope  # type: ignore[union-attr]


async def resolve_request(conn: Conn, resolver: SessionResolver) -> Session | AnonymousReason:
    """The session of a request, or why there is none: resolved once, then read back.

    ``resolver.resolve_scope`` for a Starlette connection or a raw scope.
    ``StoreUnavailableError`` propagates (and nothing is left on the scope, so a retry in
    another layer may still succeed).
    """
    return await resolver.resolve_scope(_scope(conn))


async def resolve_token(
    conn: Conn, token: str, resolver: SessionResolver
) -> Session | AnonymousReason:
    """The active session of ``token``, presented by the request ``conn``, or why not.

    When ``token`` is the request's own (its bearer token or session cookie, as
    ``resolve_request`` reads it), the request's outcome is reused: no second store
    look-up, and a cookie refused as cross-site stays refused. Any other token (from a
    transport of its own, say) is resolved on its own.
    """
    found = await resolve_request(conn, resolver)
    if isinstance(found, Session):
        if found.token_digest == token_digest(token):
            return found
    elif found is AnonymousReason.CROSS_SITE:
        return found
    elif found is AnonymousReason.INVALID and resolver.credential(_scope(conn)) == token.encode():
        return found  # already looked up, and refused
    return await resolver.resolve(token) or AnonymousReason.INVALID


def get_auth_result(conn: Conn) -> AuthResult | None:
    """The ``AuthResult`` of a resolved request or scope; None if nothing resolved it."""
    found = _scope(conn).get(SCOPE_KEY)
    return AuthResult.of(found) if isinstance(found, Session | AnonymousReason) else None


def request_session(conn: Conn) -> Session | None:
    """The session of a request (or raw scope), None when it is anonymous.

    Raises ``RuntimeError`` when nothing resolved the request (neither
    ``BearerAuthMiddleware`` nor ``SessionAuthBackend`` ran), so a missing middleware is
    never mistaken for "logged out".
    """
    found = _scope(conn).get(SCOPE_KEY)
    if found is None:
        raise RuntimeError("BearerAuthMiddleware must be installed to access the session")
    return found if isinstance(found, Session) else None
