"""Writes through the cache: a private temporary file, published into the cache atomically."""

from __future__ import annotations

import os
import shutil
from typing import IO, Any

from fsspec.implementations.cached import (  # type: ignore[import-untyped]
    LocalTempFile,
    WriteCachedTransaction,
)

from ._index import remove_quietly

__all__ = ["AtomicLocalFile", "CacheTransaction", "open_for_write"]

# Keyword arguments fsspec's open() adds that mean nothing to a local file.
_OPEN_ONLY = frozenset({"autocommit", "block_size", "cache_options"})


def open_for_write(fs: Any, path: str, mode: str, kwargs: dict[str, Any]) -> AtomicLocalFile:
    """Open ``path`` for writing (``w``, ``x``, ``a`` or ``r+``) through the cache of ``fs``."""
    autocommit = bool(kwargs.get("autocommit", not fs._intrans))
    options = {k: v for k, v in kwargs.items() if k not in _OPEN_ONLY}
    return AtomicLocalFile(fs, path, mode, autocommit=autocommit, **options)


class AtomicLocalFile(LocalTempFile):  # type: ignore[misc]
    """A local file uploaded on commit; readers see the old or the new entry, never a part.

    With autocommit the upload happens first and the cache entry is replaced only once
    it succeeded; inside a transaction the entry is replaced on close, as fsspec does,
    and removed again if the transaction is rolled back.
    """

    fs: Any
    fh: IO[Any]
    fn: str
    path: str
    closed: bool
    autocommit: bool

    def __init__(self, fs: Any, path: str, mode: str, autocommit: bool, **kwargs: Any) -> None:
        self.entry: str = fs._store.mapper(path)
        fs._store.check_slot(self.entry)
        partial = fs._store.new_partial()
        self.published = False
        if "a" in mode or "+" in mode:
            _copy_current(fs, path, partial, required="r" in mode)
        super().__init__(
            fs, path, partial, mode=mode.replace("x", "w"), autocommit=autocommit, **kwargs
        )

    def close(self) -> None:
        """Close; upload when autocommitting, then publish the file as the cache entry."""
        if self.closed:
            return
        self.fh.close()
        self.closed = True
        if self.autocommit:
            try:
                self.commit()
            except BaseException:
                remove_quietly(self.fn)
                raise
        try:
            self.fs._store.publish(self.fn, self.entry, miss=False).close()
        except BaseException:
            remove_quietly(self.fn)
            raise
        self.fn = os.path.join(self.fs._store.directory, self.entry)
        self.published = True

    def discard(self) -> None:
        """Drop the written data and its cache entry."""
        if not self.closed:
            self.fh.close()
            self.closed = True
        if self.published:
            self.fs._store.discard(self.entry)
        else:
            remove_quietly(self.fn)


def _copy_current(fs: Any, path: str, partial: str, *, required: bool) -> None:
    try:
        with fs._store.open(path, "rb", fs) as source, open(partial, "wb") as target:
            shutil.copyfileobj(source, target)
    except BaseException as exc:
        if isinstance(exc, FileNotFoundError) and not required:
            return  # appending to a file that does not exist yet: start empty
        remove_quietly(partial)
        raise


class CacheTransaction(WriteCachedTransaction):  # type: ignore[misc]
    """fsspec's write-through transaction, which also drops the cache entries on rollback."""

    def complete(self, commit: bool = True) -> None:
        """Upload all files (commit) or discard them with their cache entries."""
        if not commit:
            for file in self.files:
                file.discard()
        super().complete(commit)
