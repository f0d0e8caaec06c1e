"""What the spawned worker processes of test_processes.py run: reads through one cache.

The target generates every file's bytes from its path, so each process knows what every
read must return without sharing a store; like a web server, it ignores the query, the
fragment and dot segments. Each worker checks every read, and after every read looks at
the cache directory: the most entries, bytes and files (temporary ones included) seen.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import posixpath
import tempfile
import traceback
from dataclasses import dataclass, field
from typing import Any

import fsspec
from fsspec.spec import AbstractFileSystem

from fsspec_patch import cache_stats

PROTOCOL = "generated"


def resource(url: str) -> str:
    """The file a URL names, as the server resolves it."""
    path = url.removeprefix(f"{PROTOCOL}://").partition("#")[0].partition("?")[0]
    return posixpath.normpath(path)


def content(url: str) -> bytes:
    """The bytes of the file ``url`` names: 256 to 1,276 bytes drawn from its name."""
    seed = hashlib.sha256(resource(url).encode()).digest()
    size = 256 + seed[0] * 4
    return (seed * (size // len(seed) + 1))[:size]


class GeneratedFileSystem(AbstractFileSystem):
    """A read-only target whose every file exists, with the bytes ``content`` gives."""

    protocol = PROTOCOL

    def _open(self, path: str, mode: str = "rb", **kwargs: Any) -> Any:
        return io.BytesIO(content(path))

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        return {"name": path, "size": len(content(path)), "type": "file"}


@dataclass(frozen=True)
class Job:
    """One worker's reads: ``urls`` in order, through ``directory`` with these limits."""

    directory: str
    urls: tuple[str, ...]
    max_entries: int | None
    max_bytes: int | None = None


@dataclass
class Report:
    """What one worker saw."""

    reads: int = 0
    wrong: int = 0
    errors: list[str] = field(default_factory=list)
    most_entries: int = 0
    most_bytes: int = 0
    most_files: int = 0
    misses: int = 0


def look(directory: str, report: Report) -> None:
    """Count the directory's entries, their bytes and all its files; keep the maxima."""
    names = os.listdir(directory)
    entries = [name for name in names if not name.startswith(".partial-")]
    size = 0
    for name in entries:
        with contextlib.suppress(FileNotFoundError):  # evicted since the listing
            size += os.stat(os.path.join(directory, name)).st_size
    report.most_entries = max(report.most_entries, len(entries))
    report.most_bytes = max(report.most_bytes, size)
    report.most_files = max(report.most_files, len(names))


def run(job: Job, ready: Any = None, signal_after: int = 0) -> Report:
    """Read every URL of ``job``; set ``ready`` once ``signal_after`` reads are done."""
    fsspec.register_implementation(PROTOCOL, GeneratedFileSystem, clobber=True)
    options = {"max_entries": job.max_entries, "max_bytes": job.max_bytes}
    report = Report()
    for i, url in enumerate(job.urls):
        try:
            with fsspec.open(f"simplecache::{url}", cache_storage=job.directory, **options) as f:
                report.wrong += f.read() != content(url)
        except Exception:
            report.errors.append(traceback.format_exc())
        report.reads += 1
        look(job.directory, report)
        if ready is not None and i + 1 == signal_after:
            ready.set()
    fs = fsspec.filesystem(
        "simplecache", target_protocol=PROTOCOL, cache_storage=job.directory, **options
    )
    report.misses = cache_stats(fs).misses
    return report


def start_together(directories: tuple[str, ...], start: Any, number: int) -> Report:
    """Open each new directory in turn the moment every worker is ready (``start`` is a
    barrier), as a server's workers all starting at once do, and read one file there."""
    fsspec.register_implementation(PROTOCOL, GeneratedFileSystem, clobber=True)
    # Everything imported and loaded first (on a directory of its own), so that the
    # processes reach each shared directory in the same instant.
    with tempfile.TemporaryDirectory() as own:
        fsspec.filesystem("simplecache", target_protocol=PROTOCOL, cache_storage=own)
    report = Report()
    url = f"{PROTOCOL}:///start/f{number % 3}"
    for directory in directories:
        start.wait(60)  # a worker that died breaks the barrier: no hang
        try:
            fs = fsspec.filesystem("simplecache", target_protocol=PROTOCOL, cache_storage=directory)
            report.wrong += fs.cat(url) != content(url)
        except Exception:
            report.errors.append(traceback.format_exc())
        report.reads += 1
    return report
