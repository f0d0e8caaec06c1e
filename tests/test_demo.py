"""The demo app over HTTP (TestClient): login, refresh, /me, sessions (device names, and
the password again to log out everywhere), the admin router, files, page."""

from __future__ import annotations

import dataclasses
import logging
import re
import stat
import time
from collections.abc import Iterator
from datetime import datetime
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import anyio
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from asgi_kit import ConfigurationError
from examples.demo import accounts as accounts_module
from examples.demo.app import create_app
from examples.demo.files import is_safe_path
from examples.demo.settings import (
    SAMPLE_FILES,
    SECRET_FILE,
    KeptSecret,
    Settings,
    redact,
    sqlite_path,
)

ALICE = "a11ce000-0000-4000-8000-000000000001"
COOKIE = "asgi_kit_session"
REFRESH_COOKIE = "asgi_kit_session_refresh"
REFRESH = "/auth/sessions/refresh"
#: Given to every app here, so that none makes or reads the repo's demo-data/refresh-secret.
SECRET = "a refresh secret for the demo's tests only"
#: TestClient's own origin (its default base_url): the page's requests come from here.
SAME_ORIGIN = {"Origin": "http://testserver"}
ELSEWHERE = {"Origin": "http://127.0.0.1:9999"}
BOB = "b0b00000-0000-4000-8000-000000000002"
LAPTOP = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0"
PHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) Version/17.5 Mobile Safari/604.1"
FIREFOX_ON_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"
)
REAUTHENTICATE = "/auth/sessions/reauthenticate"


@pytest.fixture(scope="module")
def accounts() -> accounts_module.Accounts:
    """The demo accounts, hashed once for the module (scrypt is slow on purpose)."""
    return accounts_module.Accounts()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """An in-memory session store and a private file cache: nothing touches the repo."""
    return Settings(
        session_store_url="memory://",
        files_cache_dir=str(tmp_path / "cache"),
        refresh_secret=SECRET,
    )


@pytest.fixture
def demo(settings: Settings, accounts: accounts_module.Accounts) -> Iterator[TestClient]:
    """The demo app, lifespan running."""
    with TestClient(create_app(settings, accounts)) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def sign_in(client: TestClient, username: str = "alice", user_agent: str = LAPTOP) -> str:
    """Log in through the API; return the token."""
    reply = client.post(
        "/auth/login",
        json={"username": username, "password": "demo"},
        headers={"User-Agent": user_agent},
    )
    assert reply.status_code == 200, reply.text
    token: str = reply.json()["access_token"]
    return token


# ---- login -----------------------------------------------------------------------------


def test_login_with_json(demo: TestClient) -> None:
    reply = demo.post("/auth/login", json={"username": "alice", "password": "demo"})
    assert reply.status_code == 200
    body = reply.json()
    assert body["token_type"] == "bearer"
    assert len(body["access_token"]) >= 40
    assert body["refresh_token"].startswith("r1.")  # for API clients: see test_api_client_*
    assert body["expires_in"] == 300  # ACCESS_TOKEN_LIFETIME
    assert reply.headers["cache-control"] == "no-store"
    assert body["user"] == {"id": ALICE, "username": "alice", "is_admin": True}
    me = demo.get("/me", headers=bearer(body["access_token"])).json()
    assert me["session_id"] == body["session_id"]


def test_login_with_a_form(demo: TestClient) -> None:
    reply = demo.post("/auth/login", data={"username": "bob", "password": "demo"})
    assert reply.status_code == 200
    assert reply.json()["user"] == {"id": BOB, "username": "bob", "is_admin": False}


def test_login_with_a_multipart_form(demo: TestClient) -> None:
    reply = demo.post("/auth/login", files={"username": (None, "bob"), "password": (None, "demo")})
    assert reply.status_code == 200


@pytest.mark.parametrize(
    ("username", "password"),
    [("alice", "wrong"), ("bob", "Demo"), ("mallory", "demo"), ("ALICE", "demo")],
)
def test_bad_credentials_are_401_json_and_alike(
    demo: TestClient, username: str, password: str
) -> None:
    reply = demo.post("/auth/login", json={"username": username, "password": password})
    assert reply.status_code == 401
    assert reply.headers["content-type"] == "application/json"
    assert reply.json() == {"detail": "LOGIN_BAD_CREDENTIALS"}
    assert reply.headers["www-authenticate"] == "Bearer"


