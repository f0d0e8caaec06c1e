"""One writable cache directory as every process sees it: an SQLite index in WAL mode.

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
import threading
import weakref
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = [
    "INDEX_DIR",
    "PARTIAL_PREFIX",
    "CacheDirectory",
    "IndexTransaction",
    "Limits",
    "as_limit",
    "is_entry_name",
    "remove_quietly",
]

#: Sub-directory of a cache directory holding its index (``index.sqlite3`` and the WAL).
INDEX_DIR = ".simplecache-index"
#: Name prefix of the temporary files that downloads and writes go through.
PARTIAL_PREFIX = ".partial-"
# fsspec's metadata file name in a cache directory: never a cache entry.
_METADATA_FILE = "cache"
# Downloads of one entry are serialised by one of these locks, picked by name hash.
_LOCK_STRIPES = 64
# Eviction candidates read per query.
_BATCH = 32
# Seconds to wait for another process's transaction before "database is locked".
_BUSY_TIMEOUT = 60.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    name TEXT PRIMARY KEY, size INTEGER NOT NULL, used INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS entries_by_use ON entries (used, name);
CREATE TABLE IF NOT EXISTS totals (
    id INTEGER PRIMARY KEY CHECK (id = 0), entries INTEGER NOT NULL, bytes INTEGER NOT NULL
);
INSERT OR IGNORE INTO totals VALUES (0, 0, 0);
CREATE TRIGGER IF NOT EXISTS entry_added AFTER INSERT ON entries BEGIN
    UPDATE totals SET entries = entries + 1, bytes = bytes + NEW.size;
END;
CREATE TRIGGER IF NOT EXISTS entry_removed AFTER DELETE ON entries BEGIN
    UPDATE totals SET entries = entries - 1, bytes = bytes - OLD.size;
END;
CREATE TRIGGER IF NOT EXISTS entry_resized AFTER UPDATE OF size ON entries BEGIN
    UPDATE totals SET bytes = bytes + NEW.size - OLD.size;
END;
"""


@dataclass(frozen=True)
class Limits:
    """Most entries and bytes a cache directory holds; ``None`` lifts a limit."""

    max_entries: int | None
    max_bytes: int | None

    def exceeded(self, entries: int, size: int) -> bool:
        """Return whether ``entries`` files of ``size`` bytes in all are over the limits."""
        return (self.max_entries is not None and entries > self.max_entries) or (
            self.max_bytes is not None and size > self.max_bytes
        )


def as_limit(value: int | str | None) -> int | None:
    """Return a limit option as an int (it may come as a string from the environment)."""
    if value is None:
        return None
    limit = int(value)
    if limit < 0:
        raise ValueError("cache limits must be >= 0 or None")
    return limit


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
        self.hits = self.misses = 0
        self._lock = threading.RLock()
        self._stripes = tuple(threading.RLock() for _ in range(_LOCK_STRIPES))
        self._db: sqlite3.Connection | None = None
        self._closer: weakref.finalize[[], CacheDirectory] | None = None
        with self._lock:
            self._connection()
        self.rescan()  # what other processes, or earlier runs, left here

    def _connection(self) -> sqlite3.Connection:
        if self._db is not None:
            return self._db
        folder = os.path.join(self.directory, INDEX_DIR)
        os.makedirs(folder, exist_ok=True)
        db = sqlite3.connect(
            os.path.join(folder, "index.sqlite3"),
            timeout=_BUSY_TIMEOUT,
            isolation_level=None,
            check_same_thread=False,
        )
        # Closed with this object, not by the garbage collector (a ResourceWarning on 3.13).
        self._closer = weakref.finalize(self, db.close)
        db.execute("PRAGMA journal_mode = WAL")
        # No fsync per commit: an index that lost its last commits in a power cut is
        # repaired by the scan of the next process to start (rescan()).
        db.execute("PRAGMA synchronous = NORMAL")
        try:
            db.executescript(f"BEGIN IMMEDIATE; {_SCHEMA} COMMIT;")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        self._db = db
        return db

    def _after_fork(self) -> None:
        # SQLite forbids using a connection in a forked child, and closing it there could
        # disturb the parent's: the child keeps it unused and opens its own. Locks held
        # by the parent's other threads would never be released here: new ones.
        if self._closer is not None:
            self._closer.detach()
        _INHERITED.append(self._db)
        self._db = self._closer = None
        self._lock = threading.RLock()
        self._stripes = tuple(threading.RLock() for _ in range(_LOCK_STRIPES))

    @contextlib.contextmanager
    def transaction(self) -> Iterator[IndexTransaction]:
        """Hold the index against every thread and process; changes commit together."""
        with self._lock:
            db = self._connection()
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

    def rescan(self, limits: Limits | None = None) -> None:
        """Index files the index lacks, forget the ones gone, then apply ``limits``.

        Files indexed already are left as they are, so a process starting late neither
        forgets nor counts twice what the others hold.
        """
        with self.transaction() as index:
            indexed = index.sizes()
            found = _scan(self.directory)
            for name in indexed.keys() - found.keys():
                index.drop(name)
            for name, (size, used) in found.items():
                if indexed.get(name) != size:
                    index.put(name, size, used)
            if limits is not None:
                index.make_room(limits)

    def apply(self, limits: Limits) -> None:
        """Evict the least recently used entries if the directory is over ``limits``."""
        if limits.exceeded(*self.totals()):
            with self.transaction() as index:
                index.make_room(limits)


