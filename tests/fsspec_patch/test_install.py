"""Activation: entry point, import, install() and uninstall()."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import entry_points

import fsspec
from fsspec.implementations.cached import SimpleCacheFileSystem
from fsspec.registry import known_implementations

import fsspec_patch
from fsspec_patch import CanonicalSimpleCacheFileSystem


def run_python(code: str, **env: str) -> str:
    """Run ``code`` in a fresh interpreter (with extra environment) and return its output."""
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        env={**os.environ, **env},
    )
    return done.stdout.strip()


def test_distribution_registers_the_entry_point() -> None:
    specs = {ep.name: ep.value for ep in entry_points(group="fsspec.specs")}
    assert specs["simplecache"] == "fsspec_patch:CanonicalSimpleCacheFileSystem"


def test_plain_fsspec_uses_the_patch_without_importing_it() -> None:
    out = run_python(
        "import sys, fsspec\n"
        "before = 'fsspec_patch' in sys.modules\n"
        "fs = fsspec.open('simplecache::memory://x').fs\n"
        "print(before, type(fs).__name__)"
    )
    assert out == "False CanonicalSimpleCacheFileSystem"


def test_import_patches_even_after_fsspec_was_reset() -> None:
    out = run_python(
        "import fsspec\n"
        "from fsspec.implementations.cached import SimpleCacheFileSystem as S\n"
        "fsspec.register_implementation('simplecache', S, clobber=True)\n"
        "import fsspec_patch\n"
        "print(fsspec.get_filesystem_class('simplecache').__name__, fsspec_patch.is_installed())"
    )
    assert out == "CanonicalSimpleCacheFileSystem True"


def test_uninstall_and_install_are_idempotent() -> None:
    assert fsspec_patch.is_installed()
    fsspec_patch.uninstall()
    fsspec_patch.uninstall()
    assert not fsspec_patch.is_installed()
    assert fsspec.get_filesystem_class("simplecache") is SimpleCacheFileSystem
    assert known_implementations["simplecache"]["class"] == (
        "fsspec.implementations.cached.SimpleCacheFileSystem"
    )
    assert type(fsspec.open("simplecache::memory://x").fs) is SimpleCacheFileSystem
    fsspec_patch.install()
    fsspec_patch.install()
    assert fsspec.get_filesystem_class("simplecache") is CanonicalSimpleCacheFileSystem
    assert known_implementations["simplecache"]["class"] == (
        "fsspec_patch.CanonicalSimpleCacheFileSystem"
    )
    assert type(fsspec.open("simplecache::memory://x").fs) is CanonicalSimpleCacheFileSystem


def test_global_configuration_through_fsspec_environment_variables() -> None:
    out = run_python(
        "import fsspec\n"
        "fs = fsspec.filesystem('simplecache', target_protocol='memory')\n"
        "print(fs._mapper.major_params, fs._store.limits.max_entries)",
        FSSPEC_SIMPLECACHE_MAJOR_PARAMS="Version,part",
        FSSPEC_SIMPLECACHE_MAX_ENTRIES="50",
    )
    assert out == "('part', 'version') 50"
