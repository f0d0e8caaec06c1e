"""``ReauthenticationLimit``: how many wrong passwords a session may send, per window.

A stolen session must not become a way to guess its user's password: after ``attempts``
wrong re-authentications within ``window`` seconds, the session gets 429 (and no password
check at all) until the oldest of them is ``window`` old. Counted per session, in this
process (a ``cachetools.TTLCache``, bounded): each instance of an app counts its own.
"""

from __future__ import annotations

import threading
import time
from uuid import UUID

from cachetools import TTLCache

from asgi_kit import AsgiKitError


class ReauthenticationFailedError(AsgiKitError, ValueError):
    """The password (or second factor) of a re-authentication was wrong; nothing changed."""


class ReauthenticationLimitError(AsgiKitError):
    """Too many wrong re-authentications of this session lately: ``retry_after`` seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many wrong re-authentications: retry in {retry_after} s")
        self.retry_after = retry_after
        """Seconds until the session may try again."""


class ReauthenticationLimit:
    """Wrong re-authentications per session: at most ``attempts`` per ``window`` seconds."""

    def __init__(self, attempts: int = 5, window: float = 900, *, sessions: int = 100_000):
        self.attempts = attempts
        """Wrong re-authentications allowed per session within ``window``."""
        self.window = window
        """The window, in seconds."""
        # Session id -> moments of its recent failures, oldest first; an entry is dropped
        # ``window`` after its last write, when all its moments are stale anyway.
        self._failures: TTLCache[UUID, list[float]] = TTLCache(sessions, window)
        self._lock = threading.Lock()

    def attempt(self, session_id: UUID, now: float | None = None) -> None:
        """Count one re-authentication of ``session_id`` as wrong until ``forget`` says
        otherwise; raise ``ReauthenticationLimitError`` (counting nothing) past the limit.

        Counted before the check runs, in one step with the limit's own check: concurrent
        attempts (a burst of guesses sent at once) are each counted, never all let through
        while the first is still being checked.
        """
        now = time.monotonic() if now is None else now
        with self._lock:
            recent = self._recent(session_id, now)
            if len(recent) >= self.attempts:
                wait = recent[-self.attempts] + self.window - now
                raise ReauthenticationLimitError(max(1, int(wait + 0.999)))
            self._failures[session_id] = [*recent, now]

    def forget(self, session_id: UUID) -> None:
        """Clear ``session_id``'s count (after a right answer)."""
        with self._lock:
            self._failures.pop(session_id, None)

    def _recent(self, session_id: UUID, now: float) -> list[float]:
        return [t for t in self._failures.get(session_id, ()) if t > now - self.window]
