"""Typed exceptions raised to Python callers of asgi-kit."""

from __future__ import annotations


class AsgiKitError(Exception):
    """Base class of every exception asgi-kit raises on purpose."""


class InvalidUserIdError(AsgiKitError, ValueError):
    """A user id that is not a UUID, an int or a short string without control characters."""


class ConfigurationError(AsgiKitError, ValueError):
    """A setting is out of range or inconsistent; raised at construction time."""


class SessionStoreError(AsgiKitError):
    """Base class of the errors a session store raises."""


class DuplicateSessionError(SessionStoreError, ValueError):
    """A session with the same id or the same token already exists in the store."""


class StoreUnavailableError(SessionStoreError):
    """The store's server cannot be reached right now; the operation may be retried."""


class SessionLimitError(AsgiKitError):
    """A new session was refused because the user already has the maximum number."""


class SyncUsageError(AsgiKitError, RuntimeError):
    """A call was made synchronously where only the awaitable form can work."""
