"""One writable cache directory as every process sees it: a shared SQLite index in WAL mode.

SQLite's file locking is the cross-process lock: every change (a publish with its
evictions, a removal, the start-up scan) is one ``BEGIN IMMEDIATE`` transaction, so all
processes share one list of entries and one pair of totals. Hits never touch the index:
a hit stamps the entry file's modification time (one ``utime`` call), and eviction reads
that back before it removes a file, so a use in any process counts.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import sys
import threading
import weakref
from collections.abc import Iterator

from ._index import SCHEMA, IndexTransaction, Limits, index_folder, scan

__all__ = ["CacheDirectory"]

# Downloads of one entry are serialised by one of these locks, picked by name hash.
_LOCK_STRIPES = 64
# Seconds to wait for another process's transaction before "database is locked".
_BUSY_TIMEOUT = 60.0

if sys.platform != "win32":
    import fcntl

    @contextlib.contextmanager
    def _queued(fd: int) -> Iterator[None]:
        # Writers wait in the kernel, which wakes the next one the moment the lock is
        # free; left to SQLite, a waiting writer sleeps 1 to 100 ms between tries. With
        # 4 processes missing at once a miss took 5-7 ms that way, about 1.5 ms queued.
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)

else:  # Windows: SQLite's busy handler alone

    def _queued(fd: int) -> contextlib.nullcontext[None]:
        return contextlib.nullcontext()


class CacheDirectory:
    """A writable cache directory in this process: the shared index, local locks and counts.

    One per directory and process (:meth:`of`), shared by every filesystem instance
    using the directory; thread-safe. Change the index only in :meth:`transaction`.
    """

    _instances: weakref.WeakValueDictionary[str, CacheDirectory] = weakref.WeakValueDictionary()
    _registry_lock = threading.Lock()

    @classmethod
    def of(cls, directory: str) -> CacheDirectory:
        """Return this process's view of ``directory``, creating the index on first use."""
        key = os.path.realpath(directory)
        with cls._registry_lock:
            found = cls._instances.get(key)
            if found is None:
                found = cls._instances[key] = cls(directory)
            return found

    def __init__(self, directory: str) -> None:
        self.directory = directory
        #: The folder of the shared index (outside the cache directory).
        self.index = index_folder(directory)
        self.hits = self.misses = 0
        self._lock = threading.RLock()
        self._stripes = tuple(threading.RLock() for _ in range(_LOCK_STRIPES))
        self._db: sqlite3.Connection | None = None
        self._closer: weakref.finalize[[sqlite3.Connection, int], CacheDirectory] | None = None
        self._queue = -1
        with self._lock:
            self._connection()
        self.rescan()  # what other processes, or earlier runs, left here

    def _connection(self) -> sqlite3.Connection:
        if self._db is not None:
            return self._db
        folder = self.index
        db = sqlite3.connect(
            os.path.join(folder, "index.sqlite3"),
            timeout=_BUSY_TIMEOUT,
            isolation_level=None,
            check_same_thread=False,
        )
        queue = os.open(os.path.join(folder, "writers.lock"), os.O_RDWR | os.O_CREAT, 0o644)
        # Closed with this object, not by the garbage collector (a ResourceWarning on 3.13).
        self._closer = weakref.finalize(self, _close, db, queue)
        self._queue = queue
        # Switching a new index to WAL takes SQLite's exclusive lock. Two processes making
        # the switch together both hold the read lock first, so waiting would deadlock and
        # SQLite fails one at once, busy timeout or not ("database is locked": workers
        # starting together on a new directory). The set-up waits in the writers' queue.
        with _queued(queue):
            db.execute("PRAGMA journal_mode = WAL")
            # Should this fail half-way, the finalizer's close() rolls it back.
            db.executescript(f"BEGIN IMMEDIATE; {SCHEMA} COMMIT;")
        # No fsync per commit: an index that lost its last commits in a power cut is
        # repaired by the scan of the next process to start (rescan()).
        db.execute("PRAGMA synchronous = NORMAL")
        self._db = db
        return db

    def _after_fork(self) -> None:
        # SQLite forbids using a connection in a forked child, and closing it there could
        # disturb the parent's: the child keeps it unused and opens its own. Locks held
        # by the parent's other threads would never be released here: new ones.
        if self._closer is not None:
            self._closer.detach()
        _INHERITED.append(self._db)
        if self._queue >= 0:
            os.close(self._queue)  # the parent's lock stays the parent's
        self._db = self._closer = None
        self._lock = threading.RLock()
        self._stripes = tuple(threading.RLock() for _ in range(_LOCK_STRIPES))

    @contextlib.contextmanager
    def transaction(self) -> Iterator[IndexTransaction]:
        """Hold the index against every thread and process; changes commit together."""
        with self._lock:
            db = self._connection()
            with _queued(self._queue):
                db.execute("BEGIN IMMEDIATE")
                try:
                    yield IndexTransaction(self.directory, db)
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
                db.execute("COMMIT")

    def totals(self) -> tuple[int, int]:
        """Return the entries and bytes of the directory, as all processes left them."""
        with self._lock:
            query = "SELECT entries, bytes FROM totals"
            entries, size = self._connection().execute(query).fetchone()
        return int(entries), int(size)

    def download_lock(self, name: str) -> threading.RLock:
        """Return the lock that serialises this process's downloads of entry ``name``."""
        return self._stripes[hash(name) % _LOCK_STRIPES]

    def count(self, *, hit: bool) -> None:
        """Count an open of this process: a hit, or a miss (a download)."""
        with self._lock:
            if hit:
                self.hits += 1
            else:
                self.misses += 1

    def rescan(self) -> None:
        """Index the files the index lacks and forget the ones gone (see ``sync``)."""
        with self.transaction() as index:
            index.sync(scan(self.directory))

    def apply(self, limits: Limits) -> None:
        """Evict the least recently used entries if the directory is over ``limits``."""
        if limits.exceeded(*self.totals()):
            with self.transaction() as index:
                index.make_room(limits)


def _close(db: sqlite3.Connection, queue: int) -> None:
    db.close()
    os.close(queue)


# Connections a forked child inherited: never used, never closed there.
_INHERITED: list[sqlite3.Connection | None] = []


def _reset_after_fork() -> None:
    CacheDirectory._registry_lock = threading.Lock()
    for directory in list(CacheDirectory._instances.values()):
        directory._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)
