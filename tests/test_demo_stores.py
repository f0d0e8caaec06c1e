"""``SESSION_STORE_URL`` switches the demo to PostgreSQL or Redis; sessions (their device
names and re-authentications too) outlive a restart.

Each store is private to this test: PostgreSQL's ``postgres`` database (the other store
tests use ``test``) and Redis database 13; whatever the demo wrote is removed afterwards.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import anyio
import pytest
from fastapi.testclient import TestClient

from asgi_kit import session_database_from_url
from examples.demo.accounts import Accounts
from examples.demo.app import create_app
from examples.demo.settings import Settings

from .servers import POSTGRES_ADDRESS, REDIS_ADDRESS, require
from .test_demo import SECRET

STORES = [
    pytest.param(
        "postgresql://postgres@127.0.0.1:5432/postgres",
        ("PostgreSQL", POSTGRES_ADDRESS),
        marks=pytest.mark.postgres,
        id="postgres",
    ),
    pytest.param(
        "redis://127.0.0.1:6379/13", ("Redis", REDIS_ADDRESS), marks=pytest.mark.redis, id="redis"
    ),
]


async def wipe(url: str) -> None:
    """Remove the demo's table or keys from the store at ``url``."""
    store: Any = session_database_from_url(url)
    try:
        if hasattr(store, "drop_table"):
            await store.drop_table()
        else:
            await store.clear()
    finally:
        await store.aclose()


@pytest.mark.parametrize(("url", "server"), STORES)
def test_demo_on_a_server_store(url: str, server: tuple[str, Any], tmp_path: Path) -> None:
    require(*server)
    anyio.run(wipe, url)
    settings = Settings(
        session_store_url=url, files_cache_dir=str(tmp_path / "cache"), refresh_secret=SECRET
    )
    accounts = Accounts()
    login = {"username": "alice", "password": "demo"}
    try:
        with TestClient(create_app(settings, accounts)) as first:
            signed_in = first.post("/auth/login", json=login).json()
            one = signed_in["access_token"]
            two = first.post("/auth/login", json=login).json()["access_token"]
            listed = first.get("/auth/sessions", headers={"Authorization": f"Bearer {one}"})
            assert [s["current"] for s in listed.json()] == [False, True]
            other = listed.json()[0]["id"]
            revoked = first.delete(
                f"/auth/sessions/{other}", headers={"Authorization": f"Bearer {one}"}
            )
            assert revoked.status_code == 204
        with TestClient(create_app(settings, accounts)) as second:  # a restart
            assert second.get("/me", headers={"Authorization": f"Bearer {one}"}).status_code == 200
            assert second.get("/me", headers={"Authorization": f"Bearer {two}"}).status_code == 401
            # The refresh token too: the store rotates it (and the old access token goes).
            refresh = {"refresh_token": signed_in["refresh_token"]}
            renewed = second.post("/auth/sessions/refresh", json=refresh)
            assert renewed.status_code == 200, renewed.text
            new = {"Authorization": f"Bearer {renewed.json()['access_token']}"}
            assert second.get("/me", headers=new).json()["session_id"] == signed_in["session_id"]
            assert second.get("/me", headers={"Authorization": f"Bearer {one}"}).status_code == 401
            # The password again (step-up): the store moves authenticated_at, and keeps it.
            (before,) = second.get("/auth/sessions", headers=new).json()
            reauthenticate = "/auth/sessions/reauthenticate"
            for password, status in (("nope", 400), ("demo", 204)):
                reply = second.post(reauthenticate, json={"password": password}, headers=new)
                assert reply.status_code == status, reply.text
            (after,) = second.get("/auth/sessions", headers=new).json()
            moved = [s["authenticated_at"].replace("Z", "+00:00") for s in (before, after)]
            moved = [datetime.fromisoformat(moment) for moment in moved]  # 3.10: no "Z"
            assert moved[1] > moved[0]
            assert after["device"] == before["device"]
    finally:
        anyio.run(wipe, url)


def test_the_demo_login_answers_503_json_while_its_store_is_down(tmp_path: Path) -> None:
    # Nothing listens on port 9 of loopback: every store call fails at once.
    settings = Settings(
        session_store_url="redis://127.0.0.1:9/0",
        files_cache_dir=str(tmp_path / "cache"),
        refresh_secret=SECRET,
    )
    with TestClient(create_app(settings, Accounts()), raise_server_exceptions=False) as demo:
        r = demo.post("/auth/login", json={"username": "alice", "password": "demo"})
        assert (r.status_code, r.json()) == (503, {"detail": "SESSION_STORE_UNAVAILABLE"})
        assert r.headers["retry-after"] == "5"
        r = demo.get("/auth/sessions", headers={"Authorization": "Bearer some-token"})
        assert (r.status_code, r.headers["retry-after"]) == (503, "5")
        bad = demo.post("/auth/login", json={"username": "alice", "password": "wrong"})
        assert bad.status_code == 401  # checked before the store is needed
