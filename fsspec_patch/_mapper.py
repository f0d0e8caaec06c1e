"""A cache mapper giving every URL variant of one logical file the same cache file name."""

from __future__ import annotations

import hashlib
import threading
import weakref
from collections.abc import Iterable
from typing import Any

from cachetools import LRUCache
from fsspec.implementations.cache_mapper import (  # type: ignore[import-untyped]
    AbstractCacheMapper,
    create_cache_mapper,
)

from ._index import is_entry_name
from ._key import canonicalise, normalise_major_params

__all__ = ["DEFAULT_KEY_CACHE_SIZE", "CanonicalCacheMapper", "mapper_for", "stable_repr"]

DEFAULT_KEY_CACHE_SIZE = 4096
"""URL variants whose file name is memoised (an LRU); about 1 KiB of memory each at most."""

# Longer URLs are canonicalised on every call rather than memoised, so the memo's
# memory stays bounded by DEFAULT_KEY_CACHE_SIZE * _MEMO_MAX_URL characters.
_MEMO_MAX_URL = 1024
# NAME_MAX of ext4, xfs, btrfs, tmpfs and APFS, in bytes.
_NAME_MAX = 255


class CanonicalCacheMapper(AbstractCacheMapper):  # type: ignore[misc]
    """Map a path to its cache file name through ``canonical_key``, memoised in an LRU.

    The name is the SHA-256 of the canonical key, or ``inner(key)`` when another
    fsspec cache mapper is given (``BasenameCacheMapper`` for ``same_names=True``);
    an inner name no directory can hold (empty, ``.``, ``..``, with ``/``, over 255
    bytes) or that the cache uses itself (``cache``, ``.partial-*``) becomes the hash.
    Equality, hash and ``repr`` depend on the settings only, so fsspec reuses one
    filesystem instance for equal mappers.

    Examples:
        >>> mapper = CanonicalCacheMapper(major_params=["version"])
        >>> mapper("https://h/f.csv?b=2&a=1") == mapper("https://h/f.csv?a=1#x")
        True
        >>> mapper.key("https://H/f.csv?version=2&sig=abc")
        'https://h/f.csv?version=2'
    """

    def __init__(
        self,
        major_params: str | Iterable[str] | None = None,
        key_cache_size: int = DEFAULT_KEY_CACHE_SIZE,
        inner: AbstractCacheMapper | None = None,
    ) -> None:
        if key_cache_size < 0:
            raise ValueError("key_cache_size must be >= 0")
        self.major_params = normalise_major_params(major_params)
        """Query names that select another file, so they stay in the key."""
        self.key_cache_size = key_cache_size
        """How many URL variants' file names are memoised."""
        self.inner = inner
        """The fsspec cache mapper that names files from the key, or None (the SHA-256)."""
        self._majors = frozenset(self.major_params)
        self._memo: LRUCache[str, tuple[str, str]] = LRUCache(maxsize=max(key_cache_size, 1))
        self._lock = threading.Lock()

    def __call__(self, path: str) -> str:
        """Return the cache file name of ``path``."""
        return self._lookup(path)[1]

    def key(self, path: str) -> str:
        """Return the canonical key of ``path`` under this mapper's major parameters."""
        return self._lookup(path)[0]

    def _lookup(self, path: str) -> tuple[str, str]:
        if self.key_cache_size == 0 or len(path) > _MEMO_MAX_URL:
            return self._key_and_name(path)
        # Indexing, not .get(): cachetools' get() looks the key up twice.
        with self._lock:
            try:
                return self._memo[path]
            except KeyError:
                pass
        found = self._key_and_name(path)
        with self._lock:
            self._memo[path] = found
        return found

    def memo_size(self) -> int:
        """Return how many URL variants are memoised now."""
        with self._lock:
            return len(self._memo)

    def _key_and_name(self, path: str) -> tuple[str, str]:
        key = canonicalise(path, self._majors)
        if self.inner is not None:
            name = str(self.inner(key))
            if _is_file_name(name):
                return key, name
        return key, hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()

    def _settings(self) -> tuple[tuple[str, ...], int, AbstractCacheMapper | None]:
        return (self.major_params, self.key_cache_size, self.inner)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self._settings() == other._settings()

    def __hash__(self) -> int:
        return hash((type(self), *self._settings()))

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(major_params={self.major_params!r}, "
            f"key_cache_size={self.key_cache_size!r}, inner={stable_repr(self.inner)})"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), self._settings())


def mapper_for(
    major_params: str | Iterable[str] | None,
    key_cache_size: int,
    same_names: bool | None,
    cache_mapper: AbstractCacheMapper | None,
) -> CanonicalCacheMapper:
    """Return the mapper for a filesystem's options, one shared by equal options.

    Every instance (one per logical file) with the same settings uses one mapper, so the
    memo of URL variants is bounded once for all of them. A ``CanonicalCacheMapper``
    given as ``cache_mapper`` is used as it is.
    """
    if same_names is not None and cache_mapper is not None:
        raise ValueError("Cannot specify both same_names and cache_mapper")
    if isinstance(cache_mapper, CanonicalCacheMapper):
        return cache_mapper
    inner = (
        cache_mapper
        if cache_mapper is not None
        else (create_cache_mapper(True) if same_names else None)
    )
    settings = (normalise_major_params(major_params), key_cache_size, inner)
    try:
        hash(settings)
    except TypeError:  # a mapper of the user's that is not hashable is not shared
        return CanonicalCacheMapper(*settings)
    with _SHARED_LOCK:
        mapper = _SHARED.get(settings)
        if mapper is None:
            mapper = _SHARED[settings] = CanonicalCacheMapper(*settings)
        return mapper


_SHARED: weakref.WeakValueDictionary[tuple[Any, ...], CanonicalCacheMapper] = (
    weakref.WeakValueDictionary()
)
_SHARED_LOCK = threading.Lock()


def _is_file_name(name: str) -> bool:
    return (
        name not in ("", ".", "..")
        and "/" not in name
        and "\0" not in name
        and len(name.encode("utf-8", "surrogatepass")) <= _NAME_MAX
        and is_entry_name(name)
    )


def stable_repr(value: object, depth: int = 0) -> str:
    """Return a ``repr`` that is equal for equal settings, whatever the order or identity.

    Dicts and sets are sorted; objects with the default ``repr`` (which holds their
    address) are described by class and attributes instead.
    """
    kind = type(value)
    if kind in _PLAIN or depth > 4:
        return repr(value)
    if isinstance(value, dict):
        items = [
            f"{stable_repr(k, depth + 1)}: {stable_repr(v, depth + 1)}" for k, v in value.items()
        ]
        return "{" + ", ".join(sorted(items)) + "}"
    if isinstance(value, (set, frozenset)):
        return "{" + ", ".join(sorted([stable_repr(v, depth + 1) for v in value])) + "}"
    if isinstance(value, (list, tuple)):
        inner = ", ".join([stable_repr(v, depth + 1) for v in value])
        return f"[{inner}]" if isinstance(value, list) else f"({inner})"
    if kind.__repr__ is object.__repr__ and hasattr(value, "__dict__"):
        return f"{kind.__module__}.{kind.__qualname__}{stable_repr(vars(value), depth + 1)}"
    return repr(value)


_PLAIN = frozenset({str, int, float, bool, bytes, type(None)})
