"""Switch fsspec's ``simplecache`` protocol between the patched and the original class."""

from __future__ import annotations

import fsspec  # type: ignore[import-untyped]
from fsspec.implementations.cached import SimpleCacheFileSystem  # type: ignore[import-untyped]

from ._filesystem import CanonicalSimpleCacheFileSystem

__all__ = ["install", "is_installed", "uninstall"]

_PROTOCOL = "simplecache"
_PATCHED = "fsspec_patch.CanonicalSimpleCacheFileSystem"
_ORIGINAL = "fsspec.implementations.cached.SimpleCacheFileSystem"
# fsspec's own instance cache of SimpleCacheFileSystem, given back by uninstall().
_ORIGINAL_CACHE = SimpleCacheFileSystem._cache


def install() -> None:
    """Make ``simplecache`` (``fsspec.open("simplecache::...")``, ``fsspec.filesystem``) ours.

    Installing the distribution already does this through the ``fsspec.specs`` entry
    point, and ``import fsspec_patch`` calls it; calling it again changes nothing.
    Filesystem instances created before keep their class. While installed,
    ``SimpleCacheFileSystem._cache`` is the patched class's instance cache, so code that
    inspects or clears fsspec's sees the instances that serve ``simplecache``.

    Examples:
        >>> import fsspec, fsspec_patch
        >>> fsspec_patch.install()
        >>> patched = fsspec_patch.CanonicalSimpleCacheFileSystem
        >>> fsspec.get_filesystem_class("simplecache") is patched
        True
    """
    _register(CanonicalSimpleCacheFileSystem, _PATCHED)
    SimpleCacheFileSystem._cache = CanonicalSimpleCacheFileSystem._cache


def uninstall() -> None:
    """Give ``simplecache`` back to fsspec's own ``SimpleCacheFileSystem`` (idempotent)."""
    _register(SimpleCacheFileSystem, _ORIGINAL)
    SimpleCacheFileSystem._cache = _ORIGINAL_CACHE


def is_installed() -> bool:
    """Return whether ``simplecache`` currently resolves to the patched class."""
    return fsspec.get_filesystem_class(_PROTOCOL) is CanonicalSimpleCacheFileSystem


def _register(cls: type, dotted: str) -> None:
    # Both the live registry and the lazy table, so neither path resurrects the other class.
    fsspec.register_implementation(_PROTOCOL, dotted, clobber=True)
    fsspec.register_implementation(_PROTOCOL, cls, clobber=True)
