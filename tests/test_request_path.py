"""One request path: a request's session is looked up once, whoever asks for it.

The middleware, Starlette's ``AuthenticationMiddleware`` with ``SessionAuthBackend``,
``manager.current_session`` (and the routers), and the FastAPI Users strategy all read it
through ``resolve_request``; these tests count the store's look-ups over HTTP.
"""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from typing import Any

import pytest
from fastapi import Depends, FastAPI
from fastapi.security import OAuth2PasswordBearer
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import asgi_kit
from asgi_kit import (
    BearerAuthMiddleware,
    ConfigurationError,
    InMemorySessionDatabase,
    Session,
    SessionAuthBackend,
    request_session,
)
from fastapi_users.extensions.session_manager import SessionManager, SessionStrategy

from .conftest import bearer


class CountingStore(InMemorySessionDatabase):
    """The in-memory store, counting token look-ups (the real store does the work)."""

    lookups = 0

    async def get_by_token_digest(self, digest: str) -> Session | None:
        self.lookups += 1
        return await super().get_by_token_digest(digest)


class UserDatabase:
    def __init__(self, users: dict[str, Any]) -> None:
        self.users = users

    async def get(self, id: str) -> Any:
        return self.users.get(id)


class UserManager:
    """What the strategy needs of FastAPI Users' user manager (string ids here)."""

    def __init__(self, users: dict[str, Any]) -> None:
        self.user_db = UserDatabase(users)

    def parse_id(self, value: Any) -> str:
        return str(value)


class User:
    def __init__(self, id: str) -> None:
        self.id = id


def fastapi_app(manager: SessionManager, user: User) -> FastAPI:
    """/me through the strategy (as FastAPI Users' current_user), /logout, /auth/sessions."""
    app = FastAPI()
    app.include_router(manager.router, prefix="/auth/sessions")
    user_manager = UserManager({user.id: user})
    strategy = Depends(manager.strategy)

    @app.get("/me")
    async def me(request: Request, s: SessionStrategy[Any] = strategy) -> dict[str, Any]:
        token = request.headers["authorization"].split()[1]
        found = await s.read_token(token, user_manager)
        return {"user": None if found is None else found.id}

    @app.post("/logout")
    async def logout(request: Request, s: SessionStrategy[Any] = strategy) -> None:
        await s.destroy_token(request.headers["authorization"].split()[1], user)

    @app.get("/current")
    async def current(session: Session = Depends(manager.current_session)) -> dict[str, str]:
        return {"user": str(session.user_id)}

    app.add_middleware(BearerAuthMiddleware, session_db=manager)
    return app


@pytest.fixture
def store() -> CountingStore:
    return CountingStore()


def test_one_look_up_per_request_through_the_strategy_and_the_routes(store: CountingStore) -> None:
    manager, user = SessionManager(session_db=store), User("user1")
    manager.create_session(user.id, "tok")
    with TestClient(fastapi_app(manager, user)) as client:
        for path in ("/me", "/current", "/auth/sessions"):
            before = store.lookups
            r = client.get(path, headers=bearer("tok"))
            assert r.status_code == 200, (path, r.text)
            assert store.lookups == before + 1, path
        assert client.get("/me", headers=bearer("tok")).json() == {"user": "user1"}
        before = store.lookups
        assert client.post("/logout", headers=bearer("tok")).status_code == 200
        assert store.lookups == before + 1  # logout ends the resolved session, no second look-up
        before = store.lookups
        assert client.get("/me", headers=bearer("tok")).json() == {"user": None}
        assert store.lookups == before + 1  # a refused token is not looked up twice either


