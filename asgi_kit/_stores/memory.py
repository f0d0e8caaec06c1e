"""``InMemorySessionDatabase``: a process-local store, for tests, demos and single workers."""

from __future__ import annotations

import heapq
import threading
from collections.abc import MutableMapping, Sequence
from datetime import datetime
from uuid import UUID

from .._clock import as_utc, utcnow
from .._errors import DuplicateSessionError
from .._models import Session
from .._user_ids import UserId


class InMemorySessionDatabase:
    """Sessions in a mapping keyed by token digest, with indexes by id and by user.

    Look-up by token or id is O(1); listing a user's k sessions is O(k). Every change
    holds one lock, so the store stays consistent under asyncio tasks and threads alike.
    A heap of deadlines makes ``pop_expired`` and ``purge_expired`` O(log n) per session
    removed, without a scan of all sessions.

    ``mapping`` is the backing map (digest -> Session), a fresh dict by default. Passing
    your own ``dict`` lets a test look inside; sessions already in it are indexed, and
    from then on it belongs to the store: change it only through the store.
    """

    def __init__(self, mapping: MutableMapping[str, Session] | None = None) -> None:
        self._sessions: MutableMapping[str, Session] = {} if mapping is None else mapping
        self._by_id: dict[UUID, Session] = {}
        self._by_user: dict[UserId, dict[UUID, None]] = {}
        # (deadline, id) of every session with a deadline. Entries are never removed in
        # place: one whose session is gone, or was touched since, is skipped when it
        # comes up, and the heap is rebuilt when such entries outnumber the live ones.
        self._deadlines: list[tuple[datetime, UUID]] = []
        self._lock = threading.Lock()
        for digest, session in list(self._sessions.items()):
            if not isinstance(session, Session) or session.token_digest != digest:
                raise TypeError(f"mapping must map token digests to their Session, got {digest!r}")
            self._index(session)

    def __len__(self) -> int:
        """Number of stored sessions, expired ones not yet purged included."""
        return len(self._by_id)

    async def aclose(self) -> None:
        """Nothing to close (the sessions stay): so that any store fits an app's shutdown."""

    async def create(self, session: Session) -> None:
        """Store a new session; raise ``DuplicateSessionError`` if its id or token is taken."""
        with self._lock:
            if session.id in self._by_id or session.token_digest in self._sessions:
                raise DuplicateSessionError("a session with this id or token already exists")
            session = _without_token(session)
            self._sessions[session.token_digest] = session
            self._index(session)

    async def get_by_token_digest(self, digest: str) -> Session | None:
        """Return the active session whose token has this digest, or None."""
        session = self._sessions.get(digest)
        return session if session is not None and session.is_active() else None

    async def get(self, session_id: UUID) -> Session | None:
        """Return the active session with this id, or None."""
        return self._active(self._by_id.get(session_id))

    async def list_for_user(self, user_id: UserId) -> list[Session]:
        """Return the user's active sessions, newest first."""
        now = utcnow()
        with self._lock:
            found = [self._by_id[i] for i in self._by_user.get(user_id, ())]
        found = [s for s in found if s.is_active(now)]
        found.sort(key=lambda s: s.created_at, reverse=True)
        return found

    async def touch(self, session: Session, last_seen_at: datetime) -> Session | None:
        """Record activity on ``session``; return it updated (None if it no longer exists)."""
        with self._lock:
            stored = self._by_id.get(session.id)
            if stored is None:
                return None
            updated = stored.replace(last_seen_at=last_seen_at)
            self._sessions[stored.token_digest] = self._by_id[stored.id] = updated
            self._schedule(updated)
        return updated

    async def rotate(self, session: Session, rotated: Session) -> bool:
        """Replace ``session`` by ``rotated`` (its next tokens) unless it rotated since read."""
        with self._lock:
            stored = self._by_id.get(session.id)
            if stored is None or stored.refresh_digest != session.refresh_digest:
                return False
            if rotated.token_digest in self._sessions:
                raise DuplicateSessionError("a session with this token already exists")
            del self._sessions[stored.token_digest]
            # A re-authentication since ``session`` was read stands: a rotation never moves it.
            rotated = _without_token(rotated.replace(authenticated_at=stored.authenticated_at))
            self._sessions[rotated.token_digest] = self._by_id[rotated.id] = rotated
            self._schedule(rotated)
        return True

    async def record_authentication(self, session_id: UUID, at: datetime) -> Session | None:
        """Set the active session's ``authenticated_at`` to ``at``; return it (None if none)."""
        with self._lock:
            stored = self._active(self._by_id.get(session_id))
            if stored is None:
                return None
            updated = stored.replace(authenticated_at=at)
            self._sessions[stored.token_digest] = self._by_id[stored.id] = updated
        return updated

    async def delete(self, session_id: UUID) -> Session | None:
        """Delete one session; return it if it existed and was active, else None."""
        with self._lock:
            session = self._by_id.get(session_id)
            if session is not None:
                self._remove(session)
        return self._active(session)

    async def delete_for_user(self, user_id: UserId, *, keep: Sequence[UUID] = ()) -> list[Session]:
        """Delete all of a user's sessions except those in ``keep``; return the active ones."""
        now = utcnow()
        with self._lock:
            doomed = [self._by_id[i] for i in self._by_user.get(user_id, ()) if i not in keep]
            for session in doomed:
                self._remove(session)
        return [s for s in doomed if s.is_active(now)]

    async def purge_expired(self, now: datetime | None = None) -> int:
        """Delete sessions that stopped being active before ``now``; return how many."""
        return len(self._pop_due(now, None))

    async def pop_expired(self, now: datetime | None = None, *, limit: int = 500) -> list[Session]:
        """Delete and return up to ``limit`` sessions due by ``now``, earliest deadline first."""
        return self._pop_due(now, limit)

    def _pop_due(self, now: datetime | None, limit: int | None) -> list[Session]:
        now = utcnow() if now is None else as_utc(now)
        heap = self._deadlines
        popped: list[Session] = []
        with self._lock:
            while heap and heap[0][0] <= now and (limit is None or len(popped) < limit):
                deadline, session_id = heapq.heappop(heap)
                session = self._by_id.get(session_id)
                if session is not None and session.deadline == deadline:
                    self._remove(session)
                    popped.append(session)
        return popped

    def _active(self, session: Session | None) -> Session | None:
        return session if session is not None and session.is_active() else None

    def _index(self, session: Session) -> None:
        self._by_id[session.id] = session
        self._by_user.setdefault(session.user_id, {})[session.id] = None
        self._schedule(session)

    def _schedule(self, session: Session) -> None:
        # Caller holds the lock (or is __init__).
        deadline = session.deadline
        if deadline is None:
            return
        heap = self._deadlines
        heapq.heappush(heap, (deadline, session.id))
        if len(heap) > 2 * len(self._by_id) + 64:
            heap[:] = [(d, s.id) for s in self._by_id.values() if (d := s.deadline) is not None]
            heapq.heapify(heap)

    def _remove(self, session: Session) -> None:
        # Caller holds the lock.
        del self._sessions[session.token_digest]
        del self._by_id[session.id]
        owned = self._by_user[session.user_id]
        del owned[session.id]
        if not owned:
            del self._by_user[session.user_id]


def _without_token(session: Session) -> Session:
    """A plain ``Session`` equal to ``session``, without the raw token (never kept)."""
    return Session.from_store(
        id=session.id,
        user_id=session.user_id,
        token_digest=session.token_digest,
        created_at=session.created_at,
        expires_at=session.expires_at,
        idle_timeout=session.idle_timeout,
        last_seen_at=session.seen_at,
        user_agent=session.user_agent,
        ip_address=session.ip_address,
        refresh_digest=session.refresh_digest,
        refresh_generation=session.refresh_generation,
        access_expires_at=session.access_expires_at,
        refreshed_at=session.refreshed_at,
        rotation_seal=session.rotation_seal,
        authenticated_at=session.authenticated_at,
        device=session.device,
    )
