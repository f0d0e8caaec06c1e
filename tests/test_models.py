"""The Session value type and user-id coercion."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from asgi_kit import InvalidUserIdError, Session, coerce_user_id, token_digest, utcnow

USER = uuid.uuid4()


def test_uuid_strings_are_parsed() -> None:
    assert coerce_user_id(str(USER)) == USER
    assert coerce_user_id(USER.hex) == USER
    assert coerce_user_id(USER) is USER
    assert Session(user_id=str(USER), token="t").user_id == USER  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [42, "42", "alice", "", None, 4.2, b"x" * 16])
def test_non_uuid_user_ids_raise_a_typed_error(bad: object) -> None:
    with pytest.raises(InvalidUserIdError, match="UUID"):
        coerce_user_id(bad)
    with pytest.raises(ValueError, match="UUID"):  # it is a ValueError too
        Session(user_id=bad, token="t")  # type: ignore[arg-type]


def test_defaults_and_digest() -> None:
    before = utcnow()
    s = Session(user_id=USER, token="secret-token")
    assert s.id.version == 4
    assert before <= s.created_at <= utcnow()
    assert s.created_at.tzinfo is not None
    assert s.last_seen_at == s.created_at
    assert s.token_digest == token_digest("secret-token")
    assert s.expires_at is None
    assert s.deadline is None
    assert s.is_active()


def test_token_never_appears_in_repr() -> None:
    s = Session(user_id=USER, token="super-secret-token")
    assert "super-secret" not in repr(s)
    assert s.token_digest not in repr(s)


def test_needs_token_or_matching_digest() -> None:
    with pytest.raises(ValueError, match="token"):
        Session(user_id=USER)
    with pytest.raises(ValueError, match="does not match"):
        Session(user_id=USER, token="a", token_digest=token_digest("b"))
    assert Session(user_id=USER, token_digest=token_digest("a")).token == ""


def test_naive_datetimes_are_refused_and_others_normalised_to_utc() -> None:
    with pytest.raises(ValueError, match="time zone"):
        Session(user_id=USER, token="t", created_at=datetime(2026, 1, 1))
    paris = timezone(timedelta(hours=1))
    s = Session(user_id=USER, token="t", created_at=datetime(2026, 1, 1, 1, tzinfo=paris))
    assert s.created_at == datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert s.created_at.utcoffset() == timedelta(0)


def test_deadline_is_the_earlier_of_absolute_and_idle() -> None:
    now = utcnow()
    s = Session(
        user_id=USER,
        token="t",
        created_at=now,
        expires_at=now + timedelta(hours=1),
        idle_timeout=timedelta(minutes=10),
    )
    assert s.deadline == now + timedelta(minutes=10)
    assert s.is_active(now + timedelta(minutes=9))
    assert not s.is_active(now + timedelta(minutes=10))
    later = s.replace(last_seen_at=now + timedelta(minutes=55))
    assert later.deadline == now + timedelta(hours=1)
    assert not later.is_active(now + timedelta(hours=1))
    assert Session(user_id=USER, token="t", idle_timeout=timedelta(seconds=1)).deadline is not None


def test_non_positive_idle_timeout_is_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        Session(user_id=USER, token="t", idle_timeout=timedelta(0))


def test_id_given_as_string_is_parsed() -> None:
    sid = uuid.uuid4()
    assert Session(user_id=USER, token="t", id=str(sid)).id == sid  # type: ignore[arg-type]


def test_is_active_takes_a_datetime_or_a_timestamp_alike() -> None:
    now = utcnow()
    s = Session(user_id=USER, token="t", expires_at=now + timedelta(seconds=10))
    assert s.deadline is not None
    just_before = s.deadline - timedelta(microseconds=1)
    for moment in (now, just_before, s.deadline, s.deadline + timedelta(1)):
        assert s.is_active(moment) == s.is_active(moment.timestamp()) == (moment < s.deadline)
