"""The persistent stores behind real apps: new processes, two instances, fifty clients, outages.

The tests run against the real SQLite file, PostgreSQL server and Redis server (see
``tests/servers.py``), over HTTP through ``SessionManager`` and ``BearerAuthMiddleware``
except where a background task or a single look-up is the subject. Outages go through
``tests/proxy.py``: a server that dies mid-request, one that stops answering, cancellation.
"""

from __future__ import annotations

import json
import logging
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
import redis.asyncio as aioredis
from fastapi import FastAPI, Request
from sqlalchemy import func, select
from sqlalchemy.pool import QueuePool
from starlette.types import ASGIApp

from asgi_kit import (
    BearerAuthMiddleware,
    ErrorCode,
    RedisSessionDatabase,
    Session,
    SessionDatabase,
    SQLAlchemySessionDatabase,
    StoreUnavailableError,
    generate_token,
    store_unavailable_handler,
    utcnow,
)
from fastapi_users.extensions.session_manager import SessionManager

from .proxy import TcpProxy
from .servers import REDIS_URL, unique_name, wait_until
from .stores import drop, open_store, server_of, store_behind

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[1]
POSTGRES = pytest.param("postgres", marks=pytest.mark.postgres)
REDIS = pytest.param("redis", marks=pytest.mark.redis)
PERSISTENT = ["sqlite", POSTGRES, REDIS]


UNAVAILABLE = {"detail": ErrorCode.SESSION_STORE_UNAVAILABLE.value}


def make_app(store: SessionDatabase) -> ASGIApp:
    """The session API, plus the login route an app would have, behind the middleware.

    The login's outage is answered by asgi-kit's ``store_unavailable_handler``, as the
    session routes' are (503 JSON with ``Retry-After``).
    """
    manager = SessionManager(session_db=store)
    app = FastAPI()
    app.include_router(manager.router, prefix="/auth/sessions")
    app.add_exception_handler(StoreUnavailableError, store_unavailable_handler)

    @app.post("/login/{user_id}")
    async def login(user_id: str, request: Request) -> dict[str, str]:
        session = await manager.login(request, user_id)
        return {"id": str(session.id), "token": session.token}

    return BearerAuthMiddleware(app, session_db=store)


@asynccontextmanager
async def http(app: ASGIApp) -> AsyncIterator[httpx2.AsyncClient]:
    transport = httpx2.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx2.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@asynccontextmanager
async def shared_store(kind: str, tmp_path: Path) -> AsyncIterator[tuple[str, SessionDatabase]]:
    """A fresh store under a name other processes and instances can open; dropped after."""
    name = unique_name("sessions")
    async with open_store(kind, tmp_path, name=name) as store:
        try:
            yield name, store
        finally:
            await drop(store)


async def login(client: httpx2.AsyncClient, user: uuid.UUID) -> tuple[str, str]:
    r = await client.post(f"/login/{user}")
    assert r.status_code == 200, r.text
    return r.json()["id"], r.json()["token"]


async def listed(client: httpx2.AsyncClient, token: str) -> list[str]:
    r = await client.get("/auth/sessions", headers=bearer(token))
    assert r.status_code == 200, r.text
    return [item["id"] for item in r.json()]


# --- Another process ---------------------------------------------------------------------


def child() -> None:
    """Run by the child process: ``python -c "...; child()" COMMAND KIND TMP NAME JSON``."""
    command, kind, tmp, name, payload = sys.argv[1:6]
    result = anyio.run(_child, command, kind, Path(tmp), name, json.loads(payload))
    print(json.dumps(result))


async def _child(command: str, kind: str, tmp_path: Path, name: str, payload: Any) -> Any:
    async with open_store(kind, tmp_path, name=name) as store:
        manager = SessionManager(session_db=store)
        if command == "create":
            created = [
                await manager.create_session(payload["user"], generate_token(), user_agent="child")
                for _ in range(payload["count"])
            ]
            return [{"id": str(s.id), "token": s.token} for s in created]
        resolved = [await manager.authenticate(token) for token in payload["tokens"]]
        sessions = await manager.get_sessions(payload["user"])
        first = resolved[0]
        revoked = first is not None and await manager.revoke_session(first.id) is not None
        return {
            "resolved": [None if s is None else str(s.id) for s in resolved],
            "listed": [str(s.id) for s in sessions],
            "revoked": revoked,
        }


