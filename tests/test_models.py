"""The Session value type and the user-id rule."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from asgi_kit import InvalidUserIdError, Session, coerce_user_id, token_digest, utcnow

USER = uuid.uuid4()


@pytest.mark.parametrize(
    "given",
    [
        USER,
        str(USER),
        USER.hex,
        str(USER).upper(),
        f"urn:uuid:{USER}",
        "user1",
        "42",
        42,
        0,
        -7,
        10**30,
        "auth0|5f7c8ec7c33c6c004bbafe82",
        "é" * 255,
        "a b:{c}",
    ],
)
def test_user_ids_are_opaque_and_keep_their_text(given: object) -> None:
    user_id = coerce_user_id(given)
    assert str(user_id) == str(given)
    assert Session(user_id=given, token="t").user_id == user_id  # type: ignore[arg-type]
    assert coerce_user_id(user_id) == user_id  # idempotent
    canonical = isinstance(given, uuid.UUID) or given == str(USER)
    assert isinstance(user_id, uuid.UUID if canonical else str)


def test_a_uuid_and_its_string_are_one_user_and_so_are_an_int_and_its_string() -> None:
    assert coerce_user_id(str(USER)) == coerce_user_id(USER) == USER
    assert coerce_user_id(str(USER)) is not USER  # parsed, equal
    assert coerce_user_id(42) == coerce_user_id("42") == "42"
    # Other spellings of a UUID are other strings (str() must give back what was given).
    assert coerce_user_id(str(USER).upper()) != USER


@pytest.mark.parametrize(
    "bad",
    [
        None,
        "",
        "x" * 256,
        "a\x00b",
        "line\nbreak",
        "tab\t",
        "\x7f",
        "\x85",
        4.2,
        b"user",
        True,
        False,
        [1],
        object(),
    ],
)
def test_bad_user_ids_raise_a_typed_error_saying_what_is_accepted(bad: object) -> None:
    with pytest.raises(InvalidUserIdError, match="a UUID, an int, or a string of 1 to 255") as info:
        coerce_user_id(bad)
    assert len(str(info.value)) < 200  # a long id is shown cut, never whole
    with pytest.raises(ValueError, match="user id"):  # it is a ValueError too
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


@pytest.mark.parametrize(
    "lifetime",
    [
        {},
        {"expires_at": datetime(2031, 1, 1, tzinfo=timezone.utc)},
        {"idle_timeout": timedelta(minutes=30)},
        {"expires_at": datetime(2031, 1, 1, tzinfo=timezone.utc), "idle_timeout": timedelta(9000)},
    ],
    ids=["never", "absolute", "idle", "both"],
)
def test_from_store_rebuilds_the_same_session(lifetime: dict[str, object]) -> None:
    made = Session(user_id=USER, token="t", user_agent="ua", ip_address="::1", **lifetime)  # type: ignore[arg-type]
    fields = {name: getattr(made, name) for name in STORED_FIELDS}
    back = Session.from_store(**fields)
    assert back == made
    assert back.token == ""
    assert (back.deadline, back.is_active(), back.is_active(made.created_at)) == (
        made.deadline,
        made.is_active(),
        made.is_active(made.created_at),
    )
    far = datetime(2100, 1, 1, tzinfo=timezone.utc)
    assert back.is_active(far) is made.is_active(far)
    # Aware datetimes in another zone come back in UTC, as a constructed Session has them.
    shifted = made.created_at.astimezone(timezone(timedelta(hours=5)))
    moved = Session.from_store(**{**fields, "created_at": shifted, "last_seen_at": shifted})
    assert moved.created_at.tzinfo is timezone.utc
    assert moved == made


STORED_FIELDS = (
    "id",
    "user_id",
    "token_digest",
    "created_at",
    "expires_at",
    "idle_timeout",
    "last_seen_at",
    "user_agent",
    "ip_address",
)


def test_durations_round_trip_through_microseconds() -> None:
    from asgi_kit._clock import from_microseconds, to_microseconds

    for duration in (timedelta(microseconds=1), timedelta(days=7, seconds=3), timedelta(0)):
        micros = to_microseconds(duration)
        assert from_microseconds(micros) == duration
        assert from_microseconds(micros) == duration  # the kept one, the second time
    assert to_microseconds(None) is None
    assert from_microseconds(None) is None
    many = [from_microseconds(n) for n in range(1, 1000)]  # past what is kept
    assert many == [timedelta(microseconds=n) for n in range(1, 1000)]
