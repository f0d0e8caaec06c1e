"""The examples of the concepts pages, the security policy, the upgrade guide and the demo page.

Each test runs a file of ``docs_src/`` that a page includes verbatim and checks what the page
says of it, over HTTP where the page talks about HTTP.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from types import ModuleType

import anyio
import httpx2
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from asgi_kit import (
    ConfigurationError,
    RedisSessionDatabase,
    SessionDatabase,
    SQLAlchemySessionDatabase,
    token_digest,
)
from examples.demo.accounts import Accounts
from examples.demo.app import banner
from examples.demo.files import FileCache
from examples.demo.settings import KeptSecret, Settings
from fastapi_users.extensions.session_manager import SessionManager

from .proxy import TcpProxy
from .servers import REDIS_ADDRESS, REDIS_URL, free_port, require, unique_name

ROOT = Path(__file__).resolve().parents[1]
UNAVAILABLE = {"detail": "SESSION_STORE_UNAVAILABLE"}


def fresh(module: str) -> ModuleType:
    """``module`` imported afresh: its module-level store is a new one."""
    return importlib.reload(importlib.import_module(module))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# --- docs/concepts/request-path.md --------------------------------------------------------


def test_one_store_look_up_per_request_whoever_reads_the_session() -> None:
    example = fresh("docs_src.concepts.one_lookup")
    store, manager = example.store, example.manager
    session = manager.create_session("alice", "token-of-alice")
    with TestClient(example.app) as client:
        for path in ("/me", "/auth/sessions"):
            before = store.lookups
            r = client.get(path, headers=bearer("token-of-alice"))
            assert r.status_code == 200, r.text
            assert store.lookups == before + 1, path  # the middleware's, read by the route
        assert client.get("/me", headers=bearer("token-of-alice")).json() == {"user_id": "alice"}
        listed = client.get("/auth/sessions", headers=bearer("token-of-alice")).json()
        assert [item["id"] for item in listed] == [str(session.id)]

        before = store.lookups
        anonymous = client.get("/me")  # no token: nothing to look up
        assert (anonymous.status_code, anonymous.headers["www-authenticate"]) == (401, "Bearer")
        assert store.lookups == before
        refused = client.get("/me", headers=bearer("not-a-session"))  # one look-up, refused
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"] == 'Bearer error="invalid_token"'
        assert store.lookups == before + 1
        malformed = client.get("/me", headers=bearer("not a b64token"))  # refused unread
        assert malformed.status_code == 401
        assert store.lookups == before + 1


def on_disk(directory: Path) -> bytes:
    """Every byte of every file in ``directory``."""
    return b"".join(path.read_bytes() for path in sorted(directory.iterdir()))


# --- docs/concepts/storage.md ---------------------------------------------------------------


@pytest.mark.anyio
async def test_a_stored_row_holds_the_digest_never_the_token(tmp_path: Path) -> None:
    example = fresh("docs_src.concepts.stored_row")
    tokens: list[str] = []
    real = example.generate_token

    def remembered() -> str:
        tokens.append(real())
        return tokens[-1]

    example.generate_token = remembered  # the example's own tokens, known to the test
    row, read_back = await example.main(f"sqlite:///{tmp_path / 'sessions.sqlite3'}")
    (token,) = tokens
    assert row["token_digest"] == token_digest(token) == hashlib.sha256(token.encode()).hexdigest()
    assert all(token not in str(value) for value in row.values())
    assert token.encode() not in on_disk(tmp_path)  # the database file, its WAL: nowhere
    assert read_back is not None
    assert read_back.token == ""  # read back from a store: no token
    assert read_back.token_digest == row["token_digest"]
    assert (row["user_agent"], row["ip_address"]) == ("curl/8.5.0X-Injected: 1", "203.0.113.7")
    shown = repr(read_back)  # neither the token nor its digest
    assert token not in shown
    assert row["token_digest"] not in shown


# --- docs/concepts/failures.md ------------------------------------------------------------


@asynccontextmanager
async def http(store: SessionDatabase) -> AsyncIterator[httpx2.AsyncClient]:
    example = fresh("docs_src.concepts.outage")
    transport = httpx2.ASGITransport(app=example.create_app(store))
    async with httpx2.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


def assert_unavailable(r: httpx2.Response) -> None:
    assert r.status_code == 503, r.text
    assert r.json() == UNAVAILABLE
    assert r.headers["retry-after"] == "5"


@pytest.mark.anyio
async def test_an_unreachable_store_is_a_503_with_retry_after_never_a_401() -> None:
    # Nothing listens on the port: every connection is refused, as with a server that is down.
    store = RedisSessionDatabase(f"redis://127.0.0.1:{free_port()}/0", timeout=1)
    try:
        async with http(store) as client:
            assert_unavailable(await client.post("/auth/login"))  # your route, the handler
            assert_unavailable(await client.get("/auth/sessions", headers=bearer("a-token")))
            assert_unavailable(await client.delete("/auth/sessions", headers=bearer("a-token")))
            anonymous = await client.get("/auth/sessions")  # no token: no look-up, a 401
            assert anonymous.status_code == 401
    finally:
        await store.aclose()


@pytest.mark.redis
@pytest.mark.anyio
async def test_an_outage_answers_503_and_the_same_token_works_once_it_is_over() -> None:
    require("Redis", REDIS_ADDRESS)
    async with TcpProxy(REDIS_ADDRESS) as proxy:
        url = REDIS_URL.replace(f"{REDIS_ADDRESS[0]}:{REDIS_ADDRESS[1]}", f"127.0.0.1:{proxy.port}")
        store = RedisSessionDatabase(url, key_prefix=f"test:{unique_name('docs')}:", timeout=1)
        try:
            async with http(store) as client:
                login = await client.post("/auth/login")
                assert login.status_code == 200, login.text
                token = login.json()["access_token"]
                assert (
                    await client.get("/auth/sessions", headers=bearer(token))
                ).status_code == 200
                await proxy.cut()
                assert_unavailable(await client.get("/auth/sessions", headers=bearer(token)))
                assert_unavailable(await client.post("/auth/login"))
                await proxy.restore()
                again = await client.get("/auth/sessions", headers=bearer(token))
                assert again.status_code == 200, again.text  # still signed in
                assert len(again.json()) == 1
        finally:
            await store.clear()
            await store.aclose()


@pytest.fixture
def session_api(monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    """The example's module-level app, as it runs without ``SESSION_STORE_URL``: in memory."""
    monkeypatch.delenv("SESSION_STORE_URL", raising=False)
    with TestClient(fresh("docs_src.concepts.outage").app) as client:
        yield client