async def in_new_process(command: str, kind: str, tmp_path: Path, name: str, **payload: Any) -> Any:
    code = "from tests.test_store_servers import child; child()"
    args = [command, kind, str(tmp_path), name, json.dumps(payload, default=str)]
    with anyio.fail_after(60):
        done = await anyio.run_process([sys.executable, "-c", code, *args], cwd=ROOT, check=False)
    assert done.returncode == 0, done.stderr.decode()
    return json.loads(done.stdout.decode().splitlines()[-1])


@pytest.mark.parametrize("kind", PERSISTENT)
async def test_sessions_from_another_process_are_listed_and_accepted(
    kind: str, tmp_path: Path
) -> None:
    async with shared_store(kind, tmp_path) as (name, store), http(make_app(store)) as client:
        user = uuid.uuid4()
        made = await in_new_process("create", kind, tmp_path, name, user=user, count=3)
        ids = [m["id"] for m in made]  # the child process has exited: only the store knows them
        mine = await store.list_for_user(user)
        assert [(str(s.id), s.user_id, type(s.user_id)) for s in mine] == [
            (i, user, type(user)) for i in reversed(ids)
        ]
        for m in made:
            assert await listed(client, m["token"]) == list(reversed(ids))
        r = await client.get("/auth/sessions", headers=bearer(made[0]["token"]))
        assert {item["user_agent"] for item in r.json()} == {"child"}
        assert (
            await client.get("/auth/sessions", headers=bearer("x" + made[0]["token"]))
        ).status_code == 401


@pytest.mark.parametrize("kind", PERSISTENT)
async def test_a_new_process_accepts_and_revokes_sessions_made_here(
    kind: str, tmp_path: Path
) -> None:
    async with shared_store(kind, tmp_path) as (name, store), http(make_app(store)) as client:
        user = uuid.uuid4()
        first, second = [await login(client, user) for _ in range(2)]
        seen = await in_new_process(
            "check", kind, tmp_path, name, user=user, tokens=[first[1], second[1]]
        )
        assert seen == {
            "resolved": [first[0], second[0]],
            "listed": [second[0], first[0]],
            "revoked": True,
        }
        # The other process revoked the first session: this one rejects it on the next request.
        assert (await client.get("/auth/sessions", headers=bearer(first[1]))).status_code == 401
        assert await listed(client, second[1]) == [second[0]]


# --- Two app instances --------------------------------------------------------------------


@pytest.mark.parametrize("kind", PERSISTENT)
async def test_opaque_user_ids_are_one_user_in_every_process(kind: str, tmp_path: Path) -> None:
    async with shared_store(kind, tmp_path) as (name, store):
        user = f"auth0|{uuid.uuid4().hex[:12]}:{{x}} ü"  # separators, braces, unicode
        made = await in_new_process("create", kind, tmp_path, name, user=user, count=2)
        mine = await store.list_for_user(user)
        assert [(str(s.id), s.user_id) for s in mine] == [(m["id"], user) for m in made[::-1]]
        here = await SessionManager(session_db=store).create_session(user, generate_token())
        tokens = [here.token, made[0]["token"]]
        seen = await in_new_process("check", kind, tmp_path, name, user=user, tokens=tokens)
        assert seen == {
            "resolved": [str(here.id), made[0]["id"]],
            "listed": [str(here.id), made[1]["id"], made[0]["id"]],
            "revoked": True,
        }
        assert await store.get(here.id) is None  # revoked by the other process


@pytest.mark.parametrize("kind", PERSISTENT)
async def test_a_revocation_through_one_instance_is_seen_by_the_other(
    kind: str, tmp_path: Path
) -> None:
    async with (
        shared_store(kind, tmp_path) as (name, store_a),
        open_store(kind, tmp_path, name=name) as store_b,
        http(make_app(store_a)) as a,
        http(make_app(store_b)) as b,
    ):
        assert store_a is not store_b
        user = uuid.uuid4()
        (phone, phone_token), (_, laptop_token) = [await login(a, user) for _ in range(2)]
        _, tablet_token = await login(b, user)
        assert len(await listed(b, phone_token)) == 3
        assert len(await listed(a, tablet_token)) == 3

        r = await a.delete(f"/auth/sessions/{phone}", headers=bearer(laptop_token))
        assert r.status_code == 204
        r = await b.get("/auth/sessions", headers=bearer(phone_token))  # B's very next request
        assert r.status_code == 401
        assert r.json() == {"detail": "INVALID_TOKEN"}
        assert phone not in await listed(b, laptop_token)

        r = await b.delete("/auth/sessions", headers=bearer(tablet_token))  # log out everywhere
        assert r.status_code == 204
        for token in (laptop_token, tablet_token):
            assert (await a.get("/auth/sessions", headers=bearer(token))).status_code == 401
        assert await store_a.list_for_user(user) == []