def test_unknown_users_cost_one_password_hash_too(
    demo: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Timing: a missing user is checked against a dummy hash, exactly like a known one."""
    calls: list[str] = []
    real = accounts_module.hash_password

    def counting(password: str, salt: bytes) -> bytes:
        calls.append(password)
        return real(password, salt)

    monkeypatch.setattr(accounts_module, "hash_password", counting)
    for username in ("alice", "nobody-at-all"):
        reply = demo.post("/auth/login", json={"username": username, "password": "x"})
        assert reply.status_code == 401
    assert calls == ["x", "x"]


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        ({"json": {"username": "alice"}}, {}),
        ({"json": {"username": "", "password": "demo"}}, {}),
        ({"json": ["alice", "demo"]}, {}),
        ({"content": b"not json"}, {"Content-Type": "application/json"}),
        ({"data": {"username": "alice"}}, {}),
    ],
)
def test_malformed_logins_are_422_json(
    demo: TestClient, body: dict[str, Any], headers: dict[str, str]
) -> None:
    reply = demo.post("/auth/login", headers=headers, **body)
    assert reply.status_code == 422
    assert "detail" in reply.json()


def test_passwords_are_hashed_with_a_salt_per_user() -> None:
    accounts = accounts_module.Accounts()
    alice, bob = accounts.by_name["alice"], accounts.by_name["bob"]
    assert alice.salt != bob.salt
    assert alice.password_hash != bob.password_hash
    assert accounts.verify("alice", "demo") is alice
    assert accounts.verify("alice", "\ud800") is None  # lone surrogates do not crash it


# ---- the session cookie ------------------------------------------------------------------


def set_cookies(reply: Any) -> dict[str, Any]:
    """Every ``Set-Cookie`` of ``reply``, parsed, by cookie name."""
    jar: SimpleCookie = SimpleCookie()
    for header in reply.headers.get_list("set-cookie"):
        jar.load(header)
    return dict(jar)


def set_cookie(reply: Any) -> Any:
    """The ``Set-Cookie`` of ``reply`` for the session cookie, parsed."""
    return set_cookies(reply)[COOKIE]


def test_login_sets_an_httponly_cookie_and_still_returns_the_token(demo: TestClient) -> None:
    reply = demo.post(
        "/auth/login", data={"username": "alice", "password": "demo"}, headers=SAME_ORIGIN
    )
    assert reply.status_code == 200
    token = reply.json()["access_token"]
    morsel = set_cookie(reply)
    assert morsel.value == token
    assert morsel["httponly"] is True
    assert morsel["samesite"] == "lax"
    assert morsel["path"] == "/"
    assert not morsel["secure"]  # plain http, as on http://127.0.0.1:8000
    assert 604790 <= int(morsel["max-age"]) <= 604800  # SESSION_LIFETIME
    by_cookie = demo.get("/me").json()  # no Authorization header: the cookie
    assert by_cookie == demo.get("/me", headers=bearer(token)).json()
    assert by_cookie["username"] == "alice"


def test_login_sets_the_refresh_cookie_for_the_refresh_route_only(demo: TestClient) -> None:
    reply = demo.post(
        "/auth/login", data={"username": "alice", "password": "demo"}, headers=SAME_ORIGIN
    )
    cookies = set_cookies(reply)
    assert sorted(cookies) == [COOKIE, REFRESH_COOKIE]
    refresh = cookies[REFRESH_COOKIE]
    assert refresh.value == reply.json()["refresh_token"]
    assert refresh["path"] == REFRESH
    assert (refresh["httponly"], refresh["samesite"], refresh["secure"]) == (True, "lax", "")
    assert int(refresh["max-age"]) == int(cookies[COOKIE]["max-age"])  # the session's end
    # The client's jar sends it to the refresh route only, never with /me and the rest.
    sent: list[str] = []
    demo.event_hooks["request"].append(lambda r: sent.append(r.headers.get("cookie", "")))
    demo.get("/me")
    demo.post(REFRESH, headers=SAME_ORIGIN)
    assert REFRESH_COOKIE not in sent[0]
    assert f"{REFRESH_COOKIE}={refresh.value}" in sent[1]


def test_a_refresh_with_the_cookie_renews_both_cookies(demo: TestClient) -> None:
    login = demo.post(
        "/auth/login", data={"username": "alice", "password": "demo"}, headers=SAME_ORIGIN
    )
    old, me = login.json(), demo.get("/me").json()
    assert me["expires_in"] == 300
    reply = demo.post(REFRESH, headers=SAME_ORIGIN)  # an empty body: the cookie
    assert reply.status_code == 200, reply.text
    assert reply.json() == {"token_type": "bearer", "expires_in": 300}  # no tokens in it
    assert reply.headers["cache-control"] == "no-store"
    cookies = set_cookies(reply)
    assert cookies[COOKIE].value not in ("", old["access_token"])
    assert cookies[REFRESH_COOKIE].value not in ("", old["refresh_token"])
    assert (cookies[COOKIE]["path"], cookies[REFRESH_COOKIE]["path"]) == ("/", REFRESH)
    assert cookies[REFRESH_COOKIE]["httponly"] is True
    assert demo.get("/me").json() == me  # the same session, with the new cookie
    assert demo.get("/me", headers=bearer(old["access_token"])).status_code == 401
    assert demo.post(REFRESH, headers=SAME_ORIGIN).status_code == 200  # and again


def test_a_refresh_from_another_site_is_refused(demo: TestClient) -> None:
    token = demo.post(
        "/auth/login", json={"username": "alice", "password": "demo"}, headers=SAME_ORIGIN
    ).json()["access_token"]
    for headers in (
        {},
        ELSEWHERE,
        {"Origin": "null"},
        {**SAME_ORIGIN, "Sec-Fetch-Site": "cross-site"},
    ):
        reply = demo.post(REFRESH, headers=headers)
        assert (reply.status_code, reply.json()) == (403, {"detail": "CSRF_FAILED"})
        assert "set-cookie" not in reply.headers
    assert demo.get("/me", headers=bearer(token)).status_code == 200  # nothing was rotated
    assert demo.post(REFRESH, headers=SAME_ORIGIN).status_code == 200


def test_an_expired_access_token_is_refreshed(
    settings: Settings, accounts: accounts_module.Accounts
) -> None:
    short = dataclasses.replace(settings, access_token_lifetime=1)
    with TestClient(create_app(short, accounts)) as demo:
        login = demo.post(
            "/auth/login", data={"username": "bob", "password": "demo"}, headers=SAME_ORIGIN
        )
        assert login.json()["expires_in"] == 1
        time.sleep(1.1)
        reply = demo.get("/me")
        assert (reply.status_code, reply.json()) == (401, {"detail": "INVALID_TOKEN"})
        assert reply.headers["www-authenticate"] == (
            'Bearer error="invalid_token", error_description="The access token expired"'
        )
        assert demo.post(REFRESH, headers=SAME_ORIGIN).status_code == 200
        assert demo.get("/me").json()["session_id"] == login.json()["session_id"]


def test_api_clients_refresh_with_the_token_in_a_json_body(demo: TestClient) -> None:
    login = demo.post("/auth/login", json={"username": "alice", "password": "demo"}).json()
    demo.cookies.clear()  # an API client keeps no cookies
    reply = demo.post(REFRESH, json={"refresh_token": login["refresh_token"]})
    assert reply.status_code == 200, reply.text
    new = reply.json()
    assert sorted(new) == ["access_token", "expires_in", "refresh_token", "token_type"]
    assert "set-cookie" not in reply.headers
    assert demo.get("/me", headers=bearer(new["access_token"])).status_code == 200
    # Within REFRESH_REUSE_INTERVAL the rotated-out token gets the same pair (two tabs at once).
    again = demo.post(REFRESH, json={"refresh_token": login["refresh_token"]}).json()
    assert again == new
    bad = demo.post(REFRESH, json={"refresh_token": "r1.nope"})
    assert (bad.status_code, bad.json()) == (
        400,
        {"error": "invalid_grant", "detail": "REFRESH_TOKEN_MALFORMED"},
    )


def test_a_reused_refresh_token_ends_the_session(
    settings: Settings, accounts: accounts_module.Accounts, caplog: pytest.LogCaptureFixture
) -> None:
    """A thief's copy used first: the device's own refresh, later, ends the session for both."""
    settings = dataclasses.replace(settings, refresh_reuse_interval=0)
    with TestClient(create_app(settings, accounts)) as demo:
        login = demo.post(
            "/auth/login", data={"username": "bob", "password": "demo"}, headers=SAME_ORIGIN
        ).json()
        thief = TestClient(demo.app)  # elsewhere: no cookies, and its own copy of the token
        stolen = thief.post(REFRESH, json={"refresh_token": login["refresh_token"]})
        assert stolen.status_code == 200
        with caplog.at_level(logging.WARNING, logger="asgi_kit.sessions"):
            reply = demo.post(REFRESH, headers=SAME_ORIGIN)  # the device's copy: rotated out
        assert (reply.status_code, reply.json()) == (
            400,
            {"error": "invalid_grant", "detail": "REFRESH_TOKEN_REUSED"},
        )
        assert demo.get("/me", headers=bearer(stolen.json()["access_token"])).status_code == 401
        again = thief.post(REFRESH, json={"refresh_token": stolen.json()["refresh_token"]})
        assert again.json()["detail"] == "REFRESH_TOKEN_INVALID"
    (record,) = [r for r in caplog.records if "reason=token_reused" in r.getMessage()]
    assert record.levelno == logging.WARNING
    assert f"id={login['session_id']}" in record.getMessage()


def test_the_cookie_is_secure_over_https(
    settings: Settings, accounts: accounts_module.Accounts
) -> None:
    with TestClient(create_app(settings, accounts), base_url="https://testserver") as client:
        reply = client.post("/auth/login", json={"username": "bob", "password": "demo"})
    assert set_cookie(reply)["secure"] is True


def test_a_login_from_another_origin_is_refused(demo: TestClient) -> None:
    """Login CSRF: a page elsewhere must not sign this browser in to the account it picks."""
    for headers in (ELSEWHERE, {"Origin": "null"}, {"Sec-Fetch-Site": "cross-site"}):
        reply = demo.post(
            "/auth/login", data={"username": "bob", "password": "demo"}, headers=headers
        )
        assert (reply.status_code, reply.json()) == (403, {"detail": "CSRF_FAILED"})
        assert "set-cookie" not in reply.headers
    alice = sign_in(demo, "alice")
    assert demo.get(f"/admin/sessions/users/{BOB}", headers=bearer(alice)).json() == []


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("DELETE", "/auth/sessions"),
        ("DELETE", "/auth/sessions?keep_current=true"),
        ("DELETE", "/auth/sessions/{session_id}"),
        ("DELETE", "/admin/sessions/{session_id}"),
        ("DELETE", f"/admin/sessions/users/{ALICE}"),
        ("POST", "/auth/logout"),
        ("POST", "/auth/sessions/{session_id}"),
        ("POST", "/auth/sessions"),
        ("POST", REAUTHENTICATE),
    ],
)
def test_the_cookie_changes_state_only_from_the_pages_origin(
    demo: TestClient, method: str, path: str
) -> None:
    token = demo.post(
        "/auth/login", json={"username": "alice", "password": "demo"}, headers=SAME_ORIGIN
    ).json()["access_token"]
    session_id = demo.get("/me").json()["session_id"]
    url = path.format(session_id=session_id)
    for headers in ({}, ELSEWHERE, {**SAME_ORIGIN, "Sec-Fetch-Site": "cross-site"}):
        reply = demo.request(method, url, headers=headers)
        assert reply.status_code in (403, 405), (headers, reply.status_code)
        assert demo.get("/me", headers=bearer(token)).status_code == 200  # nothing ended
    if method == "DELETE":
        assert demo.request(method, url, headers=SAME_ORIGIN).status_code == 204
        kept = "keep_current" in path
        assert demo.get("/me", headers=bearer(token)).status_code == (200 if kept else 401)


def test_logout_ends_this_session_and_clears_the_cookie(demo: TestClient) -> None:
    phone = sign_in(demo, user_agent=PHONE)
    demo.post("/auth/login", json={"username": "alice", "password": "demo"}, headers=SAME_ORIGIN)
    reply = demo.post("/auth/logout", headers=SAME_ORIGIN)
    assert reply.status_code == 204
    cleared = set_cookies(reply)
    assert (cleared[COOKIE]["max-age"], cleared[REFRESH_COOKIE]["max-age"]) == ("0", "0")
    assert (cleared[COOKIE]["path"], cleared[REFRESH_COOKIE]["path"]) == ("/", REFRESH)
    assert not demo.cookies
    assert demo.get("/me").status_code == 401
    assert [s["user_agent"] for s in demo.get("/auth/sessions", headers=bearer(phone)).json()] == [
        PHONE
    ]
    assert demo.post("/auth/logout", headers=SAME_ORIGIN).status_code == 401
    assert demo.post("/auth/logout", headers=bearer(phone)).status_code == 204  # API clients too
    assert demo.get("/me", headers=bearer(phone)).status_code == 401


# ---- /me and the session API -----------------------------------------------------------


def test_me_needs_a_session(demo: TestClient) -> None:
    reply = demo.get("/me")
    assert reply.status_code == 401
    assert reply.json() == {"detail": "NOT_AUTHENTICATED"}
    assert demo.get("/me", headers=bearer("made-up")).json() == {"detail": "INVALID_TOKEN"}
    token = sign_in(demo, "bob")
    me = demo.get("/me", headers=bearer(token)).json()
    assert (me["user_id"], me["username"], me["is_admin"]) == (BOB, "bob", False)


def test_list_and_revoke_sessions(demo: TestClient) -> None:
    laptop, phone = sign_in(demo, user_agent=LAPTOP), sign_in(demo, user_agent=PHONE)
    listed = demo.get("/auth/sessions", headers=bearer(laptop)).json()
    assert [(s["user_agent"], s["current"]) for s in listed] == [(PHONE, False), (LAPTOP, True)]
    # TestClient calls itself "testclient": not an IP address, so no address is kept.
    assert all(s["ip_address"] is None and s["created_at"] for s in listed)
    assert all("token" not in key for s in listed for key in s)

    phone_id = listed[0]["id"]
    assert demo.delete(f"/auth/sessions/{phone_id}", headers=bearer(laptop)).status_code == 204
    assert demo.get("/me", headers=bearer(phone)).status_code == 401
    assert [s["user_agent"] for s in demo.get("/auth/sessions", headers=bearer(laptop)).json()] == [
        LAPTOP
    ]
    assert demo.delete(f"/auth/sessions/{phone_id}", headers=bearer(laptop)).status_code == 404


def test_cannot_revoke_someone_elses_session(demo: TestClient) -> None:
    alice, bob = sign_in(demo, "alice"), sign_in(demo, "bob")
    bob_id = demo.get("/me", headers=bearer(bob)).json()["session_id"]
    reply = demo.delete(f"/auth/sessions/{bob_id}", headers=bearer(alice))
    assert reply.status_code == 403
    assert demo.get("/me", headers=bearer(bob)).status_code == 200


def test_log_out_other_devices_then_everywhere(demo: TestClient) -> None:
    tokens = [sign_in(demo) for _ in range(3)]
    keep = bearer(tokens[0])
    assert demo.delete("/auth/sessions?keep_current=true", headers=keep).status_code == 204
    assert [demo.get("/me", headers=bearer(t)).status_code for t in tokens] == [200, 401, 401]
    assert demo.delete("/auth/sessions", headers=keep).status_code == 204
    assert demo.get("/me", headers=keep).status_code == 401


def test_sessions_are_listed_with_their_device_names(demo: TestClient) -> None:
    laptop = sign_in(demo, user_agent=FIREFOX_ON_WINDOWS)
    sign_in(demo, user_agent=PHONE)
    listed = demo.get("/auth/sessions", headers=bearer(laptop)).json()
    devices = [(s["device"]["label"], s["device"]["kind"], s["current"]) for s in listed]
    assert devices == [
        ("Safari on iPhone", "mobile", False),
        ("Firefox on Windows", "desktop", True),
    ]
    assert all(sorted(s["device"]) == ["browser", "kind", "label", "os"] for s in listed)
    assert all(s["authenticated_at"] == s["created_at"] for s in listed)  # the logins
    admin = demo.get(f"/admin/sessions/users/{ALICE}", headers=bearer(laptop)).json()
    assert [s["device"]["label"] for s in admin] == ["Safari on iPhone", "Firefox on Windows"]


# ---- log out everywhere: the password again after REVOKE_ALL_MAX_AGE ---------------------

STEP_UP_CHALLENGE = (
    'Bearer error="insufficient_user_authentication", '
    'error_description="A more recent authentication is required", max_age="1"'
)


def reauthenticate(client: TestClient, password: str, token: str | None = None) -> int:
    """``POST /auth/sessions/reauthenticate`` with a bearer token, or as the page does."""
    headers = SAME_ORIGIN if token is None else bearer(token)
    return client.post(REAUTHENTICATE, json={"password": password}, headers=headers).status_code


@pytest.fixture
def step_up_demo(settings: Settings, accounts: accounts_module.Accounts) -> Iterator[TestClient]:
    """The demo asking for the password to log out everywhere 1 s after a sign-in."""
    quick = dataclasses.replace(settings, revoke_all_max_age=1)
    with TestClient(create_app(quick, accounts)) as client:
        yield client


def test_log_out_everywhere_asks_for_the_password_after_a_while(
    step_up_demo: TestClient,
) -> None:
    demo = step_up_demo
    # An API client's session (a bearer token), then the page's (the cookie, same origin).
    phone = sign_in(demo, "bob", user_agent=PHONE)
    demo.post("/auth/login", data={"username": "bob", "password": "demo"}, headers=SAME_ORIGIN)
    page_session = demo.get("/me").json()["session_id"]
    assert page_session != demo.get("/me", headers=bearer(phone)).json()["session_id"]
    time.sleep(1.1)  # past REVOKE_ALL_MAX_AGE

    reply = demo.delete("/auth/sessions", headers=SAME_ORIGIN)
    assert (reply.status_code, reply.json()) == (401, {"detail": "REAUTHENTICATION_REQUIRED"})
    assert reply.headers["www-authenticate"] == STEP_UP_CHALLENGE
    assert demo.get("/me").status_code == 200  # nothing ended: not the page's session...
    assert demo.get("/me", headers=bearer(phone)).status_code == 200  # ...nor the phone's
    assert demo.delete("/auth/sessions", headers=bearer(phone)).status_code == 401
    # Log out other devices too: it ends every session but one.
    others = demo.delete("/auth/sessions?keep_current=true", headers=SAME_ORIGIN)
    assert (others.status_code, others.headers["www-authenticate"]) == (401, STEP_UP_CHALLENGE)
    assert demo.get("/me", headers=bearer(phone)).status_code == 200

    wrong = demo.post(REAUTHENTICATE, json={"password": "Demo"}, headers=SAME_ORIGIN)
    assert (wrong.status_code, wrong.json()) == (
        400,
        {"detail": "REAUTHENTICATION_BAD_CREDENTIALS"},
    )
    assert demo.get("/me").status_code == 200  # a wrong password does not end the session
    assert demo.delete("/auth/sessions", headers=SAME_ORIGIN).status_code == 401

    right = demo.post(REAUTHENTICATE, json={"password": "demo"}, headers=SAME_ORIGIN)
    assert right.status_code == 204, right.text
    listed = {s["current"]: s for s in demo.get("/auth/sessions").json()}
    mine, other = listed[True], listed[False]
    assert mine["id"] == page_session
    # Python 3.10's fromisoformat does not read "Z".
    moments = (mine[k].replace("Z", "+00:00") for k in ("created_at", "authenticated_at"))
    signed_in, proven = (datetime.fromisoformat(moment) for moment in moments)
    assert proven > signed_in
    assert other["authenticated_at"] == other["created_at"]  # this session's only
    assert demo.delete("/auth/sessions", headers=SAME_ORIGIN).status_code == 204
    assert demo.get("/me").status_code == 401
    assert demo.get("/me", headers=bearer(phone)).status_code == 401  # every session ended


def test_an_api_client_reauthenticates_with_its_bearer_token(step_up_demo: TestClient) -> None:
    demo = step_up_demo
    token, other = sign_in(demo, "alice"), sign_in(demo, "bob")
    demo.cookies.clear()  # an API client keeps no cookies
    time.sleep(1.1)
    others = demo.get("/me", headers=bearer(other)).json()["session_id"]
    body = {"password": "demo", "session_id": others}
    reply = demo.post(REAUTHENTICATE, json=body, headers=bearer(token))
    assert (reply.status_code, reply.json()) == (403, {"detail": "SESSION_NOT_CURRENT"})
    assert reauthenticate(demo, "x", token) == 400
    assert demo.post(REAUTHENTICATE, json={"password": "demo"}).status_code == 401  # no session
    assert reauthenticate(demo, "demo", token) == 204
    assert demo.delete("/auth/sessions", headers=bearer(token)).status_code == 204
    assert demo.get("/me", headers=bearer(other)).status_code == 200  # bob's: not alice's


def test_wrong_passwords_are_limited_per_session(demo: TestClient) -> None:
    token = sign_in(demo, "bob")
    assert [reauthenticate(demo, "guess", token) for _ in range(5)] == [400] * 5
    reply = demo.post(REAUTHENTICATE, json={"password": "demo"}, headers=bearer(token))
    assert (reply.status_code, reply.json()) == (429, {"detail": "REAUTHENTICATION_RATE_LIMITED"})
    assert 800 < int(reply.headers["retry-after"]) <= 900  # 15 minutes from the first
    assert demo.get("/me", headers=bearer(token)).status_code == 200  # still signed in
    fresh = sign_in(demo, "bob")  # counted per session
    assert reauthenticate(demo, "demo", fresh) == 204


def test_the_user_manager_adapter_matches_fastapi_users() -> None:
    """What ``POST /reauthenticate`` calls, shaped as FastAPI Users' ``BaseUserManager``."""
    from fastapi.security import OAuth2PasswordRequestForm

    users = accounts_module.AccountsUserManager(accounts_module.Accounts())
    alice = anyio.run(users.get, users.parse_id(ALICE))
    assert (str(alice.id), alice.email, alice.is_active) == (ALICE, "alice", True)
    with pytest.raises(ValueError, match="hexadecimal UUID"):
        users.parse_id("not-a-uuid")
    with pytest.raises(LookupError):
        anyio.run(users.get, users.parse_id("00000000-0000-4000-8000-000000000009"))
    form = OAuth2PasswordRequestForm(username="alice", password="demo")
    assert anyio.run(users.authenticate, form) == alice
    wrong = OAuth2PasswordRequestForm(username="alice", password="nope")
    assert anyio.run(users.authenticate, wrong) is None


# ---- the admin router --------------------------------------------------------------------


def test_alice_is_the_admin(demo: TestClient) -> None:
    alice, bob = sign_in(demo, "alice"), sign_in(demo, "bob", user_agent=PHONE)
    accounts = demo.get("/admin/accounts", headers=bearer(alice)).json()
    assert [(a["username"], a["is_admin"]) for a in accounts] == [("alice", True), ("bob", False)]
    bobs = demo.get(f"/admin/sessions/users/{BOB}", headers=bearer(alice)).json()
    assert [s["user_agent"] for s in bobs] == [PHONE]
    assert demo.delete(f"/admin/sessions/{bobs[0]['id']}", headers=bearer(alice)).status_code == 204
    assert demo.get("/me", headers=bearer(bob)).status_code == 401
    sign_in(demo, "bob")
    assert demo.delete(f"/admin/sessions/users/{BOB}", headers=bearer(alice)).status_code == 204
    assert demo.get(f"/admin/sessions/users/{BOB}", headers=bearer(alice)).json() == []


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", f"/admin/sessions/users/{ALICE}"),
        ("DELETE", f"/admin/sessions/users/{ALICE}"),
        ("GET", "/admin/accounts"),
    ],
)
def test_bob_is_not(demo: TestClient, method: str, path: str) -> None:
    sign_in(demo, "alice")
    reply = demo.request(method, path, headers=bearer(sign_in(demo, "bob")))
    assert reply.status_code == 403
    assert reply.json() == {"detail": "NOT_AN_ADMIN"}
    demo.cookies.clear()  # bob's login left its cookie in the client's jar
    assert demo.request(method, path).status_code == 401


