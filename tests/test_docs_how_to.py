"""The examples of the how-to guides: admins, hooks and audit, the cap, account events and
reverse proxies (docs/how-to/). Stores and migrations: test_docs_stores.py."""

from __future__ import annotations

import importlib
import io
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from urllib.parse import quote

import httpx2
import pytest
from fastapi.testclient import TestClient

from asgi_kit import ConfigurationError, Session, generate_token, utcnow
from fastapi_users.extensions.session_manager import (
    AccountEvent,
    EndReason,
    SessionManager,
    UnknownEndReasonError,
)

ROOT = Path(__file__).resolve().parents[1]
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def load(module: str) -> ModuleType:
    """``module`` imported afresh: a new manager and store, the environment read now."""
    return importlib.reload(importlib.import_module(module))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def as_shown(lines: list[str], shown: list[str]) -> list[str]:
    """``lines`` with each session id replaced by the one the page shows at its place."""
    ids: dict[str, str] = {}
    shown_ids = iter(dict.fromkeys(UUID.findall("\n".join(shown))))
    for found in dict.fromkeys(UUID.findall("\n".join(lines))):
        ids[found] = next(shown_ids)
    return [UUID.sub(lambda m: ids[m.group(0)], line) for line in lines]


# docs/how-to/admins.md


@pytest.fixture
def admins() -> Iterator[tuple[ModuleType, TestClient]]:
    example = load("docs_src.admins.app")
    with TestClient(example.app) as client:
        yield example, client


def test_admins_list_and_revoke_any_users_sessions(
    admins: tuple[ModuleType, TestClient], caplog: pytest.LogCaptureFixture
) -> None:
    example, client = admins
    manager: SessionManager = example.manager
    admin = manager.create_session("alice", generate_token())
    bob = [manager.create_session("bob", generate_token()) for _ in range(3)]

    listed = client.get("/admin/sessions/users/bob", headers=bearer(admin.token))
    assert listed.status_code == 200
    assert {s["id"] for s in listed.json()} == {str(s.id) for s in bob}
    assert all(s["current"] is False for s in listed.json())

    caplog.set_level(logging.INFO, logger="asgi_kit.sessions")
    one = client.delete(f"/admin/sessions/{bob[0].id}", headers=bearer(admin.token))
    assert one.status_code == 204
    assert f"session ended id={bob[0].id} user=bob reason=revoked_by_admin" in caplog.messages
    assert client.get("/auth/sessions", headers=bearer(bob[0].token)).status_code == 401
    assert client.get("/auth/sessions", headers=bearer(bob[1].token)).status_code == 200
    again = client.delete(f"/admin/sessions/{bob[0].id}", headers=bearer(admin.token))
    assert again.status_code == 404
    assert again.json() == {"detail": "SESSION_NOT_FOUND"}

    every = client.delete("/admin/sessions/users/bob", headers=bearer(admin.token))
    assert every.status_code == 204
    assert client.get("/auth/sessions", headers=bearer(bob[1].token)).status_code == 401
    assert client.get("/admin/sessions/users/bob", headers=bearer(admin.token)).json() == []


def test_admin_routes_refuse_everyone_else(admins: tuple[ModuleType, TestClient]) -> None:
    example, client = admins
    bob = example.manager.create_session("bob", generate_token())
    alice = example.manager.create_session("alice", generate_token())
    for method, path in [
        ("GET", "/admin/sessions/users/alice"),
        ("DELETE", "/admin/sessions/users/alice"),
        ("DELETE", f"/admin/sessions/{alice.id}"),
    ]:
        refused = client.request(method, path, headers=bearer(bob.token))
        assert refused.status_code == 403
        assert refused.json() == {"detail": "NOT_AN_ADMIN"}
        anonymous = client.request(method, path)
        assert anonymous.status_code == 401
    assert client.get("/auth/sessions", headers=bearer(alice.token)).status_code == 200


@pytest.mark.parametrize("user_id", ["auth0|5f7c8ec7c33c6c004bbafe82", "a/b", "100%", "42"])
def test_admin_routes_take_any_user_id_percent_encoded(
    admins: tuple[ModuleType, TestClient], user_id: str
) -> None:
    example, client = admins
    admin = example.manager.create_session("alice", generate_token())
    theirs = example.manager.create_session(user_id, generate_token())
    path = f"/admin/sessions/users/{quote(user_id, safe='')}"
    listed = client.get(path, headers=bearer(admin.token))
    assert [s["id"] for s in listed.json()] == [str(theirs.id)]
    assert listed.json()[0]["user_id"] == user_id


