"""The minimal examples: plain Starlette and a raw ASGI app, each behind the middleware."""

from __future__ import annotations

import importlib
import uuid
from types import ModuleType

import pytest
from starlette.testclient import TestClient


def load(name: str) -> ModuleType:
    """Import ``examples.<name>`` afresh, so every test gets an empty in-memory store."""
    module = importlib.import_module(f"examples.{name}")
    return importlib.reload(module)


def test_starlette_example_login_then_me() -> None:
    example = load("starlette_app")
    with TestClient(example.app) as client:
        assert client.get("/me").status_code == 403  # @requires answers 403 to anonymous
        token = client.post("/login").text
        reply = client.get("/me", headers={"Authorization": f"Bearer {token}"})
        assert reply.status_code == 200
        uuid.UUID(reply.text)
        other = client.post("/login").text
        assert client.get("/me", headers={"Authorization": f"Bearer {other}"}).text != reply.text
        assert client.get("/me", headers={"Authorization": "Bearer nope"}).status_code == 403


def test_raw_asgi_example_login_then_hello() -> None:
    example = load("raw_asgi_app")
    with TestClient(example.app) as client:  # runs the example's lifespan too
        anonymous = client.get("/")
        assert (anonymous.status_code, anonymous.headers["content-type"]) == (
            401,
            "text/plain; charset=utf-8",
        )
        token = client.post("/login").text
        reply = client.get("/anything", headers={"Authorization": f"Bearer {token}"})
        assert reply.status_code == 200
        assert reply.text.startswith("user ")
        uuid.UUID(reply.text.removeprefix("user "))


@pytest.mark.parametrize("name", ["starlette_app", "raw_asgi_app"])
def test_examples_stay_small(name: str) -> None:
    source = load(name).__file__
    assert source is not None
    with open(source, encoding="utf-8") as f:
        assert len(f.read().splitlines()) < 40
