"""The cache entries of one filesystem instance: look-ups, atomic downloads, counters.

What a directory holds is shared by every instance and process using it
(:class:`~fsspec_patch._directory.CacheDirectory`); a store adds what one instance
knows: its read-only storages, its mapper and its limits.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

from fsspec.compression import compr  # type: ignore[import-untyped]
from fsspec.utils import infer_compression  # type: ignore[import-untyped]

from ._directory import CacheDirectory
from ._index import PARTIAL_PREFIX, Limits, remove_quietly
from ._target import fetch_target

__all__ = ["DEFAULT_MAX_BYTES", "DEFAULT_MAX_ENTRIES", "CacheStats", "CacheStore"]

DEFAULT_MAX_ENTRIES = 10_000
"""Most files kept in the writable cache directory before the least recently used go."""
DEFAULT_MAX_BYTES = 2**30
"""Most bytes kept in the writable cache directory before the least recently used go."""
# Temporary files untouched for this long belong to no download still running.
_STALE_PARTIAL = 3600.0
# An entry is opened without following a link and without waiting on a pipe.
_OPEN_FLAGS = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
# Windows cannot stamp a file through its descriptor: it goes by path there.
_UTIME_BY_FD = os.utime in os.supports_fd


@dataclass(frozen=True)
class CacheStats:
    """Counters of a cache: this process's hits and misses, the directory's entries and bytes."""

    hits: int = 0
    """Cache hits in this process."""
    misses: int = 0
    """Cache misses (downloads) in this process."""
    entries: int = 0
    """Files in the cache directory."""
    bytes: int = 0
    """Bytes of the files in the cache directory."""

    def __add__(self, other: CacheStats) -> CacheStats:
        return CacheStats(
            self.hits + other.hits,
            self.misses + other.misses,
            self.entries + other.entries,
            self.bytes + other.bytes,
        )


class CacheStore:
    """The cache files one filesystem sees: look-ups, atomic downloads and publishing.

    ``storage`` lists the cache directories, the last one writable and shared with every
    instance and process using it; ``mapper`` names entries; ``makedirs`` (re)creates the
    writable directory; ``limits`` bound it.
    """

    def __init__(
        self,
        storage: list[str],
        mapper: Callable[[str], str],
        makedirs: Callable[[], None],
        limits: Limits,
    ) -> None:
        self.storage = storage
        self.directory = storage[-1]
        self.mapper = mapper
        self.makedirs = makedirs
        self.limits = limits
        makedirs()
        self.shared = CacheDirectory.of(self.directory)
        self.shared.apply(limits)

    def open(self, path: str, mode: str, fs: Any) -> IO[Any]:
        """Open the cached copy of ``path``; on a miss fetch it once through ``fs``."""
        name = self.mapper(path)
        handle = self._open_existing(name, mode)
        if handle is None:
            with self.shared.download_lock(name):
                handle = self._open_existing(name, mode)
                if handle is None:
                    return self._download(fs, path, name, mode)
        self.shared.count(hit=True)
        return handle

    def _open_existing(self, name: str, mode: str) -> IO[Any] | None:
        for storage in self.storage:
            path = os.path.join(storage, name)
            handle = _open_entry(path, mode)
            if handle is None:
                continue
            if storage == self.directory:
                # The use that every process's eviction sees; an entry this process may
                # not stamp (a read-only directory, another owner's file) is still served.
                with contextlib.suppress(OSError):
                    _stamp(handle.fileno() if _UTIME_BY_FD else path)
            return handle
        return None

    def _download(self, fs: Any, path: str, name: str, mode: str) -> IO[Any]:
        # One request: no existence check first, a missing file raises from the fetch.
        self.check_slot(name)
        partial = self.new_partial()
        try:
            _fetch_into(fs, path, partial)
            return self.publish(partial, name, miss=True, mode=mode)
        except BaseException:
            remove_quietly(partial)
            raise

    def new_partial(self) -> str:
        """Create an empty private temporary file in the writable cache directory.

        A directory deleted under the cache is made again, and the index forgets the
        entries that went with it; one that cannot be written raises ``PermissionError``.
        """
        try:
            fd, partial = self._mkstemp()
        except FileNotFoundError:
            self.makedirs()
            self.shared.rescan()
            fd, partial = self._mkstemp()
        os.close(fd)
        return partial

    def _mkstemp(self) -> tuple[int, str]:
        try:
            return tempfile.mkstemp(prefix=PARTIAL_PREFIX, dir=self.directory)
        except PermissionError as exc:
            message = (
                f"the cache directory {self.directory} is not writable ({exc.strerror}):"
                " give read-only caches first in cache_storage and a writable one last"
            )
            raise PermissionError(exc.errno, message) from None

    def check_slot(self, name: str) -> None:
        """Raise ``IsADirectoryError`` if something other than a file holds entry ``name``."""
        final = os.path.join(self.directory, name)
        if os.path.isdir(final) and not os.path.islink(final):
            message = f"{final} is a directory, where the cache keeps an entry: remove it"
            raise IsADirectoryError(errno.EISDIR, message)

    def publish(self, partial: str, name: str, *, miss: bool, mode: str = "rb") -> IO[Any]:
        """Move a complete temporary file into place as entry ``name``; return it open.

        One transaction of the index, which every process's evictions wait for, makes
        room (least recently used first), moves the file in and opens it: nothing can
        take it away before it is open.
        """
        final = os.path.join(self.directory, name)
        _stamp(partial)
        stat = os.stat(partial)
        with self.shared.transaction() as index:
            index.make_room(self.limits, keep=name, incoming=stat.st_size)
            try:
                os.replace(partial, final)
            except PermissionError:
                if not miss:
                    raise
                # Windows: a process has this entry open, so it is there already.
                remove_quietly(partial)
            else:
                index.put(name, stat.st_size, stat.st_mtime_ns)
            handle = open(final, mode)  # noqa: SIM115
        if miss:
            self.shared.count(hit=False)
        return handle

    def discard(self, name: str) -> None:
        """Remove entry ``name`` from the writable directory."""
        with self.shared.transaction() as index:
            remove_quietly(os.path.join(self.directory, name))
            index.drop(name)

    def clear(self, unused_for: float | None = None) -> None:
        """Remove the entries not used for ``unused_for`` seconds (every one with ``None``).

        Temporary files go too once untouched for an hour: interrupted downloads.
        """
        self.makedirs()
        now = time.time()
        cutoff = None if unused_for is None else time.time_ns() - int(unused_for * 1e9)
        with self.shared.transaction() as index:
            index.remove_unused(cutoff, now - _STALE_PARTIAL)

    def stats(self) -> CacheStats:
        """Return this process's hits and misses and the directory's entries and bytes."""
        entries, size = self.shared.totals()
        return CacheStats(self.shared.hits, self.shared.misses, entries, size)


def _open_entry(path: str, mode: str) -> IO[Any] | None:
    # Only a regular file is an entry: a link, a directory or a pipe that another program
    # left at an entry's name is never served (a miss replaces it, or check_slot refuses).
    try:
        handle = open(path, mode, opener=_no_follow)  # noqa: SIM115
    except (FileNotFoundError, IsADirectoryError):
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # a symbolic link
            return None
        raise
    # A pipe or a device cannot seek; a check of the mode (fstat) cost 1.2 us per hit.
    if not handle.seekable():
        handle.close()
        return None
    return handle


def _no_follow(path: str, flags: int) -> int:
    return os.open(path, flags | _OPEN_FLAGS)


def _stamp(file: int | str) -> None:
    # Nanoseconds set explicitly: the kernel's own "now" for file times is coarse (a
    # few ms), and eviction orders uses by these times.
    now = time.time_ns()
    os.utime(file, ns=(now, now))


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