# --- Fifty concurrent clients -------------------------------------------------------------


@pytest.mark.parametrize("kind", PERSISTENT)
async def test_fifty_concurrent_clients_add_up(kind: str, tmp_path: Path) -> None:
    users = [uuid.uuid4() for _ in range(10)]
    statuses: Counter[int] = Counter()
    survivors: dict[uuid.UUID, set[str]] = {u: set() for u in users}
    tokens: dict[uuid.UUID, list[str]] = {u: [] for u in users}
    revoked: list[str] = []

    async with shared_store(kind, tmp_path) as (_, store):
        app = make_app(store)

        async def one_client(i: int) -> None:
            user = users[i % len(users)]
            async with http(app) as client:
                mine = [await login(client, user) for _ in range(3)]
                ids = {sid for sid, _ in mine}
                assert ids <= set(await listed(client, mine[0][1]))  # nothing lost
                r = await client.delete(f"/auth/sessions/{mine[0][0]}", headers=bearer(mine[1][1]))
                statuses[r.status_code] += 1
                after = set(await listed(client, mine[2][1]))
                assert mine[0][0] not in after  # nothing revived
                assert ids - {mine[0][0]} <= after
                r = await client.get("/auth/sessions", headers=bearer(mine[0][1]))
                statuses[r.status_code] += 1
            survivors[user] |= ids - {mine[0][0]}
            tokens[user] += [token for _, token in mine[1:]]
            revoked.append(mine[0][1])

        async with anyio.create_task_group() as tg:
            for i in range(50):
                tg.start_soon(one_client, i)
        assert statuses == {204: 50, 401: 50}

        async with http(app) as client:
            for user in users:
                assert len(survivors[user]) == 10
                assert set(await listed(client, tokens[user][0])) == survivors[user]

            async def revoke_all(user: uuid.UUID) -> None:
                r = await client.delete("/auth/sessions", headers=bearer(tokens[user][0]))
                statuses[r.status_code] += 1

            async def look(token: str) -> None:
                r = await client.get("/auth/sessions", headers=bearer(token))
                statuses[r.status_code] += 1

            statuses.clear()
            async with anyio.create_task_group() as tg:
                for user in users:
                    tg.start_soon(revoke_all, user)
                    for token in tokens[user][1:4]:
                        tg.start_soon(look, token)
            assert statuses[204] == 10
            assert set(statuses) <= {200, 204, 401}  # racing reads see before or after, no 500
            for token in [t for u in users for t in tokens[u]] + revoked:
                r = await client.get("/auth/sessions", headers=bearer(token))
                assert r.status_code == 401
        for user in users:
            assert await store.list_for_user(user) == []


# --- The server goes away -----------------------------------------------------------------


@pytest.mark.parametrize("kind", [POSTGRES, REDIS])
async def test_a_server_outage_is_a_503_then_service_resumes(kind: str) -> None:
    async with (
        TcpProxy(server_of(kind)) as proxy,
        store_behind(kind, proxy) as store,
        http(make_app(store)) as client,
    ):
        user = uuid.uuid4()
        sid, token = await login(client, user)
        assert await listed(client, token) == [sid]

        proxy.hold()  # the next request reaches the proxy but never the server...
        async with anyio.create_task_group() as tg:
            replies: list[httpx2.Response] = []

            async def request() -> None:
                replies.append(await client.get("/auth/sessions", headers=bearer(token)))

            tg.start_soon(request)
            with anyio.fail_after(10):
                await proxy.held.wait()
            await proxy.cut()  # ...which dies while the request is in flight
        assert replies[0].status_code == 503
        assert replies[0].json() == UNAVAILABLE

        for method, path in [("GET", "/auth/sessions"), ("DELETE", "/auth/sessions")]:
            r = await client.request(method, path, headers=bearer(token))
            assert (r.status_code, r.json()) == (503, UNAVAILABLE)
        r = await client.post(f"/login/{user}")
        assert (r.status_code, r.json()) == (503, UNAVAILABLE)

        await proxy.restore()
        assert await listed(client, token) == [sid]  # the session survived the outage
        other_sid, other_token = await login(client, user)
        assert await listed(client, other_token) == [other_sid, sid]