# ---- files through the bounded cache ----------------------------------------------------


def cache_report(client: TestClient) -> dict[str, Any]:
    reply = client.get("/files-cache")
    assert reply.status_code == 200
    report: dict[str, Any] = reply.json()
    return report


def test_files_are_listed_and_served(demo: TestClient) -> None:
    listed = demo.get("/files").json()
    paths = [f["path"] for f in listed]
    assert {"hello.txt", "data/cities.csv"} <= set(paths)
    assert paths == sorted(paths)
    for path in ("hello.txt", "data/cities.csv"):
        reply = demo.get(f"/files/{path}")
        assert reply.status_code == 200
        assert reply.content == (SAMPLE_FILES / path).read_bytes()
    hello = demo.get("/files/hello.txt")
    assert hello.headers["content-type"] == "text/plain; charset=utf-8"
    assert "sandbox" in hello.headers["content-security-policy"]
    assert hello.headers["x-content-type-options"] == "nosniff"


def test_cache_busting_variants_share_one_entry(demo: TestClient) -> None:
    empty = {"entries": 0, "bytes": 0, "hits": 0, "misses": 0}
    assert cache_report(demo) == {**empty, "max_entries": 64, "max_bytes": 16 * 2**20}
    size = (SAMPLE_FILES / "hello.txt").stat().st_size
    for query in ("?t=1", "?t=2", "?_=1700000000", "?utm_source=x&cb=9", ""):
        assert demo.get(f"/files/hello.txt{query}").status_code == 200
    report = cache_report(demo)
    assert (report["entries"], report["bytes"], report["misses"], report["hits"]) == (1, size, 1, 4)


