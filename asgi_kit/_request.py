"""The one request path: a request's session is resolved once and read from its scope.

``resolve_request`` is the only reader: the middleware, the Starlette backend adapter,
FastAPI dependencies and the FastAPI Users strategy all call it. The first call for a
request resolves its ``Authorization`` header through a ``SessionResolver`` and leaves
the outcome on the scope (``SCOPE_KEY``); every later call, in any layer, reads it back.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any, NamedTuple

from starlette.authentication import AuthCredentials, BaseUser, UnauthenticatedUser
from starlette.requests import HTTPConnection

from ._models import Session
from ._resolver import SessionResolver
from ._tokens import AnonymousReason, token_digest

#: The scope key under which the request path leaves the ``Session``, or the
#: ``AnonymousReason`` saying why there is none (read it with ``request_session``).
SCOPE_KEY = "asgi_kit.auth"

Conn = HTTPConnection | MutableMapping[str, Any]
#: The credentials' scopes of an authenticated request (copied by ``AuthCredentials``).
_AUTHENTICATED = ("authenticated",)


class SessionUser(BaseUser):
    """The Starlette user of an authenticated request; ``identity`` is the user id."""

    def __init__(self, session: Session) -> None:
        self.session = session

    @property
    def is_authenticated(self) -> bool:
        """Always True."""
        return True

    @property
    def display_name(self) -> str:
        """The user id as a string."""
        return str(self.session.user_id)

    @property
    def identity(self) -> str:
        """The user id as a string."""
        return str(self.session.user_id)


class AuthResult(NamedTuple):
    """The outcome of authenticating one request: a session, or why there is none."""

    session: Session | None
    reason: AnonymousReason | None = None

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


def attach(scope: MutableMapping[str, Any], found: Session | AnonymousReason) -> None:
    """Leave ``found`` on ``scope``, with Starlette's ``scope["auth"]`` and ``scope["user"]``.

    They are fresh each call, so one request's change to ``request.auth.scopes`` never
    reaches another.
    """
    scope[SCOPE_KEY] = found
    if isinstance(found, Session):
        scope["auth"] = AuthCredentials(_AUTHENTICATED)
        scope["user"] = SessionUser(found)
    else:
        scope["auth"] = AuthCredentials()
        scope["user"] = UnauthenticatedUser()


async def resolve_request(conn: Conn, resolver: SessionResolver) -> Session | AnonymousReason:
    """The session of a request, or why there is none: resolved once, then read back.

    ``StoreUnavailableError`` propagates (and nothing is left on the scope, so a retry in
    another layer may still succeed).
    """
    scope = _scope(conn)
    found: Session | AnonymousReason | None = scope.get(SCOPE_KEY)
    if found is None:
        token = resolver.credential(scope)
        found = await resolver.look_up(token) if isinstance(token, bytes) else token
        attach(scope, found)
    return found


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
