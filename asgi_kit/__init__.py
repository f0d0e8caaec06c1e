"""asgi-kit: session-backed bearer auth and session stores for ASGI apps."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

from ._backend import SessionAuthBackend
from ._clock import as_interval, as_utc, utcnow
from ._cookies import SessionCookie
from ._csrf import from_other_origin
from ._device import DEVICE_KINDS, Device
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
from ._http import (
    STORE_UNAVAILABLE,
    ErrorCode,
    Refusal,
    refusal,
    store_unavailable_handler,
    www_authenticate,
)
from ._middleware import BearerAuthMiddleware
from ._models import Session
from ._refresh import RefreshError, RefreshTokenReusedError, TokenRefresher, expires_in
from ._refresh_tokens import RefreshClaim, RefreshSecret
from ._request import (
    AuthResult,
    get_auth_result,
    request_session,
    resolve_request,
    resolve_token,
)
from ._resolver import HasResolver, SessionResolver
from ._scope import SCOPE_KEY, SessionUser
from ._step_up import RecentAuthentication
from ._stores import (
    OPTIONAL,
    InMemorySessionDatabase,
    ReauthenticatingSessionDatabase,
    RotatingSessionDatabase,
    SessionDatabase,
    load_optional,
    purge_periodically,
    session_database_from_url,
)
from ._tokens import AnonymousReason, bearer_token, generate_token, is_b64token, token_digest
from ._user_agents import describe_device, device_of_headers
from ._user_ids import UserId, coerce_user_id

if TYPE_CHECKING:
    from ._stores.redis import RedisSessionDatabase as RedisSessionDatabase
    from ._stores.sql import SQLAlchemySessionDatabase as SQLAlchemySessionDatabase
    from ._stores.sql import session_table as session_table

#: Former names, kept for one release: old name -> new name.
_RENAMED = {"AuthError": "AnonymousReason", "get_session": "request_session"}


def __getattr__(name: str) -> Any:
    if name in _RENAMED:
        new = _RENAMED[name]
        warnings.warn(
            f"asgi_kit.{name} is now asgi_kit.{new}; the old name goes in the next release",
            DeprecationWarning,
            stacklevel=2,
        )
        return globals()[new]
    if name not in OPTIONAL:
        raise AttributeError(f"module 'asgi_kit' has no attribute {name!r}")
    return load_optional(name)


# The optional stores (``OPTIONAL``) are attributes, not in ``__all__``: a star import must
# work with only the core dependencies installed.
__all__ = [
    "DEVICE_KINDS",
    "SCOPE_KEY",
    "STORE_UNAVAILABLE",
    "AnonymousReason",
    "AsgiKitError",
    "AuthResult",
    "BearerAuthMiddleware",
    "ConfigurationError",
    "Device",
    "DuplicateSessionError",
    "ErrorCode",
    "HasResolver",
    "InMemorySessionDatabase",
    "InvalidUserIdError",
    "ReauthenticatingSessionDatabase",
    "RecentAuthentication",
    "RefreshClaim",
    "RefreshError",
    "RefreshSecret",
    "RefreshTokenReusedError",
    "Refusal",
    "RotatingSessionDatabase",
    "Session",
    "SessionAuthBackend",
    "SessionCookie",
    "SessionDatabase",
    "SessionLimitError",
    "SessionResolver",
    "SessionStoreError",
    "SessionUser",
    "StoreUnavailableError",
    "SyncUsageError",
    "TokenRefresher",
    "UserId",
    "as_interval",
    "as_utc",
    "bearer_token",
    "coerce_user_id",
    "describe_device",
    "device_of_headers",
    "expires_in",
    "from_other_origin",
    "generate_token",
    "get_auth_result",
    "is_b64token",
    "purge_periodically",
    "refusal",
    "request_session",
    "resolve_request",
    "resolve_token",
    "session_database_from_url",
    "store_unavailable_handler",
    "token_digest",
    "utcnow",
    "www_authenticate",
]