@pytest.mark.parametrize("user_id", ["x" * 256, "a%00b", "line%0Abreak"])
def test_admin_routes_answer_422_for_an_invalid_user_id(
    admins: tuple[ModuleType, TestClient], user_id: str
) -> None:
    example, client = admins
    admin = example.manager.create_session("alice", generate_token())
    for method in ("GET", "DELETE"):
        refused = client.request(
            method, f"/admin/sessions/users/{user_id}", headers=bearer(admin.token)
        )
        assert refused.status_code == 422
        assert refused.json() == {"detail": "INVALID_USER_ID"}


def test_an_async_is_admin_works_too() -> None:
    example = load("docs_src.admins.app")

    async def is_admin(session: Session) -> bool:
        return bool(example.is_admin(session))

    manager: SessionManager = example.manager
    example.app.include_router(manager.get_admin_router(is_admin), prefix="/admin2/sessions")
    admin = manager.create_session("alice", generate_token())
    bob = manager.create_session("bob", generate_token())
    with TestClient(example.app) as client:
        assert (
            client.get("/admin2/sessions/users/bob", headers=bearer(admin.token)).status_code == 200
        )
        assert (
            client.get("/admin2/sessions/users/bob", headers=bearer(bob.token)).status_code == 403
        )


# docs/how-to/hooks-and-audit.md


@pytest.mark.anyio
async def test_the_audit_log_lines_are_the_ones_shown(caplog: pytest.LogCaptureFixture) -> None:
    manager = SessionManager()
    caplog.set_level(logging.INFO, logger="asgi_kit.sessions")
    first = await manager.create_session("alice", generate_token())
    assert await manager.reauthenticated(first.id) is not None
    await manager.revoke_session(first.id, reason=EndReason.REVOKED_BY_USER)
    await manager.create_session("alice", generate_token(), expires_at=utcnow())
    assert await manager.purge_expired() == 1
    await manager.create_session("alice", generate_token())
    await manager.end_sessions_for_account_event("alice", AccountEvent.PASSWORD_RESET)

    records = [r for r in caplog.records if r.name == "asgi_kit.sessions"]
    lines = [f"{r.levelname} {r.name} {r.getMessage()}" for r in records]
    shown = (ROOT / "docs_src/hooks_audit/audit.log").read_text().splitlines()
    assert as_shown(lines, shown) == shown
    # The same fields on the records (extra=), and never the token or its digest.
    assert records[2].session_id == str(first.id)  # type: ignore[attr-defined]
    assert records[2].user_id == "alice"  # type: ignore[attr-defined]
    assert records[2].reason == "revoked_by_user"  # type: ignore[attr-defined]
    assert not any(first.token in line or first.token_digest in line for line in lines)


@pytest.mark.anyio
async def test_the_json_formatter_emits_the_fields_shown() -> None:
    example = load("docs_src.hooks_audit.json_logging")
    stream = io.StringIO()
    example.handler.setStream(stream)
    try:
        manager = SessionManager()
        session = await manager.create_session("alice", generate_token())
        await manager.revoke_session(session.id, reason=EndReason.REVOKED_BY_USER)
    finally:
        example.audit_log.removeHandler(example.handler)
        example.audit_log.setLevel(logging.NOTSET)
    lines = stream.getvalue().splitlines()
    shown = (ROOT / "docs_src/hooks_audit/audit.jsonl").read_text().splitlines()
    assert as_shown(lines, shown) == shown
    assert all(isinstance(json.loads(line), dict) for line in shown)


@pytest.mark.anyio
async def test_the_hooks_run_after_the_change() -> None:
    example = load("docs_src.hooks_audit.manager")
    manager: SessionManager = example.manager
    session = await manager.create_session("alice", generate_token(), user_agent="curl/8.5.0")
    assert example.security_notices == [("alice", "New sign-in from curl")]
    await manager.revoke_session(session.id, reason=EndReason.REVOKED_BY_ADMIN)
    assert example.security_notices[-1] == ("alice", "A session ended: revoked_by_admin")
    await manager.create_session("alice", generate_token())
    await manager.revoke_all("alice", reason=EndReason.LOGOUT)  # no notice for a logout
    assert len(example.security_notices) == 3


