"""The one clock asgi-kit reads (aware UTC datetimes), and durations as stores keep them."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from ._errors import ConfigurationError

_MICROSECOND = timedelta(microseconds=1)
#: Durations already built, by length: idle timeouts are a few app settings.
_DURATIONS: dict[int, timedelta] = {}


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


def to_microseconds(duration: timedelta | None) -> int | None:
    """``duration`` in whole microseconds (as stores keep it), None for None."""
    return None if duration is None else duration // _MICROSECOND


def from_microseconds(microseconds: int | None) -> timedelta | None:
    """The ``timedelta`` of a duration ``to_microseconds`` gave, None for None.

    Stores call this for every row they read, and building a timedelta is not free, so
    the first 256 distinct lengths are kept (timedeltas are immutable).
    """
    if microseconds is None:
        return None
    duration = _DURATIONS.get(microseconds)
    if duration is None:
        duration = timedelta(microseconds=microseconds)
        if len(_DURATIONS) < 256:
            _DURATIONS[microseconds] = duration
    return duration


def as_interval(value: timedelta | float, name: str) -> timedelta:
    """Return the setting ``name`` (seconds or a timedelta) as a non-negative timedelta."""
    interval = value if isinstance(value, timedelta) else timedelta(seconds=value)
    if interval < timedelta(0):
        raise ConfigurationError(f"{name} must not be negative, got {value!r}")
    return interval


def duration_setting(value: timedelta | float, name: str, *, zero: bool = False) -> timedelta:
    """The setting ``name``: a finite, positive number of seconds or timedelta (or 0 if
    ``zero``). Anything else (NaN, infinity, a negative, text, a bool, None) raises
    ``ConfigurationError`` naming the setting: at start-up, never at the first request.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, timedelta)):
        raise ConfigurationError(f"{name} must be seconds or a timedelta, got {value!r}")
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if seconds != seconds or seconds in (float("inf"), float("-inf")):
        raise ConfigurationError(f"{name} must be a finite number of seconds, got {value!r}")
    if seconds < 0 or (seconds == 0 and not zero):
        least = "must not be negative" if zero else "must be positive"
        raise ConfigurationError(f"{name} {least}, got {value!r}")
    return timedelta(seconds=seconds)
