"""The public API is exactly what ``__all__`` says, and every public name is documented."""

from __future__ import annotations

import importlib
import inspect

import pytest

import asgi_kit
import fsspec_patch
from fastapi_users.extensions import session_manager


@pytest.mark.parametrize("module", [asgi_kit, session_manager, fsspec_patch])
def test_all_names_resolve_and_are_documented(module: object) -> None:
    names = getattr(module, "__all__", [])
    assert names, f"{module} has no __all__"
    for name in names:
        value = getattr(module, name)
        if inspect.isclass(value) or inspect.isfunction(value):
            assert inspect.getdoc(value), f"{module.__name__}.{name} has no docstring"


def test_asgi_kit_public_namespace_matches_all() -> None:
    public = {
        name
        for name, value in vars(asgi_kit).items()
        if not name.startswith("_") and not inspect.ismodule(value) and name != "annotations"
    }
    public -= {"TYPE_CHECKING", "Any", "OPTIONAL", "load_optional", "warnings"}
    assert public <= set(asgi_kit.__all__)


def test_the_optional_stores_are_attributes_outside_all() -> None:
    # A star import must not need the extras (tested without them in test_request_path).
    for name in ("SQLAlchemySessionDatabase", "RedisSessionDatabase", "session_table"):
        assert name not in asgi_kit.__all__
        assert getattr(asgi_kit, name).__name__ == name


def test_fastapi_users_is_a_namespace_package() -> None:
    package = importlib.import_module("fastapi_users")
    assert getattr(package, "__file__", None) is None  # no __init__.py of ours
    assert session_manager.SessionManager.__module__.startswith("fastapi_users.extensions")


def test_missing_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute"):
        _ = asgi_kit.NoSuchThing  # type: ignore[attr-defined]
