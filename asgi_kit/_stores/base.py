"""``SessionDatabase``: the one interface every session store implements."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol, runtime_checkable
from uuid import UUID

from .._models import Session
from .._user_ids import UserId


@runtime_checkable
class SessionDatabase(Protocol):
    """An async store of sessions, keyed by the SHA-256 digest of their token.

    Every method is safe to call concurrently from many tasks. No method ever returns
    a session that is no longer active (``Session.is_active()`` is false), and no store
    needs, or keeps, the raw token. Server failures raise ``StoreUnavailableError``.

    ``pop_expired`` hands back the expired sessions it deletes (deadline at or before
    ``now``), earliest deadline first, so each expiry can be reported: each session goes
    to exactly one caller, even when several processes pop at once, and a batch shorter
    than ``limit`` means nothing more is due (or another caller is taking it).
    ``purge_expired`` is the bulk delete that only counts.

    A minimal custom store:

        class MyStore:
            async def create(self, session: Session) -> None: ...
            async def get_by_token_digest(self, digest: str) -> Session | None: ...
            async def get(self, session_id: UUID) -> Session | None: ...
            async def list_for_user(self, user_id: UserId) -> list[Session]: ...
            async def touch(
                self, session: Session, last_seen_at: datetime
            ) -> Session | None: ...
            async def delete(self, session_id: UUID) -> Session | None: ...
            async def delete_for_user(
                self, user_id: UserId, *, keep: Sequence[UUID] = ()
            ) -> list[Session]: ...
            async def purge_expired(self, now: datetime | None = None) -> int: ...
            async def pop_expired(
                self, now: datetime | None = None, *, limit: int = 500
            ) -> list[Session]: ...
    """

    async def create(self, session: Session) -> None:
        """Store a new session; raise ``DuplicateSessionError`` if its id or token is taken."""
        ...

    async def get_by_token_digest(self, digest: str) -> Session | None:
        """Return the active session whose token has this SHA-256 hex digest, or None."""
        ...

    async def get(self, session_id: UUID) -> Session | None:
        """Return the active session with this id, or None."""
        ...

    async def list_for_user(self, user_id: UserId) -> list[Session]:
        """Return the user's active sessions, newest first."""
        ...

    async def touch(self, session: Session, last_seen_at: datetime) -> Session | None:
        """Record activity on ``session`` (nothing happens if it no longer exists).

        ``session`` is the stored session as last read, so a store can recompute its
        deadline (and TTL) without reading it again. Return the updated session if the
        store built one (so the caller need not build it again), else None.
        """
        ...

    async def delete(self, session_id: UUID) -> Session | None:
        """Delete one session; return it if it existed and was active, else None."""
        ...

    async def delete_for_user(self, user_id: UserId, *, keep: Sequence[UUID] = ()) -> list[Session]:
        """Delete all of a user's sessions except those in ``keep``; return the active ones."""
        ...

    async def purge_expired(self, now: datetime | None = None) -> int:
        """Delete sessions that stopped being active before ``now``; return how many."""
        ...

    async def pop_expired(self, now: datetime | None = None, *, limit: int = 500) -> list[Session]:
        """Delete and return up to ``limit`` sessions due by ``now`` (default: the current time)."""
        ...


@runtime_checkable
class RotatingSessionDatabase(SessionDatabase, Protocol):
    """A ``SessionDatabase`` that can rotate a session's tokens, as refresh tokens need.

    Every store of asgi-kit is one. A custom store adds ``rotate``, atomic across every
    process sharing the store (a compare-and-set on the session's ``refresh_digest``):

        async def rotate(self, session: Session, rotated: Session) -> bool: ...
    """

    async def rotate(self, session: Session, rotated: Session) -> bool:
        """Replace ``session`` by ``rotated`` (same id, next tokens), atomically.

        Only if the stored session still has ``session.refresh_digest`` (no rotation since
        it was read) and exists; return whether it did. ``rotated`` is written whole: its
        access token digest, refresh fields, ``last_seen_at`` and deadline.
        """
        ...


@runtime_checkable
class ReauthenticatingSessionDatabase(SessionDatabase, Protocol):
    """A ``SessionDatabase`` that records re-authentications, as step-up (RFC 9470) needs.

    Every store of asgi-kit is one. A custom store adds ``record_authentication``, which
    writes ``authenticated_at`` alone (a concurrent touch or rotation must not undo it):

        async def record_authentication(
            self, session_id: UUID, at: datetime
        ) -> Session | None: ...
    """

    async def record_authentication(self, session_id: UUID, at: datetime) -> Session | None:
        """Set ``authenticated_at`` of the active session ``session_id`` to ``at``.

        Return the session so updated, or None (and change nothing) when no active
        session has that id.
        """
        ...