@pytest.mark.parametrize("kind", [POSTGRES, REDIS])
async def test_a_server_that_stops_answering_is_a_503_then_service_resumes(kind: str) -> None:
    async with (
        TcpProxy(server_of(kind)) as proxy,
        store_behind(kind, proxy, wait=0.5) as store,
        http(make_app(store)) as client,
    ):
        user = uuid.uuid4()
        sid, token = await login(client, user)
        assert await listed(client, token) == [sid]

        proxy.hold()  # connections stay open, but nothing reaches the server any more
        with anyio.fail_after(60):  # a request that hangs fails the test instead of the run
            for method, path in [("GET", "/auth/sessions"), ("DELETE", "/auth/sessions")]:
                r = await client.request(method, path, headers=bearer(token))
                assert (r.status_code, r.json()) == (503, UNAVAILABLE)
            with pytest.raises(StoreUnavailableError, match="TimeoutError"):
                await store.list_for_user(user)
        assert proxy.held.is_set()

        await proxy.restore()  # the server answers again (and reads what was held, late)
        assert await listed(client, token) == [sid]
        other_sid, other_token = await login(client, user)
        assert await listed(client, other_token) == [other_sid, sid]


async def tracked(store: SessionDatabase) -> int:
    """How many sessions ``store`` still tracks, read past its API."""
    if isinstance(store, RedisSessionDatabase):
        client = aioredis.Redis.from_url(REDIS_URL)
        try:
            return int(await client.zcard(f"{store.key_prefix}deadlines"))
        finally:
            await client.aclose()
    assert isinstance(store, SQLAlchemySessionDatabase)
    async with store.engine.connect() as conn:
        count = (await conn.execute(select(func.count()).select_from(store.table))).scalar()
    return int(count or 0)


@pytest.mark.parametrize("kind", [POSTGRES, REDIS])
async def test_purge_periodically_outlives_an_outage(
    kind: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="asgi_kit")
    name = unique_name("sessions")
    gone = utcnow() - timedelta(seconds=1)
    expired = [Session(user_id=uuid.uuid4(), token=generate_token(), expires_at=gone) for _ in "ab"]
    async with (
        TcpProxy(server_of(kind)) as proxy,
        store_behind(kind, proxy, name=name, wait=0.5) as store,
        open_store(kind, tmp_path, name=name) as direct,  # the same data, not through the proxy
        anyio.create_task_group() as tasks,
    ):
        await direct.create(expired[0])
        tasks.start_soon(store.purge_periodically, 0.02)

        async def purged() -> bool:
            return await tracked(direct) == 0

        async def failed() -> bool:
            return "purging expired sessions failed" in caplog.text

        await wait_until(purged, "the first session is purged")
        await proxy.cut()
        await wait_until(failed, "a purge fails while the server is away")
        await direct.create(expired[1])
        assert await tracked(direct) == 1
        await proxy.restore()
        await wait_until(purged, "the loop, still running, purges the second session")
        tasks.cancel_scope.cancel()
    assert "session store unavailable" in caplog.text
    for session in expired:
        assert session.token_digest not in caplog.text
        assert session.token not in caplog.text


@pytest.mark.postgres
async def test_a_look_up_cancelled_in_flight_leaves_no_connection_behind() -> None:
    async with (
        TcpProxy(server_of("postgres")) as proxy,
        store_behind("postgres", proxy) as store,
    ):
        assert isinstance(store, SQLAlchemySessionDatabase)
        pool = store.engine.sync_engine.pool
        assert isinstance(pool, QueuePool)
        session = await SessionManager(session_db=store).create_session(uuid.uuid4(), "tok")
        assert await store.get_by_token_digest(session.token_digest) == session
        assert pool.checkedout() == 1  # the connection kept for look-ups

        proxy.hold()
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(store.get_by_token_digest, session.token_digest)
            with anyio.fail_after(10):
                await proxy.held.wait()
            tasks.cancel_scope.cancel()  # as a server does when its client goes away
        assert pool.checkedout() == 0  # that connection, its state unknown, was dropped

        await proxy.restore()
        assert await store.get_by_token_digest(session.token_digest) == session
        assert pool.checkedout() == 1