def test_major_params_select_another_file(demo: TestClient) -> None:
    """``?version=`` names another object: the sample folder has none, so it is a 404."""
    assert demo.get("/files/hello.txt?version=2&t=5").json() == {"detail": "FILE_NOT_FOUND"}
    assert cache_report(demo)["entries"] == 0


def test_the_cache_is_bounded(tmp_path: Path) -> None:
    settings = Settings(
        session_store_url="memory://",
        files_cache_dir=str(tmp_path / "cache"),
        files_cache_max_entries=2,
        refresh_secret=SECRET,
    )
    with TestClient(create_app(settings)) as client:
        for path in ("hello.txt", "about.md", "data/cities.csv", "data/sensors.json"):
            assert client.get(f"/files/{path}?t=1").status_code == 200
        report = cache_report(client)
    assert (report["entries"], report["misses"], report["max_entries"]) == (2, 4, 2)
    assert len(list((tmp_path / "cache").iterdir())) == 2


@pytest.mark.parametrize(
    "raw_path",
    [
        "..%2Fapp.py",
        "%2E%2E/%2E%2E/pyproject.toml",
        "data/..%2F..%2Fapp.py",
        "%2Fetc%2Fpasswd",
        "/etc/passwd",
        "http://example.com/x",
        "https:%2F%2Fexample.com%2Fx",
        "file:%2F%2F%2Fetc%2Fpasswd",
        "memory://x",
        "simplecache::file:%2F%2F%2Fetc%2Fpasswd",
        "C:%5CWindows%5Cwin.ini",
        ".env",
        "data/.hidden",
        "hello.txt%00.png",
        "a//b",
        "%20hello.txt",
        "/".join(["d"] * 9),
    ],
)
def test_paths_outside_the_root_are_refused(demo: TestClient, raw_path: str) -> None:
    reply = demo.get(f"/files/{raw_path}")
    assert reply.status_code == 400, raw_path
    assert reply.json() == {"detail": "INVALID_FILE_PATH"}
    assert cache_report(demo)["misses"] == 0


