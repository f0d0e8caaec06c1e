"""Shared ASGI apps and session fixtures for the middleware benchmarks.

Every app answers ``GET /`` with ``PlainTextResponse("ok")``; they differ only in the
authentication layer wrapped around that endpoint. Tokens are derived from a seed, so a
uvicorn server process and the load generator agree on them without talking.

The uvicorn factories (``bare_factory``, ``bearer_factory``) read the number of sessions
from ``ASGI_KIT_BENCH_SESSIONS`` (default 100,000).
"""

from __future__ import annotations

import base64
import hashlib
import os
import random
from dataclasses import dataclass
from datetime import timedelta
from uuid import UUID

from starlette.applications import Starlette
from starlette.authentication import (
    AuthCredentials,
    AuthenticationBackend,
    BaseUser,
    SimpleUser,
)
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from asgi_kit import (
    BearerAuthMiddleware,
    InMemorySessionDatabase,
    Session,
    SessionAuthBackend,
    SessionCookie,
    SessionDatabase,
    SessionResolver,
    token_digest,
    utcnow,
)

#: Sessions in the store unless told otherwise.
DEFAULT_SESSIONS = 100_000
#: How many distinct valid tokens the requests cycle over.
DEFAULT_ACTIVE_TOKENS = 1_000
#: Seed of the token generator (server and client must use the same one).
DEFAULT_SEED = 20_240_601
#: Environment variable the uvicorn factories read the session count from.
SESSIONS_ENV = "ASGI_KIT_BENCH_SESSIONS"

#: Session lifetime and idle timeout, so ``Session.deadline`` takes its full path.
LIFETIME = timedelta(days=30)
IDLE_TIMEOUT = timedelta(days=7)


def make_tokens(count: int, seed: int = DEFAULT_SEED) -> list[str]:
    """Return ``count`` distinct URL-safe tokens shaped like ``secrets.token_urlsafe(32)``."""
    rng = random.Random(seed)
    tokens = [
        base64.urlsafe_b64encode(rng.randbytes(32)).rstrip(b"=").decode() for _ in range(count)
    ]
    if len(set(tokens)) != count:  # pragma: no cover - 256-bit collisions
        raise RuntimeError("token collision")
    return tokens


def build_store(tokens: list[str]) -> InMemorySessionDatabase:
    """Return an in-memory store holding one active session per token.

    The sessions go in through the store's documented ``mapping`` argument (digest ->
    Session, as the store keeps them: digest only, no raw token), which indexes them in
    one pass; 100,000 sessions take about a second.
    """
    now = utcnow()
    expires_at = now + LIFETIME
    mapping: dict[str, Session] = {}
    for number, token in enumerate(tokens):
        digest = token_digest(token)
        mapping[digest] = Session(
            user_id=UUID(int=number + 1, version=4),
            token_digest=digest,
            created_at=now,
            expires_at=expires_at,
            idle_timeout=IDLE_TIMEOUT,
        )
    return InMemorySessionDatabase(mapping)


def build_user_index(tokens: list[str]) -> dict[str, str]:
    """Return ``{sha256 hex digest: user name}`` for the hand-written baselines."""
    return {hashlib.sha256(t.encode()).hexdigest(): f"user-{n}" for n, t in enumerate(tokens)}


async def ok_endpoint(request: Request) -> PlainTextResponse:
    """The endpoint every app serves."""
    return PlainTextResponse("ok")


def bare_app() -> Starlette:
    """A bare Starlette app: ``GET /`` -> ``ok``."""
    return Starlette(routes=[Route("/", ok_endpoint)])


class DictTokenBackend(AuthenticationBackend):
    """What a typical user writes for Starlette: header, sha256, dict look-up."""

    def __init__(self, users: dict[str, str]) -> None:
        self.users = users

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser] | None:
        """Return credentials and a ``SimpleUser`` for a known bearer token, else None."""
        header = conn.headers.get("authorization")
        if header is None:
            return None
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None
        name = self.users.get(hashlib.sha256(token.encode()).hexdigest())
        if name is None:
            return None
        return AuthCredentials(["authenticated"]), SimpleUser(name)


class MinimalBearerMiddleware:
    """The lower bound: a pure-ASGI header scan, an optional sha256 and one dict look-up.

    ``scope["user"]`` becomes the user name, or None. With ``hashed=False`` the index is
    keyed by the raw token, which shows what the hash itself costs.
    """

    def __init__(self, app: ASGIApp, users: dict[str, str], *, hashed: bool = True) -> None:
        self.app = app
        self.users = users
        self.hashed = hashed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Set ``scope["user"]`` from the Authorization header, then call the app."""
        if scope["type"] in ("http", "websocket"):
            user = None
            for name, value in scope["headers"]:
                if name == b"authorization":
                    if value[:7].lower() == b"bearer ":
                        token = value[7:]
                        key = hashlib.sha256(token).hexdigest() if self.hashed else token.decode()
                        user = self.users.get(key)
                    break
            scope["user"] = user
        await self.app(scope, receive, send)


def build_cases(
    n_sessions: int = DEFAULT_SESSIONS, seed: int = DEFAULT_SEED, *, touch_interval: float = 60
) -> tuple[dict[str, ASGIApp], list[str]]:
    """Return ``({case name: app}, tokens)``; the first tokens are the ones to send.

    Each case gets its own ``Starlette`` instance so no middleware stack is shared.
    """
    tokens = make_tokens(n_sessions, seed)
    store = build_store(tokens)
    users = build_user_index(tokens)
    raw_users = {token: f"user-{n}" for n, token in enumerate(tokens)}
    cases: dict[str, ASGIApp] = {
        "bare": bare_app(),
        "bearer": BearerAuthMiddleware(bare_app(), session_db=store, touch_interval=touch_interval),
        "cookie": BearerAuthMiddleware(bare_app(), session_db=with_cookie(store, touch_interval)),
        "starlette_dict": AuthenticationMiddleware(bare_app(), backend=DictTokenBackend(users)),
        "starlette_session": AuthenticationMiddleware(
            bare_app(), backend=SessionAuthBackend(store, touch_interval=touch_interval)
        ),
        "minimal": MinimalBearerMiddleware(bare_app(), users),
        "minimal_nohash": MinimalBearerMiddleware(bare_app(), raw_users, hashed=False),
    }
    return cases, tokens


#: The session cookie's name in the cookie case.
COOKIE_NAME = "sid"


@dataclass(frozen=True)
class _CookieResolver:
    """What a ``SessionManager`` hands the middleware: a resolver that also reads cookies."""

    resolver: SessionResolver


def with_cookie(store: SessionDatabase, touch_interval: float) -> _CookieResolver:
    """The store behind a resolver reading ``COOKIE_NAME`` (as ``SessionManager(cookie=...)``)."""
    cookie = SessionCookie(COOKIE_NAME)
    return _CookieResolver(SessionResolver(store, touch_interval=touch_interval, cookie=cookie))


def _sessions_from_env() -> int:
    return int(os.environ.get(SESSIONS_ENV, DEFAULT_SESSIONS))


def bare_factory() -> ASGIApp:
    """uvicorn ``--factory`` target: the bare app."""
    return bare_app()


def bearer_factory() -> ASGIApp:
    """uvicorn ``--factory`` target: the bare app behind ``BearerAuthMiddleware``.

    ``reject_invalid=True`` turns an unresolved token into a 401 the load generator counts
    (a valid token takes exactly the same path as with the default).
    """
    store = build_store(make_tokens(_sessions_from_env()))
    return BearerAuthMiddleware(
        bare_app(), session_db=store, touch_interval=60, reject_invalid=True
    )