def test_a_token_other_than_the_requests_own_is_looked_up(store: CountingStore) -> None:
    manager = SessionManager(session_db=store)
    manager.create_session("user1", "mine")
    other = manager.create_session("user2", "other")
    request = Request({"type": "http", "headers": [(b"authorization", b"Bearer mine")]})
    strategy = SessionStrategy(manager, request)
    users = UserManager({"user1": User("user1"), "user2": User("user2")})
    found = anyio_run(strategy.read_token("other", users))
    assert found is not None
    assert found.id == str(other.user_id)
    assert store.lookups == 2  # the request's own token, then the other one


def anyio_run(work: Any) -> Any:
    import anyio

    async def run() -> Any:
        return await work

    return anyio.run(run)


def test_the_resolver_resolves_a_scope_once_and_leaves_fresh_starlette_objects(
    store: CountingStore,
) -> None:
    manager = SessionManager(session_db=store)
    session = manager.create_session("user1", "tok")
    scopes = [{"type": "http", "headers": [(b"authorization", b"Bearer tok")]} for _ in range(2)]
    for scope in scopes:
        assert anyio_run(manager.resolver.resolve_scope(scope)) == session
        assert anyio_run(manager.resolver.resolve_scope(scope)) == session  # read back
        assert scope[asgi_kit.SCOPE_KEY] == session
        assert scope["user"].identity == "user1"
        assert scope["user"].is_authenticated
    assert store.lookups == 2  # one per request
    first, second = (scope["auth"] for scope in scopes)
    first.scopes.append("admin")  # one request's change never reaches another
    assert second.scopes == ["authenticated"]
    anonymous: dict[str, Any] = {"type": "http", "headers": []}
    assert anyio_run(manager.resolver.resolve_scope(anonymous)) is asgi_kit.AnonymousReason.MISSING
    assert anonymous["auth"].scopes == []
    assert not anonymous["user"].is_authenticated


def test_starlette_with_the_backend_adapter_looks_up_once(store: CountingStore) -> None:
    manager = SessionManager(session_db=store)
    manager.create_session("user1", "tok")

    async def me(request: Request) -> JSONResponse:
        session = request_session(request)
        return JSONResponse({"user": None if session is None else str(session.user_id)})

    backend = SessionAuthBackend(manager)
    middleware = [Middleware(AuthenticationMiddleware, backend=backend)]
    app = Starlette(routes=[Route("/me", me)], middleware=middleware)
    with TestClient(app) as client:
        assert client.get("/me", headers=bearer("tok")).json() == {"user": "user1"}
    assert store.lookups == 1


def test_the_manager_configures_store_and_touch_interval_once() -> None:
    manager = SessionManager(touch_interval=5)
    middleware = BearerAuthMiddleware(FastAPI(), session_db=manager)
    assert middleware.resolver is manager.resolver
    assert SessionAuthBackend(manager).resolver is manager.resolver
    with pytest.raises(ConfigurationError, match="touch_interval"):
        BearerAuthMiddleware(FastAPI(), session_db=manager, touch_interval=60)
    plain = BearerAuthMiddleware(FastAPI(), session_db=InMemorySessionDatabase())
    assert plain.resolver.touch_interval.total_seconds() == 60  # a store: as before


@pytest.mark.parametrize(
    ("old", "new"), [("AuthError", "AnonymousReason"), ("get_session", "request_session")]
)
def test_renamed_names_still_work_with_a_deprecation_warning(old: str, new: str) -> None:
    with pytest.warns(DeprecationWarning, match=f"asgi_kit.{old} is now asgi_kit.{new}"):
        assert getattr(asgi_kit, old) is getattr(asgi_kit, new)


# --- every entry point gives the same outcome for the same header -------------------------


