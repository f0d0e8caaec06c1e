"""Instance identity: one filesystem per logical file and set of options, kept in an LRU.

fsspec's own token hashes ``repr()`` of the options in call order plus the thread id, and
leaves out the URL. Here options are sorted and normalised, defaults, the thread and the
target options a URL's query implies are left out, and the URL counts by its canonical
key: minor variants of one file share an instance, another file or another major value
gets its own. Every instance on one cache directory shares that directory's index.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import os
import threading
from collections.abc import Callable
from typing import Any

from cachetools import LRUCache
from fsspec.config import apply_config  # type: ignore[import-untyped]
from fsspec.implementations.cached import CachingFileSystem  # type: ignore[import-untyped]
from fsspec.registry import get_filesystem_class  # type: ignore[import-untyped]
from fsspec.spec import _Cached  # type: ignore[import-untyped]

from ._index import as_limit
from ._key import DEFAULT_MAJOR_PARAMS, normalise_major_params
from ._mapper import DEFAULT_KEY_CACHE_SIZE, mapper_for, stable_repr
from ._target import query_options
from ._temporary import TemporaryStorage, temporary_storage

__all__ = ["INSTANCE_CACHE_SIZE", "InstanceCache", "SharedInstances"]

INSTANCE_CACHE_SIZE = 1024
"""Most filesystem instances kept (one per logical file and set of options); an LRU."""


class InstanceCache(LRUCache[str, Any]):
    """fsspec's ``_cache`` mapping of token to instance, as a thread-safe cachetools LRU.

    fsspec reads a class's ``_cache`` outside its instantiation lock, so this mapping
    guards itself.
    """

    def __init__(self, maxsize: int) -> None:
        super().__init__(maxsize)
        self._lock = threading.RLock()
        self._pid = os.getpid()
        #: Bumped by every clear: instances made after it get new temporary directories.
        self.generation = 0

    def __getitem__(self, key: str) -> Any:
        with self._lock:
            return super().__getitem__(key)

    def __setitem__(self, key: str, value: Any) -> None:
        with self._lock:
            super().__setitem__(key, value)

    def __delitem__(self, key: str) -> None:
        with self._lock:
            super().__delitem__(key)

    def get(self, key: str, default: Any = None) -> Any:
        """Return the instance of ``key`` (now the most recently used), or ``default``."""
        with self._lock:
            return super().get(key, default)

    def clear(self) -> None:
        """Forget every instance."""
        if self._pid != os.getpid():
            # fsspec clears instance caches first thing in a forked child: a lock that
            # another thread of the parent held at the fork would never be released.
            self._lock, self._pid = threading.RLock(), os.getpid()
        with self._lock:
            super().clear()
            self.generation += 1

    def instances(self) -> list[Any]:
        """Return the instances held now."""
        with self._lock:
            return list(self.values())


class SharedInstances(_Cached):  # type: ignore[misc]
    """Metaclass: one instance per logical file and set of options, shared by all threads.

    An instance made without a URL (``fsspec.filesystem("simplecache", ...)``) stands for
    its options alone. ``cache_storage`` left to fsspec's ``"TMP"`` is one temporary
    directory per set of options and process, not one per instance, until the instance
    cache is cleared: instances made after that start with a new, empty one.
    """

    def __init__(cls, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cls._cache = InstanceCache(INSTANCE_CACHE_SIZE)

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        kwargs = _without_query_options(apply_config(cls, kwargs))
        if kwargs.pop("skip_instance_cache", False) or not cls.cachable:
            return cls._construct(args, kwargs, TemporaryStorage)
        options = _token_text(cls, args, kwargs)
        url = kwargs.get("fo")
        logical = _logical_key(kwargs, url) if isinstance(url, str) and url else None
        token = _digest(options if logical is None else f"{options}\0{logical}")
        # Held while constructing: two threads never build two instances for one token.
        with cls._instantiation_lock:
            instance = cls._cache.get(token)
            if instance is None:
                family = functools.partial(
                    temporary_storage, cls._cache.generation, _digest(options)
                )
                instance = cls._construct(args, kwargs, family)
                instance._fs_token_ = token
                cls._cache[token] = instance
            cls._latest = token
        return instance

    def _construct(
        cls, args: tuple[Any, ...], kwargs: dict[str, Any], storage: Callable[[], TemporaryStorage]
    ) -> Any:
        # fsspec's "TMP" (the default) becomes a directory of ``storage()``, which the
        # instance holds for as long as it lives; its options keep saying "TMP", so a
        # pickled copy gets a temporary directory of its own process and generation.
        if kwargs.get("cache_storage", "TMP") != "TMP":
            return super().__call__(*args, skip_instance_cache=True, **kwargs)
        temporary = storage()
        instance = super().__call__(
            *args, skip_instance_cache=True, **{**kwargs, "cache_storage": temporary.path}
        )
        instance.storage_options = kwargs
        instance._temporary_storage = temporary
        return instance


def _logical_key(kwargs: dict[str, Any], url: str) -> str:
    mapper = mapper_for(
        kwargs.get("major_params"),
        int(kwargs.get("key_cache_size", DEFAULT_KEY_CACHE_SIZE)),
        kwargs.get("same_names"),
        kwargs.get("cache_mapper"),
    )
    return mapper.key(url)


def _without_query_options(kwargs: dict[str, Any]) -> dict[str, Any]:
    # fsspec.open("simplecache::s3://b/f?versionId=1") passes the version_aware=True that
    # s3fs reads from the query as a target option: one more instance per variant. The
    # shared instance goes without; each fetch derives them again (fetch_target).
    protocol, options, url = (kwargs.get(k) for k in ("target_protocol", "target_options", "fo"))
    if not options or not isinstance(protocol, str) or not isinstance(url, str):
        return kwargs
    implied = query_options(get_filesystem_class(protocol), url)
    kept = {k: v for k, v in options.items() if k not in implied or implied[k] != v}
    return kwargs if len(kept) == len(options) else {**kwargs, "target_options": kept}


def _token_text(cls: type, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    options: dict[str, Any] = {}
    for key, value in kwargs.items():
        if key in cls._strip_tokenize_options:  # type: ignore[attr-defined]
            continue
        if key == "major_params":
            value = normalise_major_params(value)
        elif key in ("max_entries", "max_bytes"):
            value = as_limit(value)  # "10" (from the environment) and 10 are one limit
        elif key == "key_cache_size":
            value = int(value)
        elif key == "fs" and value is not None:
            value = f"<filesystem id={id(value)}>"  # this very instance, kept alive by ours
        if not _is_default(cls, key, value):
            options[key] = value
    return stable_repr((cls.__module__, cls.__qualname__, os.getpid(), args, options))


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _is_default(cls: type, key: str, value: object) -> bool:
    if key == "target_options" and isinstance(value, dict) and not value:
        return True
    default = _defaults(cls).get(key, _MISSING)
    return value is default or (type(value) is type(default) and value == default)


@functools.cache
def _defaults(cls: type) -> dict[str, object]:
    found: dict[str, object] = {
        name: parameter.default
        for init in (CachingFileSystem.__init__, cls.__init__)  # type: ignore[misc]
        for name, parameter in inspect.signature(init).parameters.items()
        if parameter.default is not inspect.Parameter.empty
    }
    found["major_params"] = DEFAULT_MAJOR_PARAMS
    return found


_MISSING = object()
