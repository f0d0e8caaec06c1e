"""Shared fixtures: the anyio backend, stores for the contract suite, apps and clients."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from asgi_kit import InMemorySessionDatabase, SessionDatabase
from fastapi_users.extensions.session_manager import SessionManager

from .cluster import redis_cluster
from .stores import KIND_MARKS, STORE_KINDS, open_store

__all__ = ["redis_cluster"]  # a fixture: every test may ask for it by name


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=[pytest.param(k, marks=KIND_MARKS.get(k, ())) for k in STORE_KINDS])
async def store(request: pytest.FixtureRequest, tmp_path: Any) -> AsyncIterator[SessionDatabase]:
    """Every store kind, each isolated and cleaned up (the contract suite runs on all)."""
    kind = request.param
    # Started once per run, and only when a test of this kind runs.
    cluster = request.getfixturevalue("redis_cluster") if kind == "redis-cluster" else None
    async with open_store(kind, tmp_path, cluster=cluster) as db:
        yield db


@pytest.fixture
def memory_store() -> InMemorySessionDatabase:
    return InMemorySessionDatabase()


@pytest.fixture
def manager(memory_store: InMemorySessionDatabase) -> SessionManager:
    return SessionManager(session_db=memory_store)


def make_app(manager: SessionManager, **admin: Any) -> FastAPI:
    """A FastAPI app that mounts the session router the way the README says."""
    app = FastAPI()
    app.include_router(manager.router, prefix="/auth/sessions")
    if admin:
        app.include_router(manager.get_admin_router(**admin), prefix="/admin/sessions")
    return app


@pytest.fixture
def client(manager: SessionManager) -> Iterator[TestClient]:
    with TestClient(make_app(manager)) as c:
        yield c


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def login(manager: SessionManager) -> Callable[..., tuple[uuid.UUID, str]]:
    """Create a session synchronously; returns (user_id, token)."""

    def _login(user_id: uuid.UUID | None = None, **kwargs: Any) -> tuple[uuid.UUID, str]:
        user_id = user_id or uuid.uuid4()
        token = f"tok-{uuid.uuid4().hex}"
        manager.create_session(user_id, token, **kwargs)
        return user_id, token

    return _login
