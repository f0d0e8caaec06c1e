"""The public API is exactly what ``__all__`` says, and every public name is documented."""

from __future__ import annotations

import importlib
import inspect
import logging
from collections.abc import Iterator
from pathlib import Path

import griffe
import pytest

import asgi_kit
import fsspec_patch
from fastapi_users.extensions import session_manager

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("asgi_kit", "fastapi_users.extensions.session_manager", "fsspec_patch")
#: Where our code lives: members inherited from elsewhere (Exception, fsspec) are not ours.
OURS = ("asgi_kit.", "fastapi_users.extensions.", "fsspec_patch.")
#: Public attributes of ``asgi_kit`` outside ``__all__``: loaded on first use (extras).
OPTIONAL_STORES = ("RedisSessionDatabase", "SQLAlchemySessionDatabase", "session_table")


@pytest.fixture(scope="module")
def api() -> griffe.ModulesCollection:
    """Our packages as griffe reads them: the same docstrings the reference page renders."""
    loader = griffe.GriffeLoader(search_paths=[str(ROOT)], docstring_parser=griffe.Parser.google)
    for package in PACKAGES:
        loader.load(package)
    loader.resolve_aliases(implicit=False, external=False)
    return loader.modules_collection


def real(obj: griffe.Object | griffe.Alias) -> griffe.Object:
    """What a name refers to: through re-exports (aliases) to where it is defined."""
    return obj.final_target if isinstance(obj, griffe.Alias) else obj


def public_paths() -> Iterator[str]:
    """The dotted path of every public name: each package's ``__all__``, the optional stores."""
    for package in PACKAGES:
        for name in importlib.import_module(package).__all__:
            yield f"{package}.{name}"
    for name in OPTIONAL_STORES:
        yield f"asgi_kit.{name}"


def documented_parts(api: griffe.ModulesCollection, path: str) -> Iterator[griffe.Object]:
    """The object at ``path`` and, for a class, every public member defined in our code."""
    target = real(api[path])
    yield target
    if not target.is_class:
        return
    for name, member in target.all_members.items():
        if name.startswith("_"):
            continue
        member = real(member)
        if member.path.startswith(OURS) and member.kind in (
            griffe.Kind.FUNCTION,  # methods
            griffe.Kind.ATTRIBUTE,  # properties, fields, enum members, constants
            griffe.Kind.CLASS,
        ):
            yield member


def undocumented(api: griffe.ModulesCollection) -> list[str]:
    missing: set[str] = set()
    for path in public_paths():
        for part in documented_parts(api, path):
            if part.docstring is None or not part.docstring.value.strip():
                missing.add(f"{part.path} ({part.kind.value}, public as {path})")
    return sorted(missing)


def test_every_public_name_and_member_has_a_docstring(api: griffe.ModulesCollection) -> None:
    # Classes, functions, constants and type aliases, and each public class's methods,
    # properties and attributes: a constant's docstring is the string literal after it.
    missing = undocumented(api)
    assert not missing, "no docstring:\n" + "\n".join(missing)


def test_the_docstrings_parse_as_google_style(
    api: griffe.ModulesCollection, caplog: pytest.LogCaptureFixture
) -> None:
    # What mkdocstrings renders: a section that does not parse (an ``Args:`` entry naming no
    # parameter, a bad indent) is a warning of griffe's, which the strict build refuses.
    seen: set[str] = set()
    with caplog.at_level(logging.WARNING, logger="griffe"):
        for path in public_paths():
            for part in documented_parts(api, path):
                if part.path not in seen and part.docstring is not None:
                    seen.add(part.path)
                    part.docstring.parse(griffe.Parser.google)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert not warnings, "\n".join(warnings)
    assert len(seen) > 300  # the walk reached the members, not only the names


def test_the_check_finds_a_missing_docstring(api: griffe.ModulesCollection) -> None:
    # The walk must see members and constants, not only classes and functions.
    for path in (
        "asgi_kit._cookies.SessionCookie",  # a class
        "asgi_kit._stores.sql.SQLAlchemySessionDatabase.create_table",  # an optional store's method
        "fastapi_users.extensions.session_manager.SessionManager.router",  # a property
        "fsspec_patch._store.DEFAULT_MAX_BYTES",  # a constant
        "asgi_kit._models.Session.token_digest",  # a field
    ):
        obj = api[path]
        saved, obj.docstring = obj.docstring, None
        try:
            assert any(line.startswith(path + " ") for line in undocumented(api)), path
        finally:
            obj.docstring = saved


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
    assert set(OPTIONAL_STORES) == set(asgi_kit.OPTIONAL)
    for name in OPTIONAL_STORES:
        assert name not in asgi_kit.__all__
        assert getattr(asgi_kit, name).__name__ == name


def test_fastapi_users_is_a_namespace_package() -> None:
    package = importlib.import_module("fastapi_users")
    assert getattr(package, "__file__", None) is None  # no __init__.py of ours
    assert session_manager.SessionManager.__module__.startswith("fastapi_users.extensions")


def test_missing_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute"):
        _ = asgi_kit.NoSuchThing  # type: ignore[attr-defined]