def entry_point_apps(manager: SessionManager) -> dict[str, Any]:
    async def starlette_me(request: Request) -> JSONResponse:
        session = request_session(request)
        return JSONResponse({"user": None if session is None else str(session.user_id)})

    def fastapi_app_with(dependency: Any) -> FastAPI:
        app = FastAPI()

        @app.get("/me")
        async def me(session: Any = Depends(dependency)) -> dict[str, Any]:
            return {"user": None if session is None else str(session.user_id)}

        return app

    async def optional(request: Request) -> Session | None:
        return request_session(request)

    users = UserManager({"user1": User("user1")})
    transport = OAuth2PasswordBearer(tokenUrl="login", auto_error=False)  # FastAPI Users' own

    async def via_strategy(
        token: str | None = Depends(transport), s: SessionStrategy[Any] = Depends(manager.strategy)
    ) -> Any:
        user = await s.read_token(token, users)
        return None if user is None else Session(user_id=user.id, token="x")

    backend = SessionAuthBackend(manager)
    return {
        "middleware": BearerAuthMiddleware(fastapi_app_with(optional), session_db=manager),
        "backend": Starlette(
            routes=[Route("/me", starlette_me)],
            middleware=[Middleware(AuthenticationMiddleware, backend=backend)],
        ),
        "dependency": fastapi_app_with(manager.current_session),
        "strategy": fastapi_app_with(via_strategy),
    }


_HEADER_TEXT = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40)
HEADERS = st.one_of(
    st.just("Bearer tok"),
    st.just("bearer tok"),
    st.just("Bearer  tok"),
    st.builds(lambda t: "Bearer " + t, _HEADER_TEXT),
    _HEADER_TEXT,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(header=HEADERS)
def test_every_entry_point_agrees_on_every_header(header: str) -> None:
    manager = SessionManager()
    manager.create_session("user1", "tok")
    outcomes = {}
    for name, app in entry_point_apps(manager).items():
        with TestClient(app) as client:
            r = client.get("/me", headers={"Authorization": header})
        user = r.json().get("user") if r.status_code == 200 else None
        outcomes[name] = user
    strategy = outcomes.pop("strategy")
    assert len(set(outcomes.values())) == 1, outcomes
    valid = header in ("Bearer tok", "bearer tok", "Bearer  tok")
    assert outcomes["middleware"] == ("user1" if valid else None)
    # The strategy gets the token FastAPI Users' transport extracted: where that parse
    # differs from RFC 6750's (extra spaces), it may refuse, never find someone else.
    simple = re.fullmatch(r"[Bb][Ee][Aa][Rr][Ee][Rr] [^ ]*", header) is not None
    assert strategy == outcomes["middleware"] if simple else strategy in (None, "user1")


# --- without the extras ---------------------------------------------------------------------


def test_the_core_imports_without_the_extras_and_stores_say_which_to_install() -> None:
    code = """
import sys
class NoExtras:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("sqlalchemy", "aiosqlite", "asyncpg", "redis"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, NoExtras())
from asgi_kit import *
import asgi_kit
from asgi_kit import InMemorySessionDatabase, session_database_from_url
session_database_from_url("memory://")
for call in (lambda: session_database_from_url("sqlite:///x.db"),
             lambda: session_database_from_url("redis://h"),
             lambda: asgi_kit.SQLAlchemySessionDatabase, lambda: asgi_kit.RedisSessionDatabase,
             lambda: asgi_kit.session_table):
    try:
        call()
    except ImportError as exc:
        print(exc)
    else:
        print("no error")
"""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 5, result.stdout
    assert "pip install 'asgi-kit[sqlalchemy]'" in lines[0]
    assert "pip install 'asgi-kit[redis]'" in lines[1]
    assert "asgi-kit[sqlalchemy]" in lines[2]
    assert "asgi-kit[redis]" in lines[3]
    assert "asgi-kit[sqlalchemy]" in lines[4]
    assert all(
        line.startswith(("SQLAlchemySessionDatabase", "RedisSessionDatabase", "session_table"))
        for line in lines
    )


def test_an_unknown_user_is_never_another_one() -> None:
    manager = SessionManager()
    manager.create_session(uuid.uuid4(), "tok")
    with TestClient(fastapi_app(manager, User("someone-else"))) as client:
        assert client.get("/me", headers=bearer("tok")).json() == {"user": None}
