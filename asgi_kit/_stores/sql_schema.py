"""The sessions table of ``SQLAlchemySessionDatabase`` and how a session maps to a row."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Uuid,
)

from .._clock import from_microseconds, to_microseconds
from .._device import MAX_DEVICE_FIELD, stored_device
from .._models import Session
from .._user_ids import MAX_USER_ID_LENGTH, stored_user_id

#: The columns every query selects, in this order (``session_from_row`` reads them so);
#: ``deadline`` is only written, for ``purge_expired`` and its index.
COLUMNS = (
    "id",
    "token_digest",
    "user_id",
    "created_at",
    "expires_at",
    "idle_timeout_us",
    "last_seen_at",
    "user_agent",
    "ip_address",
    "refresh_digest",
    "refresh_generation",
    "access_expires_at",
    "refreshed_at",
    "rotation_seal",
    "authenticated_at",
    "device_browser",
    "device_os",
    "device_kind",
    "device_label",
)
#: The columns a rotation (``SQLAlchemySessionDatabase.rotate``) writes.
ROTATED = (
    "token_digest",
    "refresh_digest",
    "refresh_generation",
    "access_expires_at",
    "refreshed_at",
    "rotation_seal",
    "last_seen_at",
    "deadline",
)
_UTC_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_NAIVE_EPOCH = datetime(1970, 1, 1)


def session_table(metadata: MetaData, name: str = "asgi_kit_sessions") -> Table:
    """Define the sessions table in ``metadata`` (plug it into your own migrations).

    One row per session, keyed by id, with a unique index on the token digest (the raw
    token is never stored) and indexes on the user id and on ``deadline``, the moment the
    session stops being active (kept up to date on every write). ``user_id`` is text,
    ``str()`` of the id (a UUID in its canonical form), so every kind of id reads back
    exactly; ``idle_timeout_us`` is the idle timeout in whole microseconds, likewise.
    The refresh columns (``refresh_digest`` to ``rotation_seal``) are NULL for sessions
    without refresh tokens (``refresh_generation`` NULL reads as 0). ``authenticated_at``
    NULL reads as ``created_at``; the ``device_*`` columns are ``Session.device`` (all NULL
    for none). docs/upgrading.md adds the columns to a table made before they existed.
    """
    return Table(
        name,
        metadata,
        Column("id", Uuid, primary_key=True),
        Column("token_digest", String(64), nullable=False),
        Column("user_id", String(MAX_USER_ID_LENGTH), nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("expires_at", DateTime(timezone=True)),
        Column("idle_timeout_us", BigInteger),
        Column("last_seen_at", DateTime(timezone=True), nullable=False),
        Column("deadline", DateTime(timezone=True)),
        Column("user_agent", String(512)),
        Column("ip_address", String(45)),
        Column("refresh_digest", String(64)),
        Column("refresh_generation", Integer),
        Column("access_expires_at", DateTime(timezone=True)),
        Column("refreshed_at", DateTime(timezone=True)),
        Column("rotation_seal", String(255)),
        Column("authenticated_at", DateTime(timezone=True)),
        Column("device_browser", String(MAX_DEVICE_FIELD)),
        Column("device_os", String(MAX_DEVICE_FIELD)),
        Column("device_kind", String(16)),
        Column("device_label", String(MAX_DEVICE_FIELD)),
        Index(f"ix_{name}_token_digest", "token_digest", unique=True),
        Index(f"ix_{name}_user_id", "user_id"),
        Index(f"ix_{name}_deadline", "deadline"),
    )


def session_row(session: Session) -> dict[str, Any]:
    """The row that stores ``session`` (column name to value)."""
    device = session.device
    return {
        "id": session.id,
        "token_digest": session.token_digest,
        "user_id": str(session.user_id),
        "created_at": session.created_at,
        "expires_at": session.expires_at,
        "idle_timeout_us": to_microseconds(session.idle_timeout),
        "last_seen_at": session.seen_at,
        "deadline": session.deadline,
        "user_agent": session.user_agent,
        "ip_address": session.ip_address,
        "refresh_digest": session.refresh_digest,
        "refresh_generation": session.refresh_generation if session.refresh_digest else None,
        "access_expires_at": session.access_expires_at,
        "refreshed_at": session.refreshed_at,
        "rotation_seal": session.rotation_seal,
        "authenticated_at": session.authenticated_at,
        "device_browser": None if device is None else device.browser,
        "device_os": None if device is None else device.os,
        "device_kind": None if device is None else device.kind,
        "device_label": None if device is None else device.label,
    }


def session_from_row(row: Sequence[Any]) -> Session:
    """The session a row of ``COLUMNS`` holds."""
    id_, digest, user_id, created, expires, idle_us, seen, agent, ip, *rest = row
    refresh_digest, generation, access_expires, refreshed, seal, authenticated, *device = rest
    return Session.from_store(
        id=id_,
        user_id=stored_user_id(user_id),
        token_digest=digest,
        created_at=_utc(created),
        expires_at=None if expires is None else _utc(expires),
        idle_timeout=from_microseconds(idle_us),
        last_seen_at=_utc(seen),
        user_agent=agent,
        ip_address=ip,
        refresh_digest=refresh_digest,
        refresh_generation=generation or 0,
        access_expires_at=None if access_expires is None else _utc(access_expires),
        refreshed_at=None if refreshed is None else _utc(refreshed),
        rotation_seal=seal,
        authenticated_at=None if authenticated is None else _utc(authenticated),
        device=stored_device(*device),
    )


def active_session(row: Sequence[Any] | None) -> Session | None:
    """The session ``row`` holds if it is still active, else None."""
    session = None if row is None else session_from_row(row)
    return session if session is not None and session.is_active() else None


def active_sessions(rows: Sequence[Sequence[Any]]) -> list[Session]:
    """The sessions of ``rows`` that are still active, in their order."""
    now = time.time()
    return [s for s in map(session_from_row, rows) if s.is_active(now)]


def _utc(value: datetime) -> datetime:
    # SQLite keeps no time zone; everything written was UTC. The arithmetic is
    # value.replace(tzinfo=timezone.utc) at a tenth of the cost (on every request).
    return _UTC_EPOCH + (value - _NAIVE_EPOCH) if value.tzinfo is None else value
