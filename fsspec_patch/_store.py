"""On-disk cache entries: LRU index with caps, atomic downloads, hit and miss counters."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

from fsspec.compression import compr  # type: ignore[import-untyped]
from fsspec.utils import infer_compression  # type: ignore[import-untyped]

from ._target import fetch_target

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_ENTRIES",
    "PARTIAL_PREFIX",
    "CacheStats",
    "CacheStore",
    "is_entry_name",
    "remove_quietly",
]

#: Most files kept in the writable cache directory before the least recently used go.
DEFAULT_MAX_ENTRIES = 10_000
#: Most bytes kept in the writable cache directory before the least recently used go.
DEFAULT_MAX_BYTES = 2**30
#: Name prefix of the temporary files that downloads and writes go through.
PARTIAL_PREFIX = ".partial-"
# fsspec's metadata file name in a cache directory: never a cache entry.
_METADATA_FILE = "cache"
# Downloads of one entry are serialised by one of these locks, picked by name hash.
_LOCK_STRIPES = 64


@dataclass(frozen=True)
class CacheStats:
    """Counters of a cache: hits and misses of opens, entries and bytes on disk."""

    hits: int = 0
    misses: int = 0
    entries: int = 0
    bytes: int = 0

    def __add__(self, other: CacheStats) -> CacheStats:
        return CacheStats(
            self.hits + other.hits,
            self.misses + other.misses,
            self.entries + other.entries,
            self.bytes + other.bytes,
        )


class CacheStore:
    """The cache files of one filesystem: lookups, atomic downloads, LRU caps, counters.

    ``storage`` lists the cache directories, the last one writable; ``mapper`` names
    entries; ``makedirs`` (re)creates the writable directory.
    """

    def __init__(
        self,
        storage: list[str],
        mapper: Callable[[str], str],
        makedirs: Callable[[], None],
        max_entries: int | None,
        max_bytes: int | None,
    ) -> None:
        self.storage = storage
        self.directory = storage[-1]
        self.mapper = mapper
        self.makedirs = makedirs
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._locks = tuple(threading.RLock() for _ in range(_LOCK_STRIPES))
        self._lock = threading.Lock()
        self._sizes: OrderedDict[str, int] = OrderedDict()
        self._bytes = self._hits = self._misses = 0
        self.rescan()

    def open(self, path: str, mode: str, fs: Any) -> IO[Any]:
        """Open the cached copy of ``path``; on a miss fetch it once through ``fs``."""
        name = self.mapper(path)
        handle = self._open_existing(name, mode)
        if handle is None:
            with self._locks[hash(name) % _LOCK_STRIPES]:
                handle = self._open_existing(name, mode)
                if handle is None:
                    return self._download(fs, path, name, mode)
        with self._lock:
            self._hits += 1
            if name in self._sizes:
                self._sizes.move_to_end(name)
        return handle

    def _open_existing(self, name: str, mode: str) -> IO[Any] | None:
        for storage in self.storage:
            try:
                return open(os.path.join(storage, name), mode)
            except FileNotFoundError:
                continue
        return None

    def _download(self, fs: Any, path: str, name: str, mode: str) -> IO[Any]:
        # One request: no existence check first, a missing file raises from the fetch.
        partial = self.new_partial()
        try:
            _fetch_into(fs, path, partial)
            return self.publish(partial, name, miss=True, mode=mode)
        except BaseException:
            remove_quietly(partial)
            raise

    def new_partial(self) -> str:
        """Create an empty private temporary file in the writable cache directory."""
        self.makedirs()
        fd, partial = tempfile.mkstemp(prefix=PARTIAL_PREFIX, dir=self.directory)
        os.close(fd)
        return partial

    def publish(self, partial: str, name: str, *, miss: bool, mode: str = "rb") -> IO[Any]:
        """Move a complete temporary file into place as entry ``name`` and open it.

        Replacing and opening under the index lock means no eviction can remove the
        entry before it is open; then the least recently used go, over the caps.
        """
        final = os.path.join(self.directory, name)
        with self._lock:
            os.replace(partial, final)
            handle = open(final, mode)  # noqa: SIM115
            size = os.fstat(handle.fileno()).st_size
            self._misses += miss
            self._bytes += size - self._sizes.pop(name, 0)
            self._sizes[name] = size
            self._evict()
        return handle

    def discard(self, name: str) -> None:
        """Remove entry ``name`` from the writable directory."""
        with self._lock:
            remove_quietly(os.path.join(self.directory, name))
            self._bytes -= self._sizes.pop(name, 0)

    def rescan(self) -> None:
        """Rebuild the index from the directory, oldest files first, then apply the caps."""
        found: list[tuple[float, str, int]] = []
        with contextlib.suppress(FileNotFoundError), os.scandir(self.directory) as entries:
            for entry in entries:
                if is_entry_name(entry.name) and entry.is_file(follow_symlinks=False):
                    stat = entry.stat(follow_symlinks=False)
                    found.append((stat.st_mtime, entry.name, stat.st_size))
        found.sort()
        with self._lock:
            self._sizes = OrderedDict((name, size) for _, name, size in found)
            self._bytes = sum(self._sizes.values())
            self._evict()

    def stats(self) -> CacheStats:
        """Return the current counters."""
        with self._lock:
            return CacheStats(self._hits, self._misses, len(self._sizes), self._bytes)

    def _evict(self) -> None:
        # The newest entry always stays, even alone over max_bytes: it is being opened.
        while len(self._sizes) > 1 and (
            (self.max_entries is not None and len(self._sizes) > self.max_entries)
            or (self.max_bytes is not None and self._bytes > self.max_bytes)
        ):
            name, size = self._sizes.popitem(last=False)
            self._bytes -= size
            remove_quietly(os.path.join(self.directory, name))


def is_entry_name(name: str) -> bool:
    """Return whether a file called ``name`` in a cache directory is a cache entry."""
    return not name.startswith(PARTIAL_PREFIX) and name != _METADATA_FILE


def remove_quietly(path: str) -> None:
    """Remove a file that may already be gone."""
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)


def _fetch_into(fs: Any, path: str, partial: str) -> None:
    target = fetch_target(fs.fs, path)
    if not fs.compression:
        # A path, not a file object: s3fs's and gcsfs's get_file call os.path.isdir()
        # and open() on it.
        try:
            target.get_file(path, partial)
        except FileExistsError as exc:
            # fsspec makes a directory at the local path for a remote directory: ours
            # is a file already, so that surfaces as this error.
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path) from exc
        return
    codec = fs.compression
    if codec == "infer":
        codec = infer_compression(path.partition("?")[0].partition("#")[0])
    with (
        target.open(path, "rb") as raw,
        compr[codec](raw, mode="rb") as source,
        open(partial, "wb") as out,
    ):
        shutil.copyfileobj(source, out)
