"""What one transaction of a cache directory's index can do: record, forget, evict.

The index is an SQLite database (see :func:`index_folder`) with one row per entry file:
its name, size and last use in nanoseconds; triggers keep the totals row exact.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
import stat
import tempfile
from dataclasses import dataclass

__all__ = [
    "PARTIAL_PREFIX",
    "SCHEMA",
    "IndexTransaction",
    "Limits",
    "as_limit",
    "index_folder",
    "is_entry_name",
    "remove_quietly",
]

#: Name prefix of the temporary files that downloads and writes go through.
PARTIAL_PREFIX = ".partial-"
# fsspec's metadata file name in a cache directory: never a cache entry.
_METADATA_FILE = "cache"
# Eviction candidates read per query.
_BATCH = 32

SCHEMA = """
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

    def sync(self, found: dict[str, tuple[int, int]]) -> None:
        """Index the files ``found`` (name: size, mtime) that it lacks; forget the rest.

        Entries indexed already keep their row, so a process starting late neither
        forgets nor counts twice what the others hold.
        """
        indexed = dict(self.db.execute("SELECT name, size FROM entries"))
        for name in indexed.keys() - found.keys():
            self.drop(name)
        for name, (size, used) in found.items():
            if indexed.get(name) != size:
                self.put(name, size, used)

    def remove_unused(self, used_before: int | None, stale_partials: float) -> None:
        """Remove the entries last used before ``used_before`` ns (all with ``None``).

        Temporary files are removed only when untouched since ``stale_partials`` (a
        time in seconds): younger ones may be downloads still running in some process.
        """
        with contextlib.suppress(FileNotFoundError), os.scandir(self.directory) as found:
            for entry in found:
                with contextlib.suppress(FileNotFoundError):
                    if not entry.is_file(follow_symlinks=False):
                        continue
                    stat = entry.stat(follow_symlinks=False)
                    if is_entry_name(entry.name):
                        if used_before is None or stat.st_mtime_ns < used_before:
                            os.remove(entry.path)
                            self.drop(entry.name)
                    elif entry.name.startswith(PARTIAL_PREFIX) and stat.st_mtime < stale_partials:
                        os.remove(entry.path)

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


def scan(directory: str) -> dict[str, tuple[int, int]]:
    """Return the entry files of ``directory``: name to (size, modification time in ns)."""
    found: dict[str, tuple[int, int]] = {}
    with contextlib.suppress(FileNotFoundError), os.scandir(directory) as entries:
        for entry in entries:
            # Another program may remove its files while this runs.
            with contextlib.suppress(FileNotFoundError):
                if is_entry_name(entry.name) and entry.is_file(follow_symlinks=False):
                    stat = entry.stat(follow_symlinks=False)
                    found[entry.name] = (stat.st_size, stat.st_mtime_ns)
    return found


def is_entry_name(name: str) -> bool:
    """Return whether a file called ``name`` in a cache directory is a cache entry.

    Entry names are text (a digest, or what a mapper makes of a canonical key): a name
    that is not valid UTF-8 is another program's file, and SQLite could not store it.
    """
    if name.startswith(PARTIAL_PREFIX) or name == _METADATA_FILE:
        return False
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def remove_quietly(path: str) -> None:
    """Remove a file that may already be gone."""
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)


def index_folder(directory: str) -> str:
    """Return (and create) the folder of the index of cache ``directory``.

    It lies outside the cache directory, which holds nothing but entries: in this user's
    ``simplecache-index-<uid>`` folder of the temporary directory, named by a hash of the
    directory's real path, so every process that shares the temporary directory (as the
    workers of one server do) finds the same index.
    """
    owner = os.getuid() if hasattr(os, "getuid") else None  # Windows: a per-user temp dir
    suffix = "" if owner is None else f"-{owner}"
    base = os.path.join(tempfile.gettempdir(), f"simplecache-index{suffix}")
    os.makedirs(base, mode=0o700, exist_ok=True)
    if owner is not None:
        found = os.lstat(base)
        if not stat.S_ISDIR(found.st_mode) or found.st_uid != owner:
            raise PermissionError(f"{base} is not a directory of this user's")
    digest = hashlib.sha256(os.path.realpath(directory).encode("utf-8", "surrogatepass"))
    folder = os.path.join(base, digest.hexdigest()[:32])
    os.makedirs(folder, exist_ok=True)
    return folder