class IndexTransaction:
    """The index within one transaction, as :meth:`CacheDirectory.transaction` yields it."""

    def __init__(self, directory: str, db: sqlite3.Connection) -> None:
        self.directory = directory
        self.db = db

    def put(self, name: str, size: int, used: int) -> None:
        """Record entry ``name``, new or replaced, with its size and last use (ns)."""
        self.db.execute(
            "INSERT INTO entries VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE"
            " SET size = excluded.size, used = excluded.used",
            (name, size, used),
        )

    def drop(self, name: str) -> None:
        """Forget entry ``name`` (its file is the caller's to remove)."""
        self.db.execute("DELETE FROM entries WHERE name = ?", (name,))

    def drop_all(self) -> None:
        """Forget every entry."""
        self.db.execute("DELETE FROM entries")

    def sizes(self) -> dict[str, int]:
        """Return every indexed entry with its size."""
        return dict(self.db.execute("SELECT name, size FROM entries"))

    def make_room(self, limits: Limits, keep: str | None = None, incoming: int = 0) -> None:
        """Evict least recently used entries until the directory, with ``keep``, fits.

        ``keep`` (about to be published with ``incoming`` bytes) is never evicted, so
        the newest entry stays even alone over ``max_bytes``. A candidate whose file was
        used since it was indexed (a newer modification time) takes that time and is
        passed over once; a file that cannot be removed (open, on Windows) stays, counted.
        """
        entries, size = self.db.execute("SELECT entries, bytes FROM totals").fetchone()
        if keep is not None:
            old = self.db.execute("SELECT size FROM entries WHERE name = ?", (keep,)).fetchone()
            entries += 0 if old else 1
            size += incoming - (old[0] if old else 0)
        refreshed: set[str] = set()
        cursor: tuple[int, str] = (-1, "")
        while limits.exceeded(entries, size):
            rows = self.db.execute(
                "SELECT used, name, size FROM entries WHERE (used, name) > (?, ?)"
                " ORDER BY used, name LIMIT ?",
                (*cursor, _BATCH),
            ).fetchall()
            if not rows:
                return
            for used, name, length in rows:
                cursor = (used, name)
                if (
                    name != keep
                    and limits.exceeded(entries, size)
                    and self._evict(name, used, refreshed)
                ):
                    entries, size = entries - 1, size - length

    def _evict(self, name: str, used: int, refreshed: set[str]) -> bool:
        path = os.path.join(self.directory, name)
        try:
            seen = os.stat(path).st_mtime_ns
        except FileNotFoundError:
            self.drop(name)
            return True
        if seen > used and name not in refreshed:
            # Used in some process since: it moves behind the cursor and is met again.
            refreshed.add(name)
            self.db.execute("UPDATE entries SET used = ? WHERE name = ?", (seen, name))
            return False
        try:
            remove_quietly(path)
        except PermissionError:
            return False  # Windows: open in some process, so it stays and counts
        self.drop(name)
        return True


# Connections a forked child inherited: never used, never closed there.
_INHERITED: list[sqlite3.Connection | None] = []


def _reset_after_fork() -> None:
    CacheDirectory._registry_lock = threading.Lock()
    for directory in list(CacheDirectory._instances.values()):
        directory._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


def _scan(directory: str) -> dict[str, tuple[int, int]]:
    found: dict[str, tuple[int, int]] = {}
    with contextlib.suppress(FileNotFoundError), os.scandir(directory) as entries:
        for entry in entries:
            if is_entry_name(entry.name) and entry.is_file(follow_symlinks=False):
                stat = entry.stat(follow_symlinks=False)
                found[entry.name] = (stat.st_size, stat.st_mtime_ns)
    return found


def is_entry_name(name: str) -> bool:
    """Return whether a file called ``name`` in a cache directory is a cache entry."""
    return not name.startswith(PARTIAL_PREFIX) and name not in (_METADATA_FILE, INDEX_DIR)


def remove_quietly(path: str) -> None:
    """Remove a file that may already be gone."""
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)
