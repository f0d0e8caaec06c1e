"""Patched vs unpatched fsspec simplecache, measured in one run on the same files.

Run:  .venv/bin/python benchmarks/bench_fsspec.py [--variants 100000] [--files 100] [--quick]
          [--before 81cbd10]

``--quick`` (2,000 variants, fewer repeats and misses) takes well under a minute; its
memory figures stay below the 4096-entry LRU, so they show growth, not the plateau.

``--before REV`` also loads the patch as it was at git revision REV (by default the last
one before the cross-process index) into a temporary package, to compare its hit cost
with today's in the same run, and to run it in the multi-process case: 4 spawned
processes on one cache directory, each timing hits and misses, then the files on disk.

The target is an in-memory "server" filesystem that, like HTTP servers and object
stores, ignores the query string, fragment and dot segments of the paths it is asked
for, so every URL variant can be fetched by both implementations. Prints markdown
tables; ratio = unpatched / patched (above 1: the patch is faster or smaller).
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import importlib
import io
import multiprocessing
import os
import posixpath
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import fsspec
from fsspec.implementations.cache_mapper import HashCacheMapper
from fsspec.implementations.cached import SimpleCacheFileSystem
from fsspec.implementations.memory import MemoryFileSystem

import fsspec_patch
from fsspec_patch import CanonicalCacheMapper, CanonicalSimpleCacheFileSystem, canonical_key

PROTOCOL = "benchsrv"
SIZE = 1024
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The last revision before the cross-process index: the "before" of the hit cost.
BEFORE = "81cbd10"
PROCESSES = 4
# (measurement, unpatched, patched, unit)
Row = tuple[str, float, float, str]
Installer = Callable[[], None]
SIDES: tuple[tuple[str, Installer], tuple[str, Installer]] = (
    ("old", fsspec_patch.uninstall),
    ("new", fsspec_patch.install),
)


class ServerLikeFileSystem(MemoryFileSystem):
    """Memory-backed target that resolves paths as a web server would (query ignored)."""

    protocol = PROTOCOL

    @classmethod
    def _strip_protocol(cls, path: Any) -> Any:
        return super()._strip_protocol(str(path).removeprefix(f"{PROTOCOL}://"))

    @staticmethod
    def _resource(path: str) -> str:
        return posixpath.normpath(path.partition("#")[0].partition("?")[0])

    def _open(self, path: str, *args: Any, **kwargs: Any) -> Any:
        return super()._open(self._resource(path), *args, **kwargs)

    def info(self, path: str, **kwargs: Any) -> Any:
        return super().info(self._resource(path), **kwargs)


def open_read(opener: Callable[[str], Any], urls: list[str]) -> Callable[[], None]:
    """An action opening and reading every URL once."""

    def action() -> None:
        for url in urls:
            with opener(url) as f:
                f.read()

    return action


def per_op(action: Callable[[], None], ops: int) -> float:
    """Microseconds per operation of one run of ``action``."""
    start = time.perf_counter()
    action()
    return (time.perf_counter() - start) / ops * 1e6


def compare(
    old: Callable[[], None], new: Callable[[], None], ops: int, runs: int
) -> tuple[float, float]:
    """Best time per operation (us) of each action; runs alternate to share the noise."""
    found = [(per_op(old, ops), per_op(new, ops)) for _ in range(runs)]
    return min(r[0] for r in found), min(r[1] for r in found)


def best(action: Callable[[], None], ops: int, runs: int) -> float:
    """Best time per operation (us) over ``runs`` runs."""
    return min(per_op(action, ops) for _ in range(runs))


def make_fs(cls: type, storage: str) -> Any:
    """A private caching filesystem of ``cls`` over the server-like target."""
    return cls(target_protocol=PROTOCOL, cache_storage=storage, skip_instance_cache=True)


def variant(path: str, i: int, query: bool = True) -> str:
    """URL variant number ``i`` of ``path``: cache buster, reordered params, fragment, dots."""
    head, _, name = path.rpartition("/")
    params = [f"t={i}", "a=1", "b=2"] if i % 2 else ["b=2", f"t={i}", "a=1"]
    dots = ("", "./", "x/../")[i % 3]
    tail = f"?{'&'.join(params)}" if query else ""
    return f"{head}/{dots}{name}{tail}" + (f"#{i}" if i % 5 == 0 or not query else "")


def timings(root: str, paths: list[str], fresh: list[str], runs: int) -> list[Row]:
    """Per-operation times of hits (fs.open, fsspec.open) and misses."""
    old = make_fs(SimpleCacheFileSystem, f"{root}/old")
    new = make_fs(CanonicalSimpleCacheFileSystem, f"{root}/new")
    hot = paths[:10] * 100
    for fs in (old, new):
        open_read(fs.open, paths[:10])()
    local = [os.path.join(new.storage[-1], new._mapper(p)) for p in hot]
    plain = open_read(lambda p: open(p, "rb"), local)  # noqa: SIM115
    top = [f"simplecache::{PROTOCOL}://{p}" for p in hot]

    def top_level(install: Installer, storage: str) -> Callable[[], None]:
        def action() -> None:
            install()
            open_read(lambda u: fsspec.open(u, cache_storage=storage).open(), top)()

        return action

    return [
        (
            "plain local open+read of the cached file (reference)",
            *compare(plain, plain, 1000, runs),
            "us",
        ),
        (
            "hit: fs.open + read",
            *compare(open_read(old.open, hot), open_read(new.open, hot), 1000, runs),
            "us",
        ),
        (
            "hit: fsspec.open + read",
            *compare(
                top_level(fsspec_patch.uninstall, old.storage[-1]),
                top_level(fsspec_patch.install, new.storage[-1]),
                1000,
                runs,
            ),
            "us",
        ),
        ("miss: fs.open + read (fetch and store)", *miss_times(root, fresh), "us"),
    ]


def miss_times(root: str, paths: list[str]) -> tuple[float, float]:
    """Median us per first open+read of a file, each run on an empty cache, sides alternating."""
    runs: list[list[float]] = [[], []]
    for run in range(3):
        for side, cls in enumerate((SimpleCacheFileSystem, CanonicalSimpleCacheFileSystem)):
            fs = make_fs(cls, f"{root}/miss-{side}-{run}")
            runs[side].append(per_op(open_read(fs.open, paths), len(paths)))
    return statistics.median(runs[0]), statistics.median(runs[1])


def variant_opens(storage: str, paths: list[str], first: int, last: int) -> None:
    """fsspec.open + read of URL variants number ``first`` to ``last - 1``."""
    for i in range(first, last):
        url = f"simplecache::{PROTOCOL}://{variant(paths[i % len(paths)], i)}"
        with fsspec.open(url, cache_storage=storage) as f:
            f.read()


def traced_kib(step: Callable[[int, int], None], marks: list[int]) -> list[float]:
    """KiB allocated since the start (tracemalloc, after gc) once ``step`` reached each mark.

    Tracing runs from the first operation on, so memory freed later (an LRU replacing
    entries) is subtracted as well: the figures are what the process really holds.
    """
    gc.collect()
    tracemalloc.start()
    base, done, out = tracemalloc.get_traced_memory()[0], 0, []
    for mark in marks:
        step(done, mark)
        done = mark
        gc.collect()
        out.append((tracemalloc.get_traced_memory()[0] - base) / 1024)
    tracemalloc.stop()
    return out


def growth(root: str, paths: list[str], n: int) -> list[Row]:
    """Time, memory and disk over N variant opens; memory and disk of cat() over variants."""
    timed, cat_n = min(n, 10_000), min(n, 20_000)
    open_marks, cat_marks = [n // 10, n], [cat_n // 4, cat_n // 2, cat_n]
    found = []
    for side, install in SIDES:
        install()
        per_open = per_op(lambda s=f"{root}/{side}-timed": variant_opens(s, paths, 0, timed), timed)
        storage = f"{root}/{side}-variants"
        opens = traced_kib(lambda a, b, s=storage: variant_opens(s, paths, a, b), open_marks)
        cat_fs = fsspec.filesystem(
            "simplecache", target_protocol=PROTOCOL, cache_storage=f"{root}/{side}-cat"
        )

        def cats(first: int, last: int, fs: Any = cat_fs) -> None:
            # No query here: the unpatched cat() would take "?" for a glob and fail.
            for i in range(first, last):
                fs.cat(variant(paths[i % len(paths)], i, query=False))

        cat_kib = traced_kib(cats, cat_marks)
        found.append(
            (
                per_open,
                *opens,
                len(os.listdir(storage)),
                *cat_kib,
                len(os.listdir(f"{root}/{side}-cat")),
            )
        )
    old, new = found
    names = [
        (f"fsspec.open + read of a URL variant (mean of {timed:,})", "us"),
        *[(f"memory held after {m:,} variant opens (tracemalloc)", "KiB") for m in open_marks],
        (f"disk entries after {n:,} variant opens", "files"),
        *[(f"memory held after {m:,} fs.cat() of variants", "KiB") for m in cat_marks],
        (f"disk entries after {cat_n:,} fs.cat() of variants", "files"),
    ]
    return [(name, o, w, unit) for (name, unit), o, w in zip(names, old, new, strict=True)]


def thread_pool_copies(paths: list[str]) -> list[Row]:
    """Cache directories and files after 8 threads each read every file via fsspec.open."""
    found = []
    for _, install in SIDES:
        install()
        barrier = threading.Barrier(8)

        def work(_: int, barrier: threading.Barrier = barrier) -> set[str]:
            barrier.wait()  # eight distinct threads, each reading all the files
            dirs = set()
            for path in paths:
                of = fsspec.open(f"simplecache::{PROTOCOL}://{path}")
                with of as f:
                    f.read()
                dirs.add(str(of.fs.storage[-1]))
            return dirs

        with ThreadPoolExecutor(8) as pool:
            dirs: set[str] = set().union(*pool.map(work, range(8)))
        found.append((len(dirs), sum(len(os.listdir(d)) for d in dirs)))
    (old_dirs, old_files), (new_dirs, new_files) = found
    name = "thread pool of 8, each reading every file:"
    return [
        (f"{name} cache directories", old_dirs, new_dirs, "dirs"),
        (f"{name} cached files", old_files, new_files, "files"),
    ]


def urllib_key(url: str) -> str:
    """A straightforward urllib canonicalisation: the reference cost of a cold key."""
    parts = urlsplit(url)
    query = sorted(
        kv
        for kv in parse_qsl(parts.query, keep_blank_values=True)
        if kv[0] in ("version", "dataset")
    )
    path = posixpath.normpath(parts.path) if parts.path else "/"
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), path, urlencode(query), ""))


def key_timings(count: int, runs: int) -> tuple[list[Row], float]:
    """Time per cache key of signed S3-style URLs: rows, and the urllib reference."""
    urls = [
        f"https://h.example/bucket/data/file{i}.parquet?X-Amz-Date=2024&X-Amz-Signature="
        f"{i:040x}&versionId={i}&b=2&a=1"
        for i in range(count)
    ]
    hashed = HashCacheMapper()
    mapper = CanonicalCacheMapper()
    mapper(urls[0])
    raw = best(lambda: [hashed(u) for u in urls], count, runs)
    rows: list[Row] = [
        (
            "cache key of a new URL (unpatched: sha256 of the raw URL, 3 per open;"
            " patched: canonical_key)",
            raw,
            best(lambda: [canonical_key(u) for u in urls], count, runs),
            "us",
        ),
        (
            "cache key of a seen URL (patched: CanonicalCacheMapper's LRU memo)",
            raw,
            best(lambda: [mapper(urls[0]) for _ in range(count)], count, runs),
            "us",
        ),
    ]
    return rows, best(lambda: [urllib_key(u) for u in urls], count, runs)


def load_before(revision: str, into: str) -> Any:
    """The patched class as of git ``revision``, imported as package ``fsspec_patch_before``.

    Returns None when git or the revision is not there. Importing it installs the old
    class, so today's is installed again at once.
    """
    if not os.path.isdir(os.path.join(into, "fsspec_patch_before")):
        try:
            archive = subprocess.run(
                ["git", "-C", ROOT, "archive", revision, "fsspec_patch"],
                capture_output=True,
                check=True,
            ).stdout
        except (OSError, subprocess.CalledProcessError):
            return None
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(into, filter="data")
        os.rename(os.path.join(into, "fsspec_patch"), os.path.join(into, "fsspec_patch_before"))
    sys.path.insert(0, into)
    module = importlib.import_module("fsspec_patch_before")
    fsspec_patch.install()
    return module.CanonicalSimpleCacheFileSystem


def hit_before_after(root: str, paths: list[str], runs: int, before: Any) -> list[Row]:
    """fs.open + read hit of the patch at ``--before`` and now, runs alternating."""
    old = make_fs(before, f"{root}/hit-before")
    new = make_fs(CanonicalSimpleCacheFileSystem, f"{root}/hit-after")
    hot = paths[:10] * 100
    for fs in (old, new):
        open_read(fs.open, paths[:10])()
    return [
        (
            "hit: fs.open + read, one process",
            *compare(open_read(old.open, hot), open_read(new.open, hot), 1000, runs),
            "us",
        )
    ]


def generated(path: str) -> bytes:
    """The bytes of ``path`` on every worker's server: SIZE bytes drawn from the path."""
    return hashlib.sha256(path.encode()).digest() * (SIZE // 32)


def process_worker(args: tuple[str, str, str, int, int, int, int]) -> tuple[float, float, int]:
    """One of the processes: hits on a hot set while others miss; us per hit, per miss."""
    side, storage, before_dir, number, hot_files, misses, max_entries = args
    fsspec.register_implementation(PROTOCOL, ServerLikeFileSystem, clobber=True)
    server = fsspec.filesystem(PROTOCOL)
    hot = [f"/mp/hot{k}.bin" for k in range(hot_files)]
    fresh = [f"/mp/w{number}/new{k}.bin" for k in range(misses)]
    for path in hot + fresh:
        server.pipe(path, generated(path))
    if side == "unpatched":
        fs = make_fs(SimpleCacheFileSystem, storage)
    else:
        cls = CanonicalSimpleCacheFileSystem
        if side == "before":
            cls = load_before(BEFORE, before_dir)
        fs = cls(
            target_protocol=PROTOCOL,
            cache_storage=storage,
            max_entries=max_entries,
            skip_instance_cache=True,
        )
    open_read(fs.open, hot)()
    # Interleaved: a slice of hits, then a miss, so the others' misses meet our hits.
    hit_time = miss_time = 0.0
    most = 0
    per_slice = 20
    for path in fresh:
        hit_time += per_op(open_read(fs.open, hot * (per_slice // hot_files)), 1)
        miss_time += per_op(open_read(fs.open, [path]), 1)
        most = max(most, len([n for n in os.listdir(storage) if not n.startswith(".")]))
    hits = len(fresh) * (per_slice // hot_files) * hot_files
    return hit_time / hits, miss_time / len(fresh), most


def multi_process(root: str, before_dir: str, before: bool, misses: int) -> list[Row]:
    """4 spawned processes on one cache directory: hit and miss cost, files on disk."""
    max_entries, hot_files = 100, 10
    sides = ["unpatched", *(["before"] if before else []), "after"]
    found: dict[str, tuple[float, float, int, int]] = {}
    context = multiprocessing.get_context("spawn")
    with context.Pool(PROCESSES) as pool:
        for side in sides:
            storage = f"{root}/mp-{side}"
            os.makedirs(storage)
            jobs = [
                (side, storage, before_dir, n, hot_files, misses, max_entries)
                for n in range(PROCESSES)
            ]
            results = pool.map(process_worker, jobs)
            files = len([n for n in os.listdir(storage) if not n.startswith(".")])
            found[side] = (
                statistics.median(r[0] for r in results),
                statistics.median(r[1] for r in results),
                max(r[2] for r in results),
                files,
            )
    name = f"{PROCESSES} processes, one directory, max_entries={max_entries}:"
    units = ["us", "us", "files", "files"]
    labels = [
        "hit: fs.open + read (median of the processes)",
        "miss: fs.open + read (median of the processes)",
        "most files seen during the run",
        f"files at the end ({PROCESSES} x {misses} distinct files + {hot_files} hot)",
    ]
    rows: list[Row] = []
    for i, (label, unit) in enumerate(zip(labels, units, strict=True)):
        rows.append((f"{name} {label}", found["unpatched"][i], found["after"][i], unit))
        if before:
            rows.append((f"{name} {label}, before", found["before"][i], found["after"][i], unit))
    return rows


def ratio(old: float, new: float) -> str:
    """``old / new`` with the digits that matter."""
    if not new:
        return "-"
    value = old / new
    return f"{value:,.0f}x" if value >= 10 else f"{value:.1f}x" if value >= 0.1 else f"{value:.3f}x"


def print_rows(rows: list[Row]) -> None:
    """Print measurement rows as markdown table rows."""
    for name, old, new, unit in rows:
        digits = 0 if unit in ("files", "dirs") else 2 if name.startswith("cache key") else 1
        print(
            f"| {name} | {old:,.{digits}f} {unit} | {new:,.{digits}f} {unit} | {ratio(old, new)} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--variants", type=int, default=None, help="default 100000")
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--quick", action="store_true", help="2,000 variants, fewer repeats")
    parser.add_argument("--before", default=BEFORE, help="git revision of the 'before' patch")
    args = parser.parse_args()
    variants = args.variants or (2_000 if args.quick else 100_000)
    if variants < 20:
        parser.error("--variants must be at least 20")
    runs = 3 if args.quick else 7
    fsspec.register_implementation(PROTOCOL, ServerLikeFileSystem, clobber=True)
    server = fsspec.filesystem(PROTOCOL)
    everything = [f"/bench/d{k}/file{k}.bin" for k in range(args.files + 1000)]
    for path in everything:
        server.pipe(path, os.urandom(SIZE))
    paths, fresh = everything[: args.files], everything[args.files :]
    if args.quick:
        fresh = fresh[:200]
    root = tempfile.mkdtemp(prefix="bench-fsspec-")
    before_dir = os.path.join(root, "before")
    try:
        before = load_before(args.before, before_dir)
        before_rows = hit_before_after(root, paths, runs, before) if before else []
        rows = timings(root, paths, fresh, runs) + growth(root, paths, variants)
        rows += thread_pool_copies(paths)
        key_rows, reference = key_timings(2_000 if args.quick else 10_000, runs)
        process_rows = multi_process(
            root, before_dir, before is not None, 50 if args.quick else 200
        )
    finally:
        fsspec_patch.install()
        shutil.rmtree(root, ignore_errors=True)
    print(f"\n{len(paths)} files of {SIZE} B; ratio = unpatched / patched\n")
    print("| measurement | unpatched simplecache | patched | ratio |")
    print("|---|---:|---:|---:|")
    print_rows(rows + key_rows)
    print(f"\nreference: a urllib-based canonicalisation costs {reference:.2f} us per URL")
    print(f"\nBefore ({args.before}) and now; ratio = before / now\n")
    print("| measurement | before | now | ratio |")
    print("|---|---:|---:|---:|")
    print_rows(before_rows)
    print("\nMulti-process; ratio = unpatched (or before) / now\n")
    print("| measurement | unpatched (or before) | now | ratio |")
    print("|---|---:|---:|---:|")
    print_rows(process_rows)


if __name__ == "__main__":
    main()
