"""The one clock asgi-kit reads: aware UTC datetimes."""

from __future__ import annotations

from datetime import datetime, timezone


def utcnow() -> datetime:
    """Return the current time as an aware UTC datetime."""
    return datetime.now(timezone.utc)


def as_utc(value: datetime) -> datetime:
    """Return ``value`` in UTC; a naive datetime is rejected, never guessed."""
    tz = value.tzinfo
    if tz is timezone.utc:  # the common case, and astimezone() is not free
        return value
    if tz is None:
        raise ValueError(f"datetime {value.isoformat()} has no time zone; use an aware datetime")
    return value.astimezone(timezone.utc)
