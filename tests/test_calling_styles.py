"""create_session in every style users call it, with the in-memory store and a plain dict.

Sync code (TestClient tests, scripts), a worker thread, async code with ``await`` and async
code without it (FastAPI Users-style async tests with ``httpx.AsyncClient``): each must
store the session before the call returns, return a real ``Session``, and run the
lifecycle hooks exactly once.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import httpx2
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from asgi_kit import InMemorySessionDatabase, Session, SyncUsageError
from fastapi_users.extensions.session_manager import EndReason, SessionManager

from .conftest import bearer

STORES: dict[str, Callable[[], Any]] = {"memory": InMemorySessionDatabase, "dict": dict}


class Recording(SessionManager):
    """A manager whose hooks record what they were called with."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.created: list[uuid.UUID] = []
        self.ended: list[tuple[uuid.UUID, EndReason]] = []

    async def on_after_create(self, session: Session) -> None:
        self.created.append(session.id)

    async def on_after_end(self, session: Session, reason: EndReason) -> None:
        self.ended.append((session.id, reason))


def app_for(manager: SessionManager) -> FastAPI:
    app = FastAPI()
    app.include_router(manager.router, prefix="/auth/sessions")
    return app


@pytest.fixture(params=list(STORES))
def manager(request: pytest.FixtureRequest) -> Recording:
    return Recording(session_db=STORES[request.param](), max_sessions_per_user=1)


def check_is_a_real_session(session: object, user_id: object, token: str) -> None:
    assert isinstance(session, Session)
    assert str(session.user_id) == str(user_id)
    assert session.token == token
    assert hasattr(session, "id")
    assert not hasattr(session, "no_such_field")
    assert getattr(session, "no_such_field", "default") == "default"


# --- sync code: TestClient tests and scripts -------------------------------------------


@pytest.mark.parametrize("user_id", [uuid.uuid4(), "user1", 42, "auth0|5f7c8ec7c33c6c004bbafe82"])
def test_sync_code(manager: Recording, user_id: object) -> None:
    session = manager.create_session(user_id, "tok-sync")  # type: ignore[arg-type]
    check_is_a_real_session(session, user_id, "tok-sync")
    assert manager.created == [session.id]
    with TestClient(app_for(manager)) as client:
        r = client.get("/auth/sessions", headers=bearer("tok-sync"))
        assert r.status_code == 200
        assert [(s["id"], s["user_id"]) for s in r.json()] == [(str(session.id), str(user_id))]
    second = manager.create_session(user_id, "tok-sync-2")  # type: ignore[arg-type]
    assert manager.created == [session.id, second.id]
    assert manager.ended == [(session.id, EndReason.EVICTED)]  # the cap of 1, once


async def awaited(session: Any) -> Any:
    return await session


def test_sync_result_can_be_awaited_later_to_itself(manager: Recording) -> None:
    session = manager.create_session(uuid.uuid4(), "tok")
    assert anyio.run(awaited, session) is session
    assert len(manager.created) == 1


# --- async code: FastAPI Users-style tests with httpx.AsyncClient ----------------------


@pytest.fixture
async def client(manager: Recording) -> AsyncIterator[httpx2.AsyncClient]:
    transport = httpx2.ASGITransport(app=app_for(manager))
    async with httpx2.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


async def listed(client: httpx2.AsyncClient, token: str) -> list[str]:
    r = await client.get("/auth/sessions", headers=bearer(token))
    assert r.status_code == 200, r.text
    return [s["id"] for s in r.json()]


@pytest.mark.anyio
@pytest.mark.parametrize("user_id", [str(uuid.uuid4()), "user1", 42])
async def test_async_code_without_await(
    manager: Recording, client: httpx2.AsyncClient, user_id: object
) -> None:
    session = manager.create_session(user_id, "tok-a")  # type: ignore[arg-type]
    check_is_a_real_session(session, user_id, "tok-a")
    assert await manager.authenticate("tok-a") == session  # stored before the call returned
    assert await listed(client, "tok-a") == [str(session.id)]
    assert manager.created == [session.id]  # the hooks ran (in a task) by the next await
    assert (await session) is session
    assert manager.created == [session.id]  # awaiting later runs nothing twice


@pytest.mark.anyio
async def test_async_code_with_await(manager: Recording, client: httpx2.AsyncClient) -> None:
    user_id = uuid.uuid4()
    first = await manager.create_session(user_id, "tok-1")
    assert manager.created == [first.id]  # awaited: the hooks have run
    second = await manager.create_session(str(user_id), "tok-2")  # the same user
    assert manager.ended == [(first.id, EndReason.EVICTED)]
    assert await listed(client, "tok-2") == [str(second.id)]
    assert (await client.get("/auth/sessions", headers=bearer("tok-1"))).status_code == 401


@pytest.mark.anyio
async def test_hooks_run_once_when_never_awaited(manager: Recording) -> None:
    first = manager.create_session("u", "tok-1")
    second = manager.create_session("u", "tok-2")  # evicts the first (cap of 1)
    await anyio.lowlevel.checkpoint()  # one loop iteration: the hook tasks run
    await anyio.lowlevel.checkpoint()
    assert manager.created == [first.id, second.id]
    assert manager.ended == [(first.id, EndReason.EVICTED)]


@pytest.mark.anyio
async def test_sync_code_in_a_worker_thread(manager: Recording, client: httpx2.AsyncClient) -> None:
    session = await anyio.to_thread.run_sync(manager.create_session, "user1", "tok-t")
    check_is_a_real_session(session, "user1", "tok-t")
    assert manager.created == [session.id]
    assert await listed(client, "tok-t") == [str(session.id)]
    assert (await session) is session


@pytest.mark.anyio
async def test_bad_arguments_raise_at_the_call_without_await(manager: Recording) -> None:
    with pytest.raises(ValueError, match="user id"):
        manager.create_session(None, "tok")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="b64token"):
        manager.create_session("u", "not a token")
    assert manager.created == []


# --- a server store without await: impossible to miss ----------------------------------


@pytest.fixture
async def sqlite_manager(tmp_path: Path) -> AsyncIterator[SessionManager]:
    from asgi_kit import SQLAlchemySessionDatabase

    store = SQLAlchemySessionDatabase(f"sqlite:///{tmp_path / 's.sqlite3'}")
    await store.create_table()
    yield SessionManager(session_db=store)
    await store.aclose()


@pytest.mark.anyio
async def test_a_server_store_without_await_warns_at_the_call(
    sqlite_manager: SessionManager,
) -> None:
    # CPython frees the dropped result at the end of the statement: the warning is raised
    # right there, in the test that made the mistake.
    with pytest.warns(RuntimeWarning, match=r"not awaited.*await manager\.create_session"):
        sqlite_manager.create_session("u", "tok")
    assert await sqlite_manager.get_sessions("u") == []
    pending = sqlite_manager.create_session("u", "tok")
    with pytest.raises(SyncUsageError, match=r"must be awaited.*await manager\.create_session"):
        _ = pending.id
    session = await pending  # and awaiting it works
    assert await sqlite_manager.get_sessions("u") == [session]
    with pytest.raises(SyncUsageError, match="awaited already"):
        await pending


def test_a_server_store_in_sync_code_is_refused(tmp_path: Path) -> None:
    from asgi_kit import SQLAlchemySessionDatabase

    manager = SessionManager(session_db=SQLAlchemySessionDatabase(f"sqlite:///{tmp_path}/s.db"))
    with pytest.raises(SyncUsageError, match=r"await manager\.create_session"):
        manager.create_session("u", "tok")