def test_normalised_dot_dot_urls_never_reach_a_file(demo: TestClient) -> None:
    """A client may resolve ``..`` itself: the request then misses the files route (JSON 404)."""
    reply = demo.get("/files/../pyproject.toml")
    assert 400 <= reply.status_code < 500
    assert reply.headers["content-type"] == "application/json"
    assert "[project]" not in reply.text


@pytest.mark.parametrize("path", ["missing.txt", "data/missing.csv", "data", "nope/deeper.txt"])
def test_missing_files_are_404_json(demo: TestClient, path: str) -> None:
    reply = demo.get(f"/files/{path}")
    assert reply.status_code == 404
    assert reply.json() == {"detail": "FILE_NOT_FOUND"}


def test_symlinks_out_of_the_root_are_not_followed(tmp_path: Path) -> None:
    root, secret = tmp_path / "root", tmp_path / "secret.txt"
    root.mkdir()
    secret.write_text("do not serve")
    (root / "ok.txt").write_text("fine")
    (root / "leak.txt").symlink_to(secret)
    settings = Settings(
        session_store_url="memory://",
        files_root=f"file://{root}",
        files_cache_dir=str(tmp_path / "cache"),
        refresh_secret=SECRET,
    )
    with TestClient(create_app(settings)) as client:
        assert client.get("/files/ok.txt").text == "fine"
        assert client.get("/files/leak.txt").status_code == 404
        assert [f["path"] for f in client.get("/files").json()] == ["ok.txt"]  # links not listed


