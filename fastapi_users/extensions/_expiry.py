"""When sessions expire: the deadline of a new session, and purging expired ones."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import TypeVar
from uuid import uuid4

from asgi_kit import (
    ConfigurationError,
    Device,
    Session,
    SessionDatabase,
    TokenRefresher,
    UserId,
    as_interval,
    as_utc,
    coerce_user_id,
    describe_device,
    is_b64token,
    purge_periodically,
    utcnow,
)

__all__ = ["new_session", "positive_interval", "purge_expired", "purge_periodically"]

logger = logging.getLogger("asgi_kit.sessions")
S = TypeVar("S", bound=Session)


def positive_interval(value: timedelta | float | None, name: str) -> timedelta | None:
    """Validate an optional duration setting (seconds or a timedelta) that must be positive."""
    if value is None:
        return None
    interval = as_interval(value, name)
    if not interval:
        raise ConfigurationError(f"{name} must be positive, got {value!r}")
    return interval


def new_session(
    user_id: UserId | int,
    token: str,
    *,
    expires_at: datetime | None,
    lifetime: timedelta | None,
    idle_timeout: timedelta | None,
    user_agent: str | None,
    ip_address: str | None,
    device: Device | None = None,
    refresher: TokenRefresher | None = None,
    cls: type[S] = Session,  # type: ignore[assignment]
) -> S:
    """A new ``cls`` (``Session`` or a subclass) starting now; ``lifetime`` caps its expiry.

    With a ``refresher``, ``token`` is an access token with its lifetime, and the session
    gets a refresh token. ``device`` is worked out from ``user_agent`` unless given. Bad
    input raises ``ValueError``.

    An ``expires_at`` at or before now is kept: the session has ended before it starts.
    """
    if not is_b64token(token):
        raise ValueError("token must be a non-empty RFC 6750 b64token of at most 2048 chars")
    now = utcnow()
    if expires_at is not None:
        expires_at = as_utc(expires_at)
    if lifetime is not None:
        expires_at = now + lifetime if expires_at is None else min(expires_at, now + lifetime)
    session_id = uuid4()
    refresh = {} if refresher is None else refresher.new_tokens(session_id, now)
    return cls(
        id=session_id,
        user_id=coerce_user_id(user_id),
        token=token,
        **refresh,
        created_at=now,
        expires_at=expires_at,
        idle_timeout=idle_timeout,
        user_agent=user_agent,
        ip_address=ip_address,
        authenticated_at=now,
        device=device if device is not None or not user_agent else describe_device(user_agent),
    )


async def purge_expired(
    session_db: SessionDatabase,
    now: datetime | None,
    batch_size: int,
    report: Callable[[list[Session]], Awaitable[None]],
) -> int:
    """Pop expired sessions ``batch_size`` at a time and ``report`` each batch; return how many.

    Each batch is gone from the store before it is reported. ``now`` stays fixed, so
    sessions expiring meanwhile cannot keep the loop going. The count is logged as one line.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an int of at least 1, got {batch_size!r}")
    now = utcnow() if now is None else as_utc(now)
    count = 0
    while True:
        batch = await session_db.pop_expired(now, limit=batch_size)
        count += len(batch)
        await report(batch)
        if len(batch) < batch_size:
            break
    fields = {"reason": "expired", "count": count}
    logger.info("expired sessions purged count=%d reason=expired", count, extra=fields)
    return count