@pytest.mark.anyio
async def test_a_raising_hook_is_logged_and_never_undoes_the_change(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Broken(SessionManager):
        async def on_after_end(self, session: Session, reason: EndReason) -> None:
            raise RuntimeError("the audit service is down")

    manager = Broken()
    session = await manager.create_session("alice", generate_token())
    assert await manager.revoke_session(session.id) is not None
    assert await manager.authenticate(session.token) is None
    assert "session hook on_after_end failed; the change it reports stands" in caplog.messages


@pytest.mark.anyio
async def test_an_unknown_end_reason_ends_nothing() -> None:
    manager = SessionManager()
    session = await manager.create_session("alice", generate_token())
    with pytest.raises(UnknownEndReasonError):
        await manager.revoke_session(session.id, reason="bored")
    with pytest.raises(ValueError, match="unknown end reason"):
        await manager.revoke_all("alice", reason="bored")
    assert await manager.authenticate(session.token) is not None


def test_the_end_reasons_are_the_ones_listed() -> None:
    page = (ROOT / "docs/how-to/hooks-and-audit.md").read_text()
    listed = re.findall(r"^\| `(\w+)` \| `EndReason\.(\w+)` \|", page, re.MULTILINE)
    assert listed == [(r.value, r.name) for r in EndReason]


# docs/how-to/session-cap.md


def log_in(client: TestClient, user: str) -> httpx2.Response:
    return client.post("/auth/login", json={"username": user, "password": "secret"})


def test_the_cap_evicts_the_least_recently_used(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("SESSION_LIMIT_POLICY", raising=False)
    example = load("docs_src.session_cap.app")
    caplog.set_level(logging.INFO, logger="asgi_kit.sessions")
    with TestClient(example.app) as client:
        tokens = [log_in(client, "alice").json()["access_token"] for _ in range(3)]
        fourth = log_in(client, "alice")
        assert fourth.status_code == 200
        # None was used since its login: the first is the least recently used.
        assert client.get("/auth/sessions", headers=bearer(tokens[0])).status_code == 401
        assert client.get("/auth/sessions", headers=bearer(tokens[1])).status_code == 200
        listed = client.get("/auth/sessions", headers=bearer(fourth.json()["access_token"]))
        assert len(listed.json()) == 3
        assert log_in(client, "bob").status_code == 200  # the cap is per user
    assert sum("reason=evicted" in m for m in caplog.messages) == 1


def test_the_refuse_policy_answers_409(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SESSION_LIMIT_POLICY", "refuse")
    example = load("docs_src.session_cap.app")
    with TestClient(example.app) as client:
        tokens = [log_in(client, "alice").json()["access_token"] for _ in range(3)]
        refused = log_in(client, "alice")
        assert refused.status_code == 409
        assert refused.json() == {"detail": "SESSION_LIMIT_REACHED"}
        for token in tokens:  # the existing sessions stay
            assert client.get("/auth/sessions", headers=bearer(token)).status_code == 200
        listed = client.get("/auth/sessions", headers=bearer(tokens[0])).json()
        client.delete(f"/auth/sessions/{listed[0]['id']}", headers=bearer(tokens[0]))
        assert log_in(client, "alice").status_code == 200  # room again


@pytest.mark.parametrize(
    "settings",
    [
        {"max_sessions_per_user": 0},
        {"max_sessions_per_user": -1},
        {"max_sessions_per_user": 2.5},
        {"max_sessions_per_user": 2, "limit_policy": "oldest"},
    ],
)
def test_bad_cap_settings_fail_at_start_up(settings: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        SessionManager(**settings)  # type: ignore[arg-type]


# docs/how-to/account-events.md


def test_a_password_change_keeps_the_current_session_and_disabling_ends_all(
    caplog: pytest.LogCaptureFixture,
) -> None:
    example = load("docs_src.account_events.app")
    manager: SessionManager = example.manager
    caplog.set_level(logging.INFO, logger="asgi_kit.sessions")
    laptop, phone, tablet = (manager.create_session("alice", generate_token()) for _ in range(3))
    other = manager.create_session("bob", generate_token())
    with TestClient(example.app) as client:
        changed = client.post(
            "/account/password", json={"password": "new"}, headers=bearer(laptop.token)
        )
        assert changed.status_code == 204
        assert client.get("/auth/sessions", headers=bearer(laptop.token)).status_code == 200
        for ended in (phone, tablet):
            assert client.get("/auth/sessions", headers=bearer(ended.token)).status_code == 401
        assert "account event=password_changed user=alice sessions_ended=2" in caplog.messages
        assert f"session ended id={phone.id} user=alice reason=account_event" in caplog.messages

        disabled = client.post("/account/disable", headers=bearer(laptop.token))
        assert disabled.status_code == 204
        assert client.get("/auth/sessions", headers=bearer(laptop.token)).status_code == 401
        assert "account event=account_disabled user=alice sessions_ended=1" in caplog.messages
        assert client.get("/auth/sessions", headers=bearer(other.token)).status_code == 200


@pytest.mark.anyio
@pytest.mark.parametrize("event", [AccountEvent.ACCOUNT_DISABLED, AccountEvent.ACCOUNT_DELETED])
async def test_disabling_or_deleting_cannot_keep_a_session(event: AccountEvent) -> None:
    manager = SessionManager()
    session = await manager.create_session("alice", generate_token())
    with pytest.raises(ValueError, match="keep_current is not allowed"):
        await manager.end_sessions_for_account_event("alice", event, keep_current=session.id)
    assert await manager.authenticate(session.token) is not None


# docs/how-to/reverse-proxy.md

PROXY = "10.0.0.2"
CLIENT = "203.0.113.7"
FORWARDED = {"Host": "app.example.com", "X-Forwarded-For": CLIENT, "X-Forwarded-Proto": "https"}


def proxied(example: ModuleType, address: str) -> httpx2.AsyncClient:
    """A client whose requests reach the app from ``address``, as the proxy's do."""
    transport = httpx2.ASGITransport(example.app, client=(address, 41234))
    return httpx2.AsyncClient(transport=transport, base_url="http://10.0.0.3:8000")


def test_the_nginx_snippet_forwards_what_the_app_reads() -> None:
    conf = (ROOT / "docs_src/reverse_proxy/nginx.conf").read_text()
    forwarded = dict(re.findall(r"^\s*proxy_set_header (\S+) (\S+);", conf, re.MULTILINE))
    assert forwarded == {
        "Host": "$host",
        "X-Forwarded-For": "$proxy_add_x_forwarded_for",
        "X-Forwarded-Proto": "$scheme",
    }
    assert set(forwarded) == set(FORWARDED)
    assert f"--forwarded-allow-ips={PROXY}" in conf


@pytest.mark.anyio
async def test_behind_the_proxy_the_session_has_the_clients_address_and_a_secure_cookie(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("PROXY_ADDRESS", raising=False)
    monkeypatch.delenv("PUBLIC_ORIGIN", raising=False)
    example = load("docs_src.reverse_proxy.app")
    async with proxied(example, PROXY) as client:
        login = await client.post("/auth/login", headers=FORWARDED)
        assert login.status_code == 200
        assert "secure" in login.headers["set-cookie"].lower()
        token = login.json()["access_token"]
        (session,) = (await client.get("/auth/sessions", headers=bearer(token))).json()
        assert session["ip_address"] == CLIENT

        # A cookie request from the public origin may change state; another origin may not.
        cookies = {"Cookie": f"session={token}"}
        own = {**FORWARDED, **cookies, "Origin": "https://app.example.com"}
        assert (
            await client.delete(f"/auth/sessions/{session['id']}", headers=own)
        ).status_code == 204
        assert (await client.get("/auth/sessions", headers=bearer(token))).status_code == 401


@pytest.mark.anyio
async def test_csrf_checks_the_public_origin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROXY_ADDRESS", raising=False)
    monkeypatch.delenv("PUBLIC_ORIGIN", raising=False)
    example = load("docs_src.reverse_proxy.app")
    async with proxied(example, PROXY) as client:
        token = (await client.post("/auth/login", headers=FORWARDED)).json()["access_token"]
        cookie = {"Cookie": f"session={token}"}
        other = {**FORWARDED, **cookie, "Origin": "https://evil.example"}
        refused = await client.delete("/auth/sessions", headers=other)
        assert refused.status_code == 403
        assert refused.json() == {"detail": "CSRF_FAILED"}
        # Without X-Forwarded-Proto the app sees http: trusted_origins still admits the
        # public origin.
        plain = {"Host": "app.example.com", **cookie, "Origin": "https://app.example.com"}
        assert (await client.delete("/auth/sessions", headers=plain)).status_code == 204


@pytest.mark.anyio
async def test_forwarded_headers_from_anyone_else_are_ignored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("PROXY_ADDRESS", raising=False)
    example = load("docs_src.reverse_proxy.app")
    async with proxied(example, "198.51.100.9") as client:  # straight to the app
        login = await client.post("/auth/login", headers=FORWARDED)
        assert "secure" not in login.headers["set-cookie"].lower()
        token = login.json()["access_token"]
        (session,) = (await client.get("/auth/sessions", headers=bearer(token))).json()
        assert session["ip_address"] == "198.51.100.9"