def test_any_fsspec_root_works(tmp_path: Path) -> None:
    import fsspec  # type: ignore[import-untyped]

    memory = fsspec.filesystem("memory")
    memory.pipe("/asgi-kit-demo-test/notes/a.txt", b"from memory")
    settings = Settings(
        session_store_url="memory://",
        files_root="memory://asgi-kit-demo-test",
        files_cache_dir=str(tmp_path / "cache"),
        refresh_secret=SECRET,
    )
    try:
        with TestClient(create_app(settings)) as client:
            assert client.get("/files/notes/a.txt?t=1").content == b"from memory"
            assert client.get("/files/notes/a.txt?t=2").content == b"from memory"
            assert cache_report(client)["entries"] == 1
            assert client.get("/files/notes/b.txt").status_code == 404
    finally:
        memory.rm("/asgi-kit-demo-test", recursive=True)


@pytest.mark.parametrize(
    ("path", "safe"),
    [
        ("a.txt", True),
        ("data/b-c_d.2.csv", True),
        ("", False),
        ("a/", False),
        ("..", False),
        ("a/../b", False),
        ("a:b", False),
        ("a\\b", False),
        ("é.txt", False),
        ("x" * 129, False),
    ],
)
def test_is_safe_path(path: str, safe: bool) -> None:
    assert is_safe_path(path) is safe


