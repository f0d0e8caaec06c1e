"""The README's and Getting started's examples, run as users run them: over HTTP.

``docs_src/getting_started/first_app.py`` (the README's FastAPI example, the first app of
docs/getting-started.md) and ``docs_src/readme/starlette_app.py`` (the README's asgi_kit
example); the fsspec one is run in tests/fsspec_patch/test_docs_readme_fsspec.py.
"""

from __future__ import annotations

import importlib
import uuid
from types import ModuleType

import anyio
from starlette.testclient import TestClient

from asgi_kit import Session, generate_token


def fresh(module: str) -> ModuleType:
    """Import ``module`` afresh: a new, empty in-memory store per test."""
    return importlib.reload(importlib.import_module(module))


def test_first_app_login_me_list_and_log_out_everywhere() -> None:
    example = fresh("docs_src.getting_started.first_app")
    with TestClient(example.app) as client:
        wrong = client.post("/auth/login", json={"username": "alice", "password": "guess"})
        assert (wrong.status_code, wrong.json()) == (400, {"detail": "LOGIN_BAD_CREDENTIALS"})
        unknown = client.post("/auth/login", json={"username": "bob", "password": ""})
        assert unknown.status_code == 400

        def login(agent: str) -> dict[str, str]:
            reply = client.post(
                "/auth/login",
                json={"username": "alice", "password": "wonderland"},
                headers={"User-Agent": agent},
            )
            assert reply.status_code == 200, reply.text
            assert reply.json()["token_type"] == "bearer"
            return {"Authorization": f"Bearer {reply.json()['access_token']}"}

        firefox = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"
        laptop, phone = login(firefox), login("curl/8.5.0")
        me = client.get("/me", headers=laptop).json()
        assert me["user"] == "alice"
        assert me["device"]["label"] == "Firefox on Windows"

        listed = client.get("/auth/sessions", headers=phone).json()
        assert [s["current"] for s in listed] == [True, False]
        assert all("token" not in s for s in listed)

        anonymous = client.get("/me")
        assert anonymous.status_code == 401
        assert anonymous.headers["www-authenticate"].startswith("Bearer")
        assert client.delete("/auth/sessions", headers=laptop).status_code == 204
        for headers in (laptop, phone):
            gone = client.get("/me", headers=headers)
            assert gone.status_code == 401
            assert 'error="invalid_token"' in gone.headers["www-authenticate"]


def test_readme_starlette_example_resolves_a_stored_session() -> None:
    example = fresh("docs_src.readme.starlette_app")
    user = uuid.uuid4()
    session = Session(user_id=user, token=generate_token())
    with TestClient(example.app) as client:
        anyio.run(example.store.create, session)
        reply = client.get("/me", headers={"Authorization": f"Bearer {session.token}"})
        assert (reply.status_code, reply.text) == (200, f"hello {user}")
        assert client.get("/me").status_code == 403  # @requires answers 403 to anonymous
        bad = client.get("/me", headers={"Authorization": "Bearer not-a-session"})
        assert bad.status_code == 403
