"""The /auth/sessions HTTP API, called the way clients call it."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from asgi_kit import InMemorySessionDatabase, Session, utcnow
from fastapi_users.extensions.session_manager import EndReason, SessionManager

from .conftest import bearer, make_app

Login = Callable[..., tuple[uuid.UUID, str]]


def test_list_shows_own_active_sessions_newest_first(client: TestClient, login: Login) -> None:
    firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
    user, first = login(user_agent=firefox, ip_address="203.0.113.1")
    _, second = login(user)
    _, expired = login(user)
    login()  # someone else
    client.app.state  # noqa: B018 - the app is up
    r = client.get("/auth/sessions", headers=bearer(second))
    assert r.status_code == 200
    body = r.json()
    assert len(body) == 3
    assert [item["current"] for item in body] == [False, True, False]
    assert {item["user_id"] for item in body} == {str(user)}
    assert body[2]["user_agent"] == firefox
    assert body[2]["ip_address"] == "203.0.113.1"
    assert body[2]["device"] == {
        "browser": "Firefox 133",
        "os": "Linux",
        "kind": "desktop",
        "label": "Firefox on Linux",
    }
    assert set(body[0]["device"]) == {"browser", "os", "kind", "label"}
    assert body[0]["authenticated_at"] == body[0]["created_at"]
    assert set(body[0]) == {
        "id",
        "user_id",
        "authenticated_at",
        "device",
        "created_at",
        "expires_at",
        "last_seen_at",
        "user_agent",
        "ip_address",
        "current",
    }
    for token in (first, second, expired):
        assert token not in r.text  # never any raw token, not even the caller's


def test_expired_sessions_are_not_listed_nor_accepted(manager: SessionManager) -> None:
    user = uuid.uuid4()
    soon = utcnow() + timedelta(milliseconds=300)
    manager.create_session(user, "short-lived", expires_at=soon)
    manager.create_session(user, "long-lived")
    with TestClient(make_app(manager)) as client:
        assert len(client.get("/auth/sessions", headers=bearer("long-lived")).json()) == 2
        import time

        time.sleep(0.35)
        assert len(client.get("/auth/sessions", headers=bearer("long-lived")).json()) == 1
        r = client.get("/auth/sessions", headers=bearer("short-lived"))
        assert r.status_code == 401


def test_delete_one_of_my_sessions(client: TestClient, login: Login) -> None:
    user, mine = login()
    _, other_device = login(user)
    sessions = client.get("/auth/sessions", headers=bearer(mine)).json()
    target = next(s["id"] for s in sessions if not s["current"])
    r = client.delete(f"/auth/sessions/{target}", headers=bearer(mine))
    assert r.status_code == 204
    assert r.content == b""
    assert client.get("/auth/sessions", headers=bearer(other_device)).status_code == 401
    assert client.delete(f"/auth/sessions/{target}", headers=bearer(mine)).status_code == 404
    assert len(client.get("/auth/sessions", headers=bearer(mine)).json()) == 1


def test_delete_my_current_session_logs_me_out(client: TestClient, login: Login) -> None:
    _, token = login()
    current = client.get("/auth/sessions", headers=bearer(token)).json()[0]["id"]
    assert client.delete(f"/auth/sessions/{current}", headers=bearer(token)).status_code == 204
    assert client.get("/auth/sessions", headers=bearer(token)).status_code == 401


@pytest.mark.parametrize("bad_id", ["not-a-uuid", "123", str(uuid.uuid4()), "%00", "a" * 500])
def test_delete_unknown_or_invalid_id_is_404(client: TestClient, login: Login, bad_id: str) -> None:
    _, token = login()
    r = client.delete(f"/auth/sessions/{bad_id}", headers=bearer(token))
    assert r.status_code == 404
    assert r.json() == {"detail": "SESSION_NOT_FOUND"}


def test_delete_another_users_session_is_403_and_it_survives(
    client: TestClient, login: Login
) -> None:
    _, mallory = login()
    _, victim_token = login()
    victim_session = client.get("/auth/sessions", headers=bearer(victim_token)).json()[0]["id"]
    r = client.delete(f"/auth/sessions/{victim_session}", headers=bearer(mallory))
    assert r.status_code == 403
    assert r.json() == {"detail": "SESSION_OF_ANOTHER_USER"}
    assert client.get("/auth/sessions", headers=bearer(victim_token)).status_code == 200


def test_delete_all_ends_every_session_including_current(client: TestClient, login: Login) -> None:
    user, a = login()
    _, b = login(user)
    _, bystander = login()
    assert client.delete("/auth/sessions", headers=bearer(a)).status_code == 204
    for token in (a, b):
        assert client.get("/auth/sessions", headers=bearer(token)).status_code == 401
    assert client.get("/auth/sessions", headers=bearer(bystander)).status_code == 200


def test_delete_all_keep_current(client: TestClient, login: Login) -> None:
    user, a = login()
    _, b = login(user)
    _, c = login(user)
    r = client.delete("/auth/sessions", params={"keep_current": "true"}, headers=bearer(a))
    assert r.status_code == 204
    remaining = client.get("/auth/sessions", headers=bearer(a)).json()
    assert [s["current"] for s in remaining] == [True]
    for token in (b, c):
        assert client.get("/auth/sessions", headers=bearer(token)).status_code == 401


@pytest.mark.parametrize(
    ("headers", "challenge", "detail"),
    [
        ({}, "Bearer", "NOT_AUTHENTICATED"),
        ({"Authorization": "Basic YTpi"}, "Bearer", "NOT_AUTHENTICATED"),
        ({"Authorization": "Bearer"}, "Bearer", "NOT_AUTHENTICATED"),
        ({"Authorization": "Bearer "}, "Bearer", "NOT_AUTHENTICATED"),
        (
            {"Authorization": "Bearer unknown-token"},
            'Bearer error="invalid_token"',
            "INVALID_TOKEN",
        ),
        ({"Authorization": "Bearer a b"}, 'Bearer error="invalid_token"', "INVALID_TOKEN"),
        ({"Authorization": "Bearer\tabc"}, 'Bearer error="invalid_token"', "INVALID_TOKEN"),
        (
            {"Authorization": "Bearer " + "a" * 10_240},
            'Bearer error="invalid_token"',
            "INVALID_TOKEN",
        ),
    ],
)
@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/auth/sessions"), ("DELETE", "/auth/sessions"), ("DELETE", "/auth/sessions/x")],
)
def test_unauthenticated_calls_get_401_with_challenge(
    client: TestClient,
    headers: dict[str, str],
    challenge: str,
    detail: str,
    method: str,
    path: str,
) -> None:
    r = client.request(method, path, headers=headers)
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == challenge
    assert r.json() == {"detail": detail}


def test_auth_is_checked_before_anything_else(client: TestClient, login: Login) -> None:
    _, token = login()
    existing = client.get("/auth/sessions", headers=bearer(token)).json()[0]["id"]
    for sid in (existing, str(uuid.uuid4()), "junk"):
        assert client.delete(f"/auth/sessions/{sid}").status_code == 401
    r = client.delete("/auth/sessions?keep_current=maybe")
    assert r.status_code == 401
    assert len(client.get("/auth/sessions", headers=bearer(token)).json()) == 1


def test_scheme_is_case_insensitive(client: TestClient, login: Login) -> None:
    _, token = login()
    for scheme in ("bearer", "BEARER", "BeArEr"):
        r = client.get("/auth/sessions", headers={"Authorization": f"{scheme}   {token}"})
        assert r.status_code == 200


def test_two_authorization_headers_are_refused(client: TestClient, login: Login) -> None:
    _, token = login()
    r = client.get(
        "/auth/sessions",
        headers=[("Authorization", f"Bearer {token}"), ("Authorization", f"Bearer {token}")],
    )
    # RFC 6750 section 3.1: more than one way (here, two headers) is invalid_request, a 400.
    assert (r.status_code, r.json()) == (400, {"detail": "INVALID_REQUEST"})
    assert r.headers["www-authenticate"] == 'Bearer error="invalid_request"'


def test_non_ascii_header_bytes_are_401(client: TestClient) -> None:
    r = client.get("/auth/sessions", headers=[(b"Authorization", b"Bearer \xe9\xff\x00abc")])
    assert r.status_code == 401


def test_openapi_declares_bearer_scheme_and_responses(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    schemes = schema["components"]["securitySchemes"]
    assert schemes["SessionBearer"]["type"] == "http"
    assert schemes["SessionBearer"]["scheme"] == "bearer"
    listing = schema["paths"]["/auth/sessions"]["get"]
    assert listing["security"] == [{"SessionBearer": []}]
    assert set(listing["responses"]) == {"200", "401", "503"}
    assert "SessionRead" in str(listing["responses"]["200"])
    revoke = schema["paths"]["/auth/sessions/{session_id}"]["delete"]
    assert set(revoke["responses"]) >= {"204", "401", "403", "404", "503"}
    assert "ErrorModel" in str(revoke["responses"]["404"])
    assert "keep_current" in str(schema["paths"]["/auth/sessions"]["delete"]["parameters"])


def test_admin_router(login: Login, manager: SessionManager) -> None:
    admin_user, admin_token = login()
    victim, victim_token = login()
    _, victim_other = login(victim)
    _, bystander = login()
    app = make_app(manager, is_admin=lambda s: s.user_id == admin_user)
    with TestClient(app) as client:
        r = client.get(f"/admin/sessions/users/{victim}", headers=bearer(admin_token))
        assert r.status_code == 200
        assert len(r.json()) == 2
        assert not any(s["current"] for s in r.json())
        assert client.get(f"/admin/sessions/users/{victim}", headers=bearer(bystander)).json() == {
            "detail": "NOT_AN_ADMIN"
        }
        sid = r.json()[0]["id"]
        assert client.delete(f"/admin/sessions/{sid}", headers=bearer(bystander)).status_code == 403
        assert (
            client.delete(f"/admin/sessions/{sid}", headers=bearer(admin_token)).status_code == 204
        )
        assert (
            client.delete(f"/admin/sessions/{sid}", headers=bearer(admin_token)).status_code == 404
        )
        r = client.delete(f"/admin/sessions/users/{victim}", headers=bearer(admin_token))
        assert r.status_code == 204
        for token in (victim_token, victim_other):
            assert client.get("/auth/sessions", headers=bearer(token)).status_code == 401
        assert client.get("/auth/sessions", headers=bearer(bystander)).status_code == 200
        r = client.get(f"/admin/sessions/users/{'x' * 256}", headers=bearer(admin_token))
        assert (r.status_code, r.json()) == (422, {"detail": "INVALID_USER_ID"})
        assert client.get(f"/admin/sessions/users/{victim}").status_code == 401


def test_async_admin_predicate(login: Login, manager: SessionManager) -> None:
    admin_user, admin_token = login()

    async def is_admin(session: object) -> bool:
        return getattr(session, "user_id", None) == admin_user

    with TestClient(make_app(manager, is_admin=is_admin)) as client:
        r = client.get(f"/admin/sessions/users/{admin_user}", headers=bearer(admin_token))
        assert r.status_code == 200
        assert r.json()[0]["current"] is True


def test_router_has_no_prefix_of_its_own() -> None:
    manager = SessionManager(session_db=InMemorySessionDatabase())
    paths = {route.path for route in manager.router.routes}  # type: ignore[attr-defined]
    assert paths == {"", "/{session_id}", "/refresh", "/", "/{rest:path}/"}  # "/", ".../": 404


class Ends(SessionManager):
    """Records the reason of every ended session, by session id."""

    def __init__(self) -> None:
        super().__init__()
        self.reasons: dict[uuid.UUID, str] = {}

    async def on_after_end(self, session: Session, reason: EndReason) -> None:
        self.reasons[session.id] = reason.value


def test_deleting_my_current_session_is_reported_as_a_logout() -> None:
    manager, user = Ends(), uuid.uuid4()
    current = manager.create_session(user, "token-current")
    other = manager.create_session(user, "token-other")
    with TestClient(make_app(manager)) as client:
        for target in (other, current):
            reply = client.delete(f"/auth/sessions/{target.id}", headers=bearer("token-current"))
            assert reply.status_code == 204
    assert manager.reasons == {other.id: "revoked_by_user", current.id: "logout"}


@pytest.mark.parametrize(("keep_current", "current_reason"), [(False, "logout"), (True, None)])
def test_deleting_all_reports_the_current_session_as_a_logout(
    keep_current: bool, current_reason: str | None
) -> None:
    manager, user = Ends(), uuid.uuid4()
    current = manager.create_session(user, "token-current")
    others = [manager.create_session(user, f"token-{n}") for n in "ab"]
    with TestClient(make_app(manager)) as client:
        params = {"keep_current": str(keep_current).lower()}
        reply = client.delete("/auth/sessions", params=params, headers=bearer("token-current"))
        assert reply.status_code == 204
    assert [manager.reasons[s.id] for s in others] == ["revoked_by_user"] * 2
    assert manager.reasons.get(current.id) == current_reason