# ---- the page ------------------------------------------------------------------------------


def test_page_is_served_without_external_assets(demo: TestClient) -> None:
    page = demo.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert 'id="login-form"' in page.text
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert assets
    assert not [a for a in assets if "//" in a]  # same origin only: no CDN
    for asset in ("/static/app.js", "/static/app.css", "/static/favicon.svg"):
        assert demo.get(asset).status_code == 200
    script = demo.get("/static/app.js").text
    for storage in (
        "sessionStorage",
        "localStorage",
        "document.cookie",
        "access_token",
        "refresh_token",
    ):
        assert storage not in script  # the tokens stay in the HttpOnly cookies
    assert "innerHTML" not in script  # user agents are shown as text, never parsed as HTML
    # Devices are named by the API (its "device" field), not by a parser in the page.
    assert "session.device" in script
    for parser in ("describeUserAgent", "deviceKind", "Safari", "Android", "iPhone"):
        assert parser not in script
    # Log out everywhere asks for the password in a dialog of the page, never window.prompt.
    assert 'id="reauth-dialog"' in page.text
    assert "prompt(" not in script


# ---- settings, start-up and persistence ------------------------------------------------------


def test_settings_from_the_environment() -> None:
    assert Settings.from_env({}) == Settings()
    default = Settings()
    assert default.session_store_url.startswith("sqlite:////")
    assert default.session_store_url.endswith("/demo-data/sessions.sqlite3")
    assert Path(default.files_root) == SAMPLE_FILES
    assert (default.access_token_lifetime, default.refresh_reuse_interval) == (300, 10)
    assert (default.refresh_secret, default.refresh_secret_file) == ("", str(SECRET_FILE))
    assert default.revoke_all_max_age == 300
    assert SECRET not in repr(Settings(refresh_secret=SECRET))
    custom = Settings.from_env(
        {
            "SESSION_STORE_URL": "redis://127.0.0.1:6379/3",
            "FILES_ROOT": "memory://x",
            "FILES_CACHE_MAX_ENTRIES": "5",
            "FILES_CACHE_MAX_BYTES": "1000",
            "SESSION_LIFETIME": "60",
            "SESSION_TOUCH_INTERVAL": "1",
            "ACCESS_TOKEN_LIFETIME": "10",
            "REFRESH_REUSE_INTERVAL": "0",
            "REFRESH_SECRET": SECRET,
            "REFRESH_SECRET_FILE": "/tmp/elsewhere",
            "REVOKE_ALL_MAX_AGE": "60",
            "HOST": "::1",
            "PORT": "9000",
        }
    )
    assert (custom.session_store_url, custom.files_root) == (
        "redis://127.0.0.1:6379/3",
        "memory://x",
    )
    assert (custom.files_cache_max_entries, custom.files_cache_max_bytes) == (5, 1000)
    assert (custom.session_lifetime, custom.touch_interval) == (60, 1)
    assert (custom.access_token_lifetime, custom.refresh_reuse_interval) == (10, 0)
    assert (custom.refresh_secret, custom.refresh_secret_file) == (SECRET, "/tmp/elsewhere")
    assert custom.revoke_all_max_age == 60
    assert custom.url == "http://[::1]:9000"


