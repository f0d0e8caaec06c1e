"""Why sessions end and which account events end them."""

from __future__ import annotations

from enum import Enum

from asgi_kit import AsgiKitError


class UnknownEndReasonError(AsgiKitError, ValueError):
    """A reason for ending sessions that is not one of ``EndReason``'s values was given."""


class EndReason(str, Enum):
    """Why a session ended, as passed to ``SessionManager.on_after_end``."""

    LOGOUT = "logout"
    """The user logged out (also the default ``reason`` of the revoke methods)."""
    REVOKED_BY_USER = "revoked_by_user"
    """The user ended it from another of their sessions."""
    REVOKED_BY_ADMIN = "revoked_by_admin"
    """An admin ended it (the admin routes)."""
    EXPIRED = "expired"
    """It expired and was purged (``purge_expired``)."""
    EVICTED = "evicted"
    """Evicted to make room for a new one (``max_sessions_per_user``)."""
    ACCOUNT_EVENT = "account_event"
    """Ended by ``end_sessions_for_account_event`` (password change, disabled account...)."""
    TOKEN_REUSED = "token_reused"  # noqa: S105 - a reason, not a secret
    """A refresh token that was already rotated out came back after the reuse interval: two parties
    held it, so the whole session ended (RFC 9700 section 4.14.2)."""

    @classmethod
    def of(cls, value: EndReason | str) -> EndReason:
        """``value`` as an ``EndReason``; anything else raises ``UnknownEndReasonError``."""
        try:
            return cls(value)
        except ValueError:
            choices = ", ".join(repr(r.value) for r in cls)
            raise UnknownEndReasonError(
                f"unknown end reason {value!r}: use an EndReason, one of {choices}"
            ) from None


class AccountEvent(str, Enum):
    """Account changes that end a user's sessions (OWASP ASVS 5.0, V7.4.2 and V7.4.3)."""

    PASSWORD_CHANGED = "password_changed"  # noqa: S105 - an event name
    """The user changed their password: may keep the session that made the change."""
    PASSWORD_RESET = "password_reset"  # noqa: S105 - an event name
    """The password was reset (forgot password): may keep the session that made the change."""
    ACCOUNT_DISABLED = "account_disabled"
    """The account was disabled: every session ends."""
    ACCOUNT_DELETED = "account_deleted"
    """The account was deleted: every session ends."""

    @property
    def may_keep_current(self) -> bool:
        """Only a password change may keep the session that made it."""
        return self in (AccountEvent.PASSWORD_CHANGED, AccountEvent.PASSWORD_RESET)


class LimitPolicy(str, Enum):
    """What ``max_sessions_per_user`` does when a user already has that many sessions."""

    EVICT_LEAST_RECENTLY_USED = "evict_lru"
    """End the least recently used session(s) to make room."""
    REFUSE = "refuse"
    """Refuse the new session with ``SessionLimitError``."""
