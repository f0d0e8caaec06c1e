"""User agent and client address: one normalisation before any store, the same everywhere."""

from __future__ import annotations

import pytest

from asgi_kit import Session, SessionDatabase
from fastapi_users.extensions.session_manager import SessionManager

LONG_PROXY_CHAIN = "203.0.113.7, 198.51.100.2, 192.0.2.44, 2001:db8::1, 10.1.2.3"


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("203.0.113.7", "203.0.113.7"),
        (" 203.0.113.7 ", "203.0.113.7"),
        ("2001:0DB8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
        ("fe80::1%eth0", "fe80::1"),
        ("::ffff:192.0.2.1", "192.0.2.1"),
        ("::FFFF:C000:0201", "192.0.2.1"),
        ("testclient", None),
        ("example.com", None),
        (LONG_PROXY_CHAIN, None),
        ("1.2.3.4\x00", None),
        ("", None),
        (None, None),
    ],
)
def test_ip_addresses_are_real_addresses_or_nothing(given: str | None, kept: str | None) -> None:
    session = Session(user_id="u", token="t", ip_address=given)
    assert session.ip_address == kept


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("Mozilla/5.0 (X11)", "Mozilla/5.0 (X11)"),
        ("curl/8\x00.1\r\nX-Injected: 1", "curl/8.1X-Injected: 1"),
        ("\x00\x01\x7f", None),
        ("é" * 600, "é" * 512),
        ("", None),
    ],
)
def test_user_agents_lose_control_characters_and_are_capped(
    given: str, kept: str | None
) -> None:
    assert Session(user_id="u", token="t", user_agent=given).user_agent == kept


@pytest.mark.anyio
async def test_every_store_keeps_the_same_normalised_values(store: SessionDatabase) -> None:
    manager = SessionManager(session_db=store)
    session = await manager.create_session(
        "user1",
        "tok",
        user_agent="agent\x00with NUL " + "x" * 1000,
        ip_address="2001:db8:0:0:0:0:0:7" + "%" + "z" * 60,
    )
    stored = await store.get(session.id)
    assert stored is not None
    assert stored.user_agent == session.user_agent == ("agent" + "with NUL " + "x" * 1000)[:512]
    assert stored.ip_address == session.ip_address == "2001:db8::7"
    other = await manager.create_session("user1", "tok2", ip_address=LONG_PROXY_CHAIN)
    assert (await store.get(other.id)).ip_address is None  # type: ignore[union-attr]
