"""The patched ``simplecache`` filesystem: canonical keys, bounded, atomic, thread-shared."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterable
from typing import IO, Any

from fsspec.implementations.cache_mapper import (  # type: ignore[import-untyped]
    AbstractCacheMapper,
)
from fsspec.implementations.cached import (  # type: ignore[import-untyped]
    SimpleCacheFileSystem,
)
from fsspec.spec import AbstractFileSystem  # type: ignore[import-untyped]
from fsspec.utils import stringify_path  # type: ignore[import-untyped]

from ._index import Limits, as_limit
from ._instances import SharedInstances
from ._mapper import DEFAULT_KEY_CACHE_SIZE, mapper_for
from ._store import DEFAULT_MAX_BYTES, DEFAULT_MAX_ENTRIES, CacheStats, CacheStore
from ._temporary import TemporaryStorage
from ._write import CacheTransaction, open_for_write

__all__ = ["CanonicalSimpleCacheFileSystem", "cache_stats"]


class CanonicalSimpleCacheFileSystem(SimpleCacheFileSystem, metaclass=SharedInstances):  # type: ignore[misc]
    """``simplecache`` with one bounded, atomically written cache entry per logical file.

    Extra options (besides fsspec's ``SimpleCacheFileSystem`` ones): ``major_params``
    (query names that select another file, default ``version`` and ``dataset``),
    ``key_cache_size`` (LRU of URL variants, default 4096), ``max_entries`` (default
    10,000) and ``max_bytes`` (default 1 GiB) for the writable cache directory, whatever
    the number of processes using it; ``None`` lifts a limit. One instance serves every
    thread and every URL variant of one logical file: target options a query implies
    (s3fs's ``version_aware`` for ``?versionId=``) are left out of it and given to the
    fetch of that URL only.
    """

    protocol = "simplecache"
    """The protocol this class serves: ``simplecache``."""
    transaction_type = CacheTransaction
    """Transactions that also drop the cache entries of files discarded on rollback."""
    # The temporary directory behind the default cache_storage, held while this lives.
    _temporary_storage: TemporaryStorage | None = None

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
        mapper = mapper_for(major_params, int(key_cache_size), same_names, cache_mapper)
        super().__init__(cache_mapper=mapper, **kwargs)
        limits = Limits(as_limit(max_entries), as_limit(max_bytes))
        self._store = CacheStore(self.storage, mapper, self._mkcache, limits)

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
        # open() has stripped the path already; a second strip cost a fifth of a hit.
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
    """fsspec's generic ``cat_ranges``: each range read through ``cat_file`` (the cache)."""

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
        """Remove every entry of the writable cache directory, for every process using it."""
        self._store.clear()

    def clear_expired_cache(self, expiry_time: float | None = None) -> None:
        """Remove the cache files not used (opened or written) for ``expiry_time`` seconds."""
        if expiry_time is None or expiry_time < 0:
            raise ValueError("expiry_time must be given, and not negative, for simplecache")
        self._store.clear(expiry_time)

    def cache_size(self) -> int:
        """Return the bytes held in the writable cache directory."""
        return self._store.stats().bytes


def _read_range(f: IO[bytes], start: int | None, end: int | None) -> bytes:
    if start is None and end is None:
        return f.read()
    size = f.seek(0, os.SEEK_END)
    begin = 0 if start is None else start if start >= 0 else max(0, size + start)
    stop = size if end is None else end if end >= 0 else size + end
    f.seek(begin)
    return f.read(max(0, stop - begin))


def cache_stats(fs: Any = None) -> CacheStats:
    """Return the counters of one patched filesystem's directory, or the sum of all in use.

    Hits and misses are this process's; entries and bytes those of the whole directory.

    Examples:
        >>> fs = fsspec.filesystem("simplecache", target_protocol="memory")  # doctest: +SKIP
        >>> cache_stats(fs)  # doctest: +SKIP
        CacheStats(hits=0, misses=0, entries=0, bytes=0)
    """
    if fs is None:
        # Instances on one directory share its counts: each directory counts once.
        stores = {one._store.shared: one._store for one in _patched_instances()}
        return sum((store.stats() for store in stores.values()), CacheStats())
    if not isinstance(fs, CanonicalSimpleCacheFileSystem):
        raise TypeError(f"not a patched simplecache filesystem: {type(fs).__name__}")
    stats: CacheStats = fs._store.stats()
    return stats


def _patched_instances() -> list[Any]:
    # The mapping is shared with fsspec's SimpleCacheFileSystem while installed.
    found = CanonicalSimpleCacheFileSystem._cache.instances()
    return [one for one in found if isinstance(one, CanonicalSimpleCacheFileSystem)]
