"""Opaque user ids over HTTP (the admin routes) and sessions created already expired."""

from __future__ import annotations

import uuid
from datetime import timedelta
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from asgi_kit import Session, SessionDatabase, utcnow
from fastapi_users.extensions.session_manager import EndReason, SessionManager

from .conftest import bearer, make_app

ADMIN = "admin|root"
ODD_IDS = [
    "user1",
    "42",
    "auth0|5f7c8ec7c33c6c004bbafe82",
    "alice smith",
    "a/b",
    "a%2Fb",
    "café ☕",
    "{tag}:x",
    "?q=1#f",
    "x" * 255,
    str(uuid.uuid4()).upper(),
]


@pytest.fixture
def admin_client(manager: SessionManager) -> TestClient:
    def is_admin(session: Session) -> bool:
        return session.user_id == ADMIN

    return TestClient(make_app(manager, is_admin=is_admin))


@pytest.mark.parametrize("user_id", ODD_IDS)
def test_admin_routes_take_any_id_in_a_percent_encoded_segment(
    manager: SessionManager, admin_client: TestClient, user_id: str
) -> None:
    manager.create_session(ADMIN, "admin-token")
    session = manager.create_session(user_id, "user-token")
    longer = user_id + "0" if len(user_id) < 255 else user_id[:-1]  # no prefix ever matches
    bystander = manager.create_session(longer, "bystander-token")
    path = f"/admin/sessions/users/{quote(user_id, safe='')}"
    r = admin_client.get(path, headers=bearer("admin-token"))
    assert r.status_code == 200, r.text
    assert [(s["id"], s["user_id"]) for s in r.json()] == [(str(session.id), user_id)]
    assert admin_client.delete(path, headers=bearer("admin-token")).status_code == 204
    assert admin_client.get("/auth/sessions", headers=bearer("user-token")).status_code == 401
    listed = admin_client.get("/auth/sessions", headers=bearer("bystander-token")).json()
    assert [s["id"] for s in listed] == [str(bystander.id)]


def test_an_int_id_and_its_string_are_one_user_over_http(
    manager: SessionManager, admin_client: TestClient
) -> None:
    manager.create_session(ADMIN, "admin-token")
    manager.create_session(42, "token-int")
    manager.create_session("42", "token-str")
    r = admin_client.get("/admin/sessions/users/42", headers=bearer("admin-token"))
    assert sorted(s["user_id"] for s in r.json()) == ["42", "42"]
    r = admin_client.get("/auth/sessions", headers=bearer("token-int"))
    assert len(r.json()) == 2  # the user sees both sessions as theirs


@pytest.mark.parametrize("bad", ["x" * 256, "%00", "a%0Ab", "%7F", "%C2%85"])
@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_bad_ids_on_the_admin_routes_are_a_422_with_a_json_detail(
    manager: SessionManager, admin_client: TestClient, bad: str, method: str
) -> None:
    manager.create_session(ADMIN, "admin-token")
    r = admin_client.request(method, f"/admin/sessions/users/{bad}", headers=bearer("admin-token"))
    assert (r.status_code, r.json()) == (422, {"detail": "INVALID_USER_ID"})
    r = admin_client.request(method, f"/admin/sessions/users/{bad}")
    assert r.status_code == 401  # authentication first, always


# --- sessions created already ended --------------------------------------------------------


class Recording(SessionManager):
    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.ended: list[tuple[uuid.UUID, EndReason]] = []

    async def on_after_end(self, session: Session, reason: EndReason) -> None:
        self.ended.append((session.id, reason))


@pytest.mark.anyio
@pytest.mark.parametrize("ago", [timedelta(0), timedelta(seconds=1), timedelta(days=3)])
async def test_an_expiry_at_or_before_now_creates_an_ended_session(
    store: SessionDatabase, ago: timedelta
) -> None:
    manager = Recording(session_db=store)
    alive = await manager.create_session("user1", "token-alive")
    ended = await manager.create_session("user1", "token-ended", expires_at=utcnow() - ago)
    assert ended.expires_at is not None
    assert not ended.is_active()
    assert await manager.authenticate("token-ended") is None  # never valid
    assert await manager.get_session(ended.id) is None
    assert [s.id for s in await manager.get_sessions("user1")] == [alive.id]  # never listed
    assert await manager.purge_expired() == 1
    assert await manager.purge_expired() == 0
    assert manager.ended == [(ended.id, EndReason.EXPIRED)]  # reported once


def test_an_ended_session_made_in_sync_code_is_refused_over_http(
    manager: SessionManager, client: TestClient
) -> None:
    manager.create_session("user1", "token-ended", expires_at=utcnow())
    r = client.get("/auth/sessions", headers=bearer("token-ended"))
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == 'Bearer error="invalid_token"'
