"""The patched ``simplecache`` filesystem: canonical keys, bounded, atomic, thread-shared."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import inspect
import os
import shutil
from collections.abc import Iterable
from typing import IO, Any

from fsspec.config import apply_config  # type: ignore[import-untyped]
from fsspec.implementations.cache_mapper import (  # type: ignore[import-untyped]
    AbstractCacheMapper,
    create_cache_mapper,
)
from fsspec.implementations.cached import (  # type: ignore[import-untyped]
    CachingFileSystem,
    SimpleCacheFileSystem,
)
from fsspec.registry import get_filesystem_class  # type: ignore[import-untyped]
from fsspec.spec import AbstractFileSystem, _Cached  # type: ignore[import-untyped]
from fsspec.utils import stringify_path  # type: ignore[import-untyped]

from ._key import DEFAULT_MAJOR_PARAMS, normalise_major_params
from ._mapper import DEFAULT_KEY_CACHE_SIZE, CanonicalCacheMapper, stable_repr
from ._store import DEFAULT_MAX_BYTES, DEFAULT_MAX_ENTRIES, CacheStats, CacheStore
from ._target import query_options
from ._write import CacheTransaction, open_for_write

__all__ = ["CanonicalSimpleCacheFileSystem", "cache_stats"]


class _SharedInstances(_Cached):  # type: ignore[misc]
    """Metaclass: one instance per set of options, shared by every thread.

    fsspec's own token hashes ``repr()`` of the options in call order plus the thread id;
    this one sorts options, drops defaults, ``fo`` (the URL) and the target options that
    ``fo``'s query implies, and ignores the thread.
    """

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        kwargs = _without_query_options(apply_config(cls, kwargs))
        if kwargs.pop("skip_instance_cache", False) or not cls.cachable:
            return super().__call__(*args, skip_instance_cache=True, **kwargs)
        token = _instance_token(cls, args, kwargs)
        # Held while constructing: two threads never build two caches for one token.
        with cls._instantiation_lock:
            instance = cls._cache.get(token)
            if instance is None:
                instance = super().__call__(*args, skip_instance_cache=True, **kwargs)
                instance._fs_token_ = token
                cls._cache[token] = instance
            cls._latest = token
        return instance


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


def _instance_token(cls: type, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    options: dict[str, Any] = {}
    for key, value in kwargs.items():
        if key in cls._strip_tokenize_options:  # type: ignore[attr-defined]
            continue
        if key == "major_params":
            value = normalise_major_params(value)
        elif key == "fs" and value is not None:
            value = f"<filesystem id={id(value)}>"  # this very instance, kept alive by ours
        if not _is_default(key, value):
            options[key] = value
    text = stable_repr((cls.__module__, cls.__qualname__, os.getpid(), args, options))
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _is_default(key: str, value: object) -> bool:
    if key == "target_options" and isinstance(value, dict) and not value:
        return True
    default = _DEFAULTS.get(key, _MISSING)
    return value is default or (type(value) is type(default) and value == default)


_MISSING = object()


def _as_limit(value: int | str | None) -> int | None:
    if value is None:
        return None
    limit = int(value)
    if limit < 0:
        raise ValueError("cache limits must be >= 0 or None")
    return limit


class CanonicalSimpleCacheFileSystem(SimpleCacheFileSystem, metaclass=_SharedInstances):  # type: ignore[misc]
    """``simplecache`` with one bounded, atomically written cache entry per logical file.

    Extra options (besides fsspec's ``SimpleCacheFileSystem`` ones): ``major_params``
    (query names that select another file, default ``version`` and ``dataset``),
    ``key_cache_size`` (LRU of URL variants, default 4096), ``max_entries`` (default
    10,000) and ``max_bytes`` (default 1 GiB) for the writable cache directory; ``None``
    lifts a limit. One instance serves every thread and every URL variant: target options
    a query implies (s3fs's ``version_aware`` for ``?versionId=``) are left out of it and
    given to the fetch of that URL only.
    """

    protocol = "simplecache"
    transaction_type = CacheTransaction

    def __init__(
        self,
        *,
        major_params: str | Iterable[str] | None = None,
        key_cache_size: int = DEFAULT_KEY_CACHE_SIZE,
        max_entries: int | str | None = DEFAULT_MAX_ENTRIES,
        max_bytes: int | str | None = DEFAULT_MAX_BYTES,
        same_names: bool | None = None,
        cache_mapper: AbstractCacheMapper | None = None,
        **kwargs: Any,
    ) -> None:
        mapper = _mapper_for(major_params, int(key_cache_size), same_names, cache_mapper)
        super().__init__(cache_mapper=mapper, **kwargs)
        self._store = CacheStore(
            self.storage, mapper, self._mkcache, _as_limit(max_entries), _as_limit(max_bytes)
        )

    @classmethod
    def _strip_protocol(cls, path: Any) -> str:
        # fsspec strips trailing "/" from the whole URL, query included, and then fetches
        # that altered URL; only the protocol is removed here, the target does the rest.
        path = stringify_path(path)
        for prefix in (f"{cls.protocol}://", f"{cls.protocol}::"):
            if path.startswith(prefix):
                path = path[len(prefix) :]
                break
        return path if path.strip("/") else ""

    def _open(self, path: str, mode: str = "rb", **kwargs: Any) -> Any:
        """Open the cached copy for reading, or a local file uploaded on commit for writing."""
        path = self._strip_protocol(path)
        if "r" in mode and "+" not in mode:
            return self._store.open(path, mode, self)
        return open_for_write(self, path, mode, kwargs)

    def cat_file(
        self, path: str, start: int | None = None, end: int | None = None, **kwargs: Any
    ) -> bytes:
        """Return bytes ``start:end`` of the file (negative values count from the end)."""
        with self.open(path, "rb", **kwargs) as f:
            return _read_range(f, start, end)

    cat_ranges = AbstractFileSystem.cat_ranges

    def cat(
        self, path: Any, recursive: bool = False, on_error: str = "raise", **kwargs: Any
    ) -> Any:
        """Return the file's bytes, or a dict of them for a list, a "*" glob or recursive."""
        # "?" starts a query, not a glob: only "*" or recursive=True expand paths.
        if isinstance(path, str) and not recursive and "*" not in path:
            return self.cat_file(path, **kwargs)
        if recursive or isinstance(path, str):
            return AbstractFileSystem.cat(self, path, recursive, on_error, **kwargs)
        out: dict[str, Any] = {}
        for one in path:
            try:
                out[one] = self.cat_file(one, **kwargs)
            except Exception as exc:
                if on_error == "raise":
                    raise
                if on_error == "return":
                    out[one] = exc
        return out

    async def _cat_file(
        self, path: str, start: int | None = None, end: int | None = None, **kwargs: Any
    ) -> bytes:
        """Async ``cat_file``, run in a worker thread."""
        return await asyncio.to_thread(self.cat_file, path, start, end, **kwargs)

    async def _cat_ranges(
        self,
        paths: list[str],
        starts: Any,
        ends: Any,
        max_gap: int | None = None,
        on_error: str = "return",
        **kwargs: Any,
    ) -> list[Any]:
        """Async ``cat_ranges``, run in a worker thread."""
        return await asyncio.to_thread(
            self.cat_ranges, paths, starts, ends, max_gap, on_error, **kwargs
        )

    def open_many(self, open_files: Any, **kwargs: Any) -> list[Any]:
        """Open all files of an ``fsspec.open_files`` context (writes commit together)."""
        mode = open_files.mode
        options = {} if "r" in mode and "+" not in mode else {"autocommit": False}
        return [self._open(f.path, mode, **options) for f in open_files]

    def commit_many(self, open_files: list[Any]) -> None:
        """Publish the written files in the cache, then upload them in one ``put``."""
        for f in open_files:
            f.close()
        self.fs.put([f.fn for f in open_files], [f.path for f in open_files])

    def pop_from_cache(self, path: str) -> None:
        """Remove the cache entry of ``path`` (any variant of it) from the writable cache."""
        self._store.discard(self._mapper(self._strip_protocol(path)))

    def clear_cache(self) -> None:
        """Remove every file of the writable cache directory."""
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(self.storage[-1])
        self._mkcache()
        self._store.rescan()

    def clear_expired_cache(self, expiry_time: float | None = None) -> None:
        """Remove cache files older than ``expiry_time`` seconds."""
        super().clear_expired_cache(expiry_time)
        self._store.rescan()

    def cache_size(self) -> int:
        """Return the bytes held in the writable cache directory."""
        return self._store.stats().bytes


def _mapper_for(
    major_params: str | Iterable[str] | None,
    key_cache_size: int,
    same_names: bool | None,
    cache_mapper: AbstractCacheMapper | None,
) -> CanonicalCacheMapper:
    if same_names is not None and cache_mapper is not None:
        raise ValueError("Cannot specify both same_names and cache_mapper")
    if isinstance(cache_mapper, CanonicalCacheMapper):
        return cache_mapper
    inner = (
        cache_mapper
        if cache_mapper is not None
        else (create_cache_mapper(True) if same_names else None)
    )
    return CanonicalCacheMapper(major_params, key_cache_size, inner)


def _read_range(f: IO[bytes], start: int | None, end: int | None) -> bytes:
    if start is None and end is None:
        return f.read()
    size = f.seek(0, os.SEEK_END)
    begin = 0 if start is None else start if start >= 0 else max(0, size + start)
    stop = size if end is None else end if end >= 0 else size + end
    f.seek(begin)
    return f.read(max(0, stop - begin))


def cache_stats(fs: Any = None) -> CacheStats:
    """Return hits, misses, entries and bytes of one patched filesystem, or of all shared ones.

    >>> fs = fsspec.filesystem("simplecache", target_protocol="memory")  # doctest: +SKIP
    >>> cache_stats(fs)  # doctest: +SKIP
    CacheStats(hits=0, misses=0, entries=0, bytes=0)
    """
    if fs is None:
        shared = list(CanonicalSimpleCacheFileSystem._cache.values())
        return sum((one._store.stats() for one in shared), CacheStats())
    if not isinstance(fs, CanonicalSimpleCacheFileSystem):
        raise TypeError(f"not a patched simplecache filesystem: {type(fs).__name__}")
    stats: CacheStats = fs._store.stats()
    return stats


_DEFAULTS: dict[str, object] = {
    name: parameter.default
    for init in (CachingFileSystem.__init__, CanonicalSimpleCacheFileSystem.__init__)
    for name, parameter in inspect.signature(init).parameters.items()
    if parameter.default is not inspect.Parameter.empty
}
_DEFAULTS["major_params"] = DEFAULT_MAJOR_PARAMS
