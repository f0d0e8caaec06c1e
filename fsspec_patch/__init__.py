"""One ``simplecache`` entry per logical file: canonical keys, bounded growth, safe downloads.

Importing this package (or merely having the distribution installed, through the
``fsspec.specs`` entry point) makes ``simplecache`` resolve to
``CanonicalSimpleCacheFileSystem``. See ``docs/how-to/fsspec-cache.md``.
"""

from __future__ import annotations

from ._filesystem import CanonicalSimpleCacheFileSystem, cache_stats
from ._install import install, is_installed, uninstall
from ._instances import INSTANCE_CACHE_SIZE
from ._key import DEFAULT_MAJOR_PARAMS, SIGNING_PARAMS, canonical_key
from ._mapper import DEFAULT_KEY_CACHE_SIZE, CanonicalCacheMapper
from ._store import DEFAULT_MAX_BYTES, DEFAULT_MAX_ENTRIES, CacheStats

__all__ = [
    "DEFAULT_KEY_CACHE_SIZE",
    "DEFAULT_MAJOR_PARAMS",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_ENTRIES",
    "INSTANCE_CACHE_SIZE",
    "SIGNING_PARAMS",
    "CacheStats",
    "CanonicalCacheMapper",
    "CanonicalSimpleCacheFileSystem",
    "cache_stats",
    "canonical_key",
    "install",
    "is_installed",
    "uninstall",
]

install()
