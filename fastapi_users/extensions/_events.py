"""Why sessions end and which account events end them."""

from __future__ import annotations

from enum import Enum

from asgi_kit import AsgiKitError


class UnknownEndReasonError(AsgiKitError, ValueError):
    """A reason for ending sessions that is not one of ``EndReason``'s values was given."""


class EndReason(str, Enum):
    """Why a session ended, as passed to ``SessionManager.on_after_end``."""

    LOGOUT = "logout"
    REVOKED_BY_USER = "revoked_by_user"
    REVOKED_BY_ADMIN = "revoked_by_admin"
    EXPIRED = "expired"
    EVICTED = "evicted"
    ACCOUNT_EVENT = "account_event"
    #: A refresh token that was already rotated out came back after the reuse interval:
    #: two parties held it, so the whole session ended (RFC 9700 section 4.14.2).
    TOKEN_REUSED = "token_reused"  # noqa: S105 - a reason, not a secret

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
    PASSWORD_RESET = "password_reset"  # noqa: S105 - an event name
    ACCOUNT_DISABLED = "account_disabled"
    ACCOUNT_DELETED = "account_deleted"

    @property
    def may_keep_current(self) -> bool:
        """Only a password change may keep the session that made it."""
        return self in (AccountEvent.PASSWORD_CHANGED, AccountEvent.PASSWORD_RESET)


class LimitPolicy(str, Enum):
    """What ``max_sessions_per_user`` does when a user already has that many sessions."""

    #: End the least recently used session(s) to make room.
    EVICT_LEAST_RECENTLY_USED = "evict_lru"
    #: Refuse the new session with ``SessionLimitError``.
    REFUSE = "refuse"
