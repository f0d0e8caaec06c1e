"""The ``Session`` value type."""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from ._clock import as_utc, utcnow
from ._device import Device, ip_address_field, user_agent_field
from ._tokens import token_digest
from ._user_ids import UserId, coerce_user_id


@dataclass(frozen=True, slots=True, kw_only=True)
class Session:
    """One login of one user on one device.

    ``token`` is the raw bearer token. It is only known to the code that created the
    session (and to a request that presented it); stores keep ``token_digest`` alone,
    so a session read back from a store has ``token == ""``. Neither appears in ``repr``.

    ``user_agent`` and ``ip_address`` are normalised (``asgi_kit._device``): control
    characters removed and capped; a real IP address or None. ``user_id`` is opaque: a
    ``UUID``, or a string (ints become their decimal string); ``coerce_user_id`` gives the
    rule.

    A session is active until ``deadline``: the earlier of ``expires_at`` (absolute) and
    ``last_seen_at + idle_timeout`` (sliding).

    With refresh tokens (``SessionManager(access_token_lifetime=...)``), ``token`` is a
    short-lived access token, refused once ``access_expires_at`` is past, and
    ``refresh_token`` (raw, known only to its creator, like ``token``) gets the next pair:
    each refresh rotates both, moves ``refresh_generation`` on and records ``refreshed_at``,
    while the session (its id, its deadline) stays the same. Stores keep ``refresh_digest``
    and ``rotation_seal`` (the issued tokens sealed under the consumed refresh token, see
    ``asgi_kit._refresh_tokens``), never a raw token. Without them all four are unset.

    ``authenticated_at`` is when the user last proved who they are on this session: its
    login (``created_at`` unless given), moved only by a re-authentication (step-up, RFC
    9470; ``RecentAuthentication``), never by a refresh or by activity. ``device`` names
    the device for people (``describe_device``), worked out once when the session starts.

    Examples:
        >>> s = Session(user_id="6a1ef8b0-61f1-4d0c-9f7c-3f1e2d6b9a10", token="abc")
        >>> s.is_active()
        True
    """

    user_id: UserId
    """Whose session it is: a ``UUID`` or a string (``coerce_user_id``)."""
    token: str = field(default="", repr=False, compare=False)
    """The raw bearer (or access) token; ``""`` when read back from a store."""
    token_digest: str = field(default="", repr=False)
    """SHA-256 hex digest of ``token``: what stores keep and look sessions up by."""
    id: UUID = field(default_factory=uuid4)
    """The session's id, shown to users and used to revoke it (not a credential)."""
    created_at: datetime = field(default_factory=utcnow)
    """When the session started (aware UTC)."""
    expires_at: datetime | None = None
    """Absolute end of the session, or None for no absolute limit."""
    idle_timeout: timedelta | None = None
    """The session ends once unused this long (sliding), or None."""
    last_seen_at: datetime | None = None
    """Last recorded activity (written back at most once per ``touch_interval``)."""
    user_agent: str | None = None
    """The login's ``User-Agent``, cleaned of control characters and capped; or None."""
    ip_address: str | None = None
    """The login's client IP address, or None."""
    refresh_token: str = field(default="", repr=False, compare=False)
    """The raw refresh token; ``""`` without refresh tokens or when read from a store."""
    refresh_digest: str | None = field(default=None, repr=False)
    """SHA-256 hex digest of the current refresh token, or None."""
    refresh_generation: int = 0
    """How many times the tokens were rotated by a refresh."""
    access_expires_at: datetime | None = None
    """When the current access token stops working, or None without refresh tokens."""
    refreshed_at: datetime | None = None
    """When the tokens were last rotated, or None."""
    rotation_seal: str | None = field(default=None, repr=False)
    """The tokens of the last rotation, sealed under the refresh token it consumed."""
    authenticated_at: datetime | None = None
    """When the user last proved who they are on this session (login or step-up)."""
    device: Device | None = None
    """The device as people name it (``describe_device``), or None."""
    # ``deadline`` (infinity for never) and ``last_seen_at`` as POSIX timestamps: the
    # per-request expiry and touch checks (``is_active``, ``last_seen_before``) compare
    # floats, not datetimes.
    _deadline_ts: float = field(init=False, repr=False, compare=False, default=math.inf)
    _seen_ts: float = field(init=False, repr=False, compare=False, default=0.0)
    _access_ts: float = field(init=False, repr=False, compare=False, default=math.inf)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        user_id = self.user_id
        if user_id.__class__ is not UUID:
            set_(self, "user_id", coerce_user_id(user_id))
        if self.id.__class__ is not UUID:
            set_(self, "id", UUID(str(self.id)))
        if self.token:
            digest = token_digest(self.token)
            if self.token_digest and self.token_digest != digest:
                raise ValueError("token_digest does not match token")
            set_(self, "token_digest", digest)
        elif not self.token_digest:
            raise ValueError("a Session needs its token or its token_digest")
        if self.refresh_token:
            refresh_digest = token_digest(self.refresh_token)
            if self.refresh_digest and self.refresh_digest != refresh_digest:
                raise ValueError("refresh_digest does not match refresh_token")
            set_(self, "refresh_digest", refresh_digest)
        if self.access_expires_at is not None:
            set_(self, "access_expires_at", as_utc(self.access_expires_at))
        if self.refreshed_at is not None:
            set_(self, "refreshed_at", as_utc(self.refreshed_at))
        created = as_utc(self.created_at)
        seen = created if self.last_seen_at is None else as_utc(self.last_seen_at)
        expires = None if self.expires_at is None else as_utc(self.expires_at)
        set_(self, "created_at", created)
        authenticated = self.authenticated_at
        set_(self, "authenticated_at", created if authenticated is None else as_utc(authenticated))
        if self.device is not None and not isinstance(self.device, Device):
            raise TypeError(f"device must be a Device or None, got {type(self.device).__name__}")
        set_(self, "last_seen_at", seen)
        set_(self, "expires_at", expires)
        if self.idle_timeout is not None and self.idle_timeout <= _ZERO:
            raise ValueError("idle_timeout must be positive")
        set_(self, "user_agent", user_agent_field(self.user_agent))
        set_(self, "ip_address", ip_address_field(self.ip_address))
        _derive(self, expires, seen, self.idle_timeout)

    @classmethod
    def from_store(
        cls,
        *,
        id: UUID,
        user_id: UserId,
        token_digest: str,
        created_at: datetime,
        expires_at: datetime | None,
        idle_timeout: timedelta | None,
        last_seen_at: datetime,
        user_agent: str | None,
        ip_address: str | None,
        refresh_digest: str | None = None,
        refresh_generation: int = 0,
        access_expires_at: datetime | None = None,
        refreshed_at: datetime | None = None,
        rotation_seal: str | None = None,
        authenticated_at: datetime | None = None,
        device: Device | None = None,
    ) -> Session:
        """Rebuild a session a store wrote, for the stores' read paths.

        Every field but the token, as a constructed ``Session`` holds it: UUIDs, aware
        datetimes, a positive ``idle_timeout`` or None. Those are not checked again (a
        store reads back what it wrote), which makes this about twice as fast as
        ``Session(...)``: stores build one for every row they read.
        """
        session = _new(cls)
        set_ = object.__setattr__
        expires = None if expires_at is None else as_utc(expires_at)
        seen = as_utc(last_seen_at)
        set_(session, "id", id)
        set_(session, "user_id", user_id)
        set_(session, "token", "")
        set_(session, "token_digest", token_digest)
        set_(session, "created_at", as_utc(created_at))
        set_(session, "expires_at", expires)
        set_(session, "idle_timeout", idle_timeout)
        set_(session, "last_seen_at", seen)
        set_(session, "user_agent", user_agent)
        set_(session, "ip_address", ip_address)
        set_(session, "refresh_token", "")
        set_(session, "refresh_digest", refresh_digest)
        set_(session, "refresh_generation", refresh_generation)
        access = None if access_expires_at is None else as_utc(access_expires_at)
        set_(session, "access_expires_at", access)
        set_(session, "refreshed_at", None if refreshed_at is None else as_utc(refreshed_at))
        set_(session, "rotation_seal", rotation_seal)
        # None: stored before sessions recorded it, when the login was the last proof.
        authenticated = session.created_at if authenticated_at is None else as_utc(authenticated_at)
        set_(session, "authenticated_at", authenticated)
        set_(session, "device", device)
        _derive(session, expires, seen, idle_timeout)
        return session

    @property
    def deadline(self) -> datetime | None:
        """The moment this session stops being active, or None if it never does."""
        return _deadline(self.expires_at, self.seen_at, self.idle_timeout)

    @property
    def authenticated(self) -> datetime:
        """``authenticated_at``, typed as always set (``__post_init__`` fills it in)."""
        assert self.authenticated_at is not None
        return self.authenticated_at

    @property
    def seen_at(self) -> datetime:
        """``last_seen_at``, typed as always set (``__post_init__`` fills it in)."""
        assert self.last_seen_at is not None
        return self.last_seen_at

    def is_active(self, now: datetime | float | None = None) -> bool:
        """True while ``now`` (default: the current time) is before ``deadline``.

        ``now`` is an aware datetime or a POSIX timestamp (``time.time()``).
        """
        if now is None:
            now = time.time()
        elif isinstance(now, datetime):
            now = now.timestamp()
        return now < self._deadline_ts

    def last_seen_before(self, moment: float) -> bool:
        """True when the session was last seen before ``moment`` (a POSIX timestamp)."""
        return self._seen_ts < moment

    def access_token_expired(self, now: float) -> bool:
        """True when the access token has a lifetime and ``now`` (a POSIX timestamp) is past it."""
        return now >= self._access_ts

    def replace(self, **changes: Any) -> Session:
        """Return a copy with ``changes`` applied (the session is immutable)."""
        return dataclasses.replace(self, **changes)


_ZERO = timedelta(0)
_new = object.__new__


def _derive(
    session: Session, expires_at: datetime | None, seen_at: datetime, idle: timedelta | None
) -> None:
    """Set the fields ``session`` computes from the others, which these are (normalised)."""
    deadline = _deadline(expires_at, seen_at, idle)
    deadline_ts = math.inf if deadline is None else deadline.timestamp()
    object.__setattr__(session, "_deadline_ts", deadline_ts)
    object.__setattr__(session, "_seen_ts", seen_at.timestamp())
    access = session.access_expires_at
    object.__setattr__(session, "_access_ts", math.inf if access is None else access.timestamp())


def _deadline(
    expires_at: datetime | None, seen_at: datetime, idle_timeout: timedelta | None
) -> datetime | None:
    if idle_timeout is None:
        return expires_at
    idle_end = seen_at + idle_timeout
    return idle_end if expires_at is None or idle_end < expires_at else expires_at