def test_two_authorization_headers_are_a_400_invalid_request(session_api: TestClient) -> None:
    token = session_api.post("/auth/login").json()["access_token"]
    r = session_api.get("/auth/sessions", headers=[("Authorization", f"Bearer {token}")] * 2)
    assert r.status_code == 400
    assert r.json() == {"detail": "INVALID_REQUEST"}
    assert r.headers["www-authenticate"] == 'Bearer error="invalid_request"'


def test_the_rfc_6750_challenges(session_api: TestClient) -> None:
    none = session_api.get("/auth/sessions")
    assert (none.status_code, none.json()) == (401, {"detail": "NOT_AUTHENTICATED"})
    assert none.headers["www-authenticate"] == "Bearer"
    bad = session_api.get("/auth/sessions", headers=bearer("unknown"))
    assert (bad.status_code, bad.json()) == (401, {"detail": "INVALID_TOKEN"})
    assert bad.headers["www-authenticate"] == 'Bearer error="invalid_token"'


def test_no_redirects_a_trailing_slash_is_a_404_that_ends_nothing(
    session_api: TestClient,
) -> None:
    token = session_api.post("/auth/login").json()["access_token"]
    r = session_api.delete("/auth/sessions/", headers=bearer(token), follow_redirects=False)
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/json"
    assert "location" not in r.headers
    assert session_api.get("/auth/sessions", headers=bearer(token)).status_code == 200


# --- docs/concepts/connections.md ---------------------------------------------------------


@pytest.mark.anyio
async def test_a_store_of_pool_size_20_opens_at_most_20_connections_and_keeps_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'sessions.sqlite3'}")
    store: SQLAlchemySessionDatabase = fresh("docs_src.concepts.pool_size").store
    opened: list[object] = []
    event.listen(store.engine.sync_engine, "connect", lambda conn, _: opened.append(conn))
    manager = SessionManager(session_db=store)
    try:
        await store.create_table()
        tokens = [f"token-{i}" for i in range(40)]
        for token in tokens:
            await manager.create_session(uuid.uuid4(), token)
        rounds = []
        for _ in range(2):
            async with anyio.create_task_group() as tg:
                for token in tokens * 2:  # 80 look-ups at once
                    tg.start_soon(manager.authenticate, token)
            rounds.append(len(opened))
        assert 1 <= rounds[0] <= 20
        assert rounds[1] == rounds[0]  # kept: the second round opens none
    finally:
        await store.aclose()
    with pytest.raises(ConfigurationError, match="pool_size"):
        SQLAlchemySessionDatabase(f"sqlite:///{tmp_path / 'other.sqlite3'}", pool_size=1)


# --- docs/security.md -----------------------------------------------------------------------


@pytest.mark.anyio
async def test_the_audit_log_names_sessions_by_id_never_by_token(
    caplog: pytest.LogCaptureFixture,
) -> None:
    example = fresh("docs_src.concepts.audit_log")
    with caplog.at_level(logging.INFO, logger="asgi_kit.sessions"):
        session = await example.main()
    lines = [r for r in caplog.records if r.name == "asgi_kit.sessions"]
    assert [r.getMessage() for r in lines] == [
        f"session created id={session.id} user=alice",
        f"session ended id={session.id} user=alice reason=logout",
    ]
    for record in lines:
        for value in vars(record).values():
            assert session.token not in str(value)
            assert session.token_digest not in str(value)


# --- docs/demo.md ---------------------------------------------------------------------------


def test_the_demo_banner_is_the_one_shown(tmp_path: Path) -> None:
    settings = Settings.from_env({})  # every default
    files = FileCache(
        settings.files_root,
        settings.files_cache_dir,
        max_entries=settings.files_cache_max_entries,
        max_bytes=settings.files_cache_max_bytes,
    )
    kept = KeptSecret(Path(settings.refresh_secret_file), "s" * 48)
    printed = banner(settings, Accounts(), files, kept).replace(str(ROOT), "/…").splitlines()
    shown = (ROOT / "docs_src/demo/banner.txt").read_text(encoding="utf-8").splitlines()
    for lines in (printed, shown):  # a rule above and below, as long as the longest line
        assert set(lines[0]) == set(lines[-1]) == {"-"}
    assert printed[1:-1] == shown[1:-1]
