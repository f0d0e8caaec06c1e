"""When sessions expire: the deadline of a new session, and purging expired ones."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable
from uuid import UUID

from asgi_kit import ConfigurationError, Session, SessionDatabase, coerce_user_id, is_b64token
from asgi_kit._clock import as_utc, utcnow
from asgi_kit._resolver import as_interval

logger = logging.getLogger("asgi_kit.sessions")

#: Longest user agent kept with a session; the rest is cut off.
MAX_USER_AGENT = 512


def positive_interval(value: timedelta | float | None, name: str) -> timedelta | None:
    """Validate an optional duration setting (seconds or a timedelta) that must be positive."""
    if value is None:
        return None
    interval = as_interval(value, name)
    if not interval:
        raise ConfigurationError(f"{name} must be positive, got {value!r}")
    return interval


def new_session(
    user_id: UUID | str,
    token: str,
    *,
    expires_at: datetime | None,
    lifetime: timedelta | None,
    idle_timeout: timedelta | None,
    user_agent: str | None,
    ip_address: str | None,
) -> Session:
    """A new session starting now; ``lifetime`` caps its ``expires_at``. Bad input: ValueError."""
    if not is_b64token(token):
        raise ValueError("token must be a non-empty RFC 6750 b64token of at most 2048 chars")
    now = utcnow()
    if expires_at is not None:
        expires_at = as_utc(expires_at)
    if lifetime is not None:
        expires_at = now + lifetime if expires_at is None else min(expires_at, now + lifetime)
    if expires_at is not None and expires_at <= now:
        raise ValueError("expires_at must be in the future")
    return Session(
        user_id=coerce_user_id(user_id),
        token=token,
        created_at=now,
        expires_at=expires_at,
        idle_timeout=idle_timeout,
        user_agent=user_agent[:MAX_USER_AGENT] if user_agent else None,
        ip_address=ip_address,
    )


@runtime_checkable
class ExpiringSessionDatabase(Protocol):
    """A store that hands back the expired sessions it purges, so hooks hear of each one.

    ``SessionDatabase.purge_expired`` returns only a count. A store that also has
    ``pop_expired`` gets ``on_after_end(session, EndReason.EXPIRED)`` called for every
    session ``SessionManager.purge_expired()`` removes. Each call deletes and returns at
    most ``limit`` sessions, and each expired session is returned by one call only, even
    with several instances purging at once. In SQL that is one statement::

        DELETE FROM sessions WHERE id IN (
            SELECT id FROM sessions WHERE deadline <= :now ORDER BY deadline LIMIT :limit
        ) RETURNING *
    """

    async def pop_expired(self, now: datetime, *, limit: int) -> list[Session]:
        """Delete up to ``limit`` sessions that stopped being active before ``now``; return them."""
        ...


async def purge_expired(
    session_db: SessionDatabase,
    now: datetime | None,
    batch_size: int,
    report: Callable[[list[Session]], Awaitable[None]],
) -> int:
    """Purge expired sessions, ``report`` them if the store can return them; return how many.

    The count is logged as one line, whether or not the sessions could be reported.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an int of at least 1, got {batch_size!r}")
    now = utcnow() if now is None else as_utc(now)
    if isinstance(session_db, ExpiringSessionDatabase):
        count, reported = await _pop_in_batches(session_db, now, batch_size, report), "each"
    else:
        count, reported = await session_db.purge_expired(now), "count_only"
    logger.info(
        "expired sessions purged count=%d reason=expired reported=%s",
        count,
        reported,
        extra={"reason": "expired", "count": count, "reported": reported},
    )
    return count


async def _pop_in_batches(
    session_db: ExpiringSessionDatabase,
    now: datetime,
    batch_size: int,
    report: Callable[[list[Session]], Awaitable[None]],
) -> int:
    count = 0
    while True:  # ``now`` stays fixed, so sessions expiring meanwhile cannot keep it going
        batch = await session_db.pop_expired(now, limit=batch_size)
        count += len(batch)
        await report(batch)  # the batch is gone from the store before its hooks run
        if len(batch) < batch_size:
            return count
