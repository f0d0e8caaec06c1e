"""asgi-kit: session-backed bearer auth and session stores for ASGI apps."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._backend import SessionAuthBackend
from ._clock import utcnow
from ._errors import (
    AsgiKitError,
    ConfigurationError,
    DuplicateSessionError,
    InvalidUserIdError,
    SessionLimitError,
    SessionStoreError,
    StoreUnavailableError,
    SyncUsageError,
)
from ._http import ErrorCode, www_authenticate
from ._memory import InMemorySessionDatabase
from ._middleware import (
    SCOPE_KEY,
    BearerAuthMiddleware,
    SessionUser,
    get_auth_result,
    get_session,
)
from ._models import Session
from ._protocol import SessionDatabase
from ._resolver import AuthResult, SessionResolver
from ._tokens import AuthError, bearer_token, generate_token, is_b64token, token_digest
from ._urls import session_database_from_url
from ._user_ids import UserId, coerce_user_id

if TYPE_CHECKING:
    from ._redis import RedisSessionDatabase
    from ._sql import SQLAlchemySessionDatabase, session_table

# Stores whose drivers come with an extra: imported on first use, with a helpful error.
_OPTIONAL = {
    "SQLAlchemySessionDatabase": ("._sql", "asgi-kit[sqlalchemy] (or [postgres])"),
    "RedisSessionDatabase": ("._redis", "asgi-kit[redis]"),
    "session_table": ("._sql", "asgi-kit[sqlalchemy]"),
}


def __getattr__(name: str) -> Any:
    if name not in _OPTIONAL:
        raise AttributeError(f"module 'asgi_kit' has no attribute {name!r}")
    module, extra = _OPTIONAL[name]
    try:
        from importlib import import_module

        return getattr(import_module(module, __name__), name)
    except ImportError as exc:
        raise ImportError(f"{name} needs an optional dependency: pip install '{extra}'") from exc


__all__ = [
    "SCOPE_KEY",
    "AsgiKitError",
    "AuthError",
    "AuthResult",
    "BearerAuthMiddleware",
    "ConfigurationError",
    "DuplicateSessionError",
    "ErrorCode",
    "InMemorySessionDatabase",
    "InvalidUserIdError",
    "RedisSessionDatabase",
    "SQLAlchemySessionDatabase",
    "Session",
    "SessionAuthBackend",
    "SessionDatabase",
    "SessionLimitError",
    "SessionResolver",
    "SessionStoreError",
    "SessionUser",
    "StoreUnavailableError",
    "SyncUsageError",
    "UserId",
    "bearer_token",
    "coerce_user_id",
    "generate_token",
    "get_auth_result",
    "get_session",
    "is_b64token",
    "session_database_from_url",
    "session_table",
    "token_digest",
    "utcnow",
    "www_authenticate",
]