@pytest.mark.parametrize("value", ["0", "-5", "nan", "inf"])
def test_a_revoke_all_max_age_that_is_no_duration_is_refused_at_start_up(
    value: str, accounts: accounts_module.Accounts
) -> None:
    settings = Settings.from_env(
        {"SESSION_STORE_URL": "memory://", "REFRESH_SECRET": SECRET, "REVOKE_ALL_MAX_AGE": value}
    )
    with pytest.raises(ConfigurationError, match="revoke_all_max_age"):
        create_app(settings, accounts)


def test_a_revoke_all_max_age_that_is_no_number_is_refused() -> None:
    with pytest.raises(ValueError, match="soon"):
        Settings.from_env({"REVOKE_ALL_MAX_AGE": "soon"})


def test_redact_and_sqlite_path() -> None:
    assert redact("postgresql://me:secret@db/app") == "postgresql://me:***@db/app"
    assert redact("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
    assert sqlite_path("sqlite:///rel/s.sqlite3") == Path("rel/s.sqlite3")
    assert sqlite_path("sqlite+aiosqlite:////abs/s.sqlite3") == Path("/abs/s.sqlite3")
    assert sqlite_path("sqlite://") is None
    assert sqlite_path("sqlite:///:memory:") is None
    assert sqlite_path("memory://") is None


def test_banner_shows_url_and_accounts(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    with TestClient(create_app(settings)):
        pass
    out = capsys.readouterr().out
    assert "open http://127.0.0.1:8000" in out
    assert "alice / demo   (admin)" in out
    assert "bob / demo" in out
    assert "memory://" in out
    assert "tokens         access 300 s, then refreshed (reuse interval 10 s)" in out
    assert "refresh secret REFRESH_SECRET" in out
    assert "step-up        log out everywhere: password again 300 s after sign-in" in out


def test_sessions_and_refresh_tokens_survive_a_restart_with_sqlite(tmp_path: Path) -> None:
    database = tmp_path / "not-yet" / "sessions.sqlite3"
    secret_file = tmp_path / "data" / "refresh-secret"
    settings = Settings(
        session_store_url=f"sqlite:///{database}",
        files_cache_dir=str(tmp_path / "cache"),
        refresh_secret_file=str(secret_file),
    )
    app = create_app(settings)
    assert not secret_file.exists()  # made at start-up, not when the app is built
    with TestClient(app) as first:
        login = first.post("/auth/login", json={"username": "bob", "password": "demo"}).json()
    assert database.exists()
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    kept = secret_file.read_text()
    with TestClient(create_app(settings)) as second:
        token = login["access_token"]
        assert second.get("/me", headers=bearer(token)).json()["username"] == "bob"
        # The same secret signs and reads refresh tokens after the restart.
        reply = second.post(REFRESH, json={"refresh_token": login["refresh_token"]})
        assert reply.status_code == 200, reply.text
    assert secret_file.read_text() == kept


def test_an_environment_secret_wins_over_the_kept_one(tmp_path: Path) -> None:
    secret_file = tmp_path / "refresh-secret"
    settings = Settings.from_env(
        {
            "SESSION_STORE_URL": "memory://",
            "FILES_CACHE_DIR": str(tmp_path / "cache"),
            "REFRESH_SECRET": SECRET,
            "REFRESH_SECRET_FILE": str(secret_file),
        }
    )
    with TestClient(create_app(settings)) as demo:
        assert sign_in(demo)
    assert not secret_file.exists()


def test_a_kept_secret_that_is_no_secret_is_refused(tmp_path: Path) -> None:
    secret_file = tmp_path / "refresh-secret"
    secret_file.write_text("short\n")
    with pytest.raises(ValueError, match="holds no refresh secret"):
        KeptSecret.at(secret_file)
    secret_file.write_bytes(b"\xff" * 40)
    with pytest.raises(ValueError, match="holds no refresh secret"):
        KeptSecret.at(secret_file)


def test_a_kept_secret_made_meanwhile_by_another_process_is_not_overwritten(
    tmp_path: Path,
) -> None:
    secret_file = tmp_path / "refresh-secret"
    mine, theirs = KeptSecret.at(secret_file), KeptSecret.at(secret_file)
    assert mine.value != theirs.value
    theirs.save()
    with pytest.raises(RuntimeError, match="changed since start-up"):
        mine.save()
    theirs.save()  # saving the same one again is fine
    assert KeptSecret.at(secret_file) == theirs
    assert theirs.value not in repr(theirs)


def test_the_module_level_app_uses_the_environment() -> None:
    from examples.demo import app as module

    assert isinstance(module.app, FastAPI)
    assert module.app.state.settings == Settings.from_env()
