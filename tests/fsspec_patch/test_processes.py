"""Real worker processes (spawned) on one cache directory: one bound, one LRU, no race.

Every run is bounded in reads and in time (a deadline, never a measurement: tests.processes)
and checks every read's bytes, that no read raised, and the directory's entries, bytes
and files both during the run (each worker looks after every read) and at the end.
"""

from __future__ import annotations

import os
import random
from collections.abc import Sequence
from typing import Any

import fsspec
import pytest
from cache_helpers import entries, variant
from cache_workers import PROTOCOL, GeneratedFileSystem, Job, Report, content, run, start_together

from fsspec_patch import CacheStats, cache_stats
from tests.processes import SPAWN, spawned

WORKERS = 4


@pytest.fixture(autouse=True)
def _generated_target() -> None:
    fsspec.register_implementation(PROTOCOL, GeneratedFileSystem, clobber=True)


def run_workers(jobs: Sequence[Job], *, stagger: int = 0) -> list[Report]:
    """Run one spawned process per job; with ``stagger``, each starts once the previous
    one has done that many reads (a process joining a directory in use)."""
    ready = [SPAWN.Event() for _ in jobs]
    arguments = [(job, ready[n], stagger) for n, job in enumerate(jobs)]
    return spawned(run, arguments, ready if stagger else None)


def urls(files: int, reads: int, seed: int, *, variants: bool = False) -> tuple[str, ...]:
    """``reads`` URLs of files drawn at random from ``files`` (minor variants if asked)."""
    rnd = random.Random(seed)
    paths = [f"/mp/d{k % 7}/file{k}.bin" for k in range(files)]
    chosen = [rnd.choice(paths) for _ in range(reads)]
    if variants:
        chosen = [variant(rnd, path, i) for i, path in enumerate(chosen)]
    return tuple(f"{PROTOCOL}://{path}" for path in chosen)


def check_reads(reports: list[Report], reads: int) -> None:
    """Every read happened, returned the right bytes and raised nothing."""
    assert [r.errors for r in reports] == [[]] * len(reports)
    assert [r.wrong for r in reports] == [0] * len(reports)
    assert [r.reads for r in reports] == [reads] * len(reports)


def on_disk(directory: str) -> CacheStats:
    """Entries and bytes in the directory, counted by listing it."""
    names = [n for n in entries(directory) if not n.startswith(".partial-")]
    return CacheStats(
        entries=len(names), bytes=sum(os.path.getsize(os.path.join(directory, n)) for n in names)
    )


def index_of(directory: str, **options: Any) -> CacheStats:
    """What the directory's shared index says (entries and bytes only)."""
    fs = fsspec.filesystem(
        "simplecache", target_protocol=PROTOCOL, cache_storage=directory, **options
    )
    stats = cache_stats(fs)
    return CacheStats(entries=stats.entries, bytes=stats.bytes)


def jobs_for(directory: str, files: int, reads: int, **options: Any) -> list[Job]:
    """One job per worker, each with its own random order over the same files."""
    variants = options.pop("variants", False)
    return [
        Job(directory, urls(files, reads, seed, variants=variants), **options)
        for seed in range(WORKERS)
    ]


def check_run(reports: list[Report], directory: str, reads: int, bound: int, final: int) -> None:
    """Reads as ``check_reads``; at most ``bound`` entries at any time, ``final`` at the end,
    at most one temporary file per download in flight (one per worker here), and an
    index that agrees with the disk."""
    check_reads(reports, reads)
    assert max(r.most_entries for r in reports) <= bound
    assert max(r.most_files for r in reports) <= bound + WORKERS
    assert on_disk(directory).entries == final
    assert index_of(directory) == on_disk(directory)


def test_many_distinct_files_keep_one_bound(cache_dir: str) -> None:
    reports = run_workers(jobs_for(cache_dir, files=400, reads=150, max_entries=10))
    check_run(reports, cache_dir, 150, bound=10, final=10)


def test_hot_set_smaller_than_the_bound_is_never_evicted(cache_dir: str) -> None:
    reports = run_workers(jobs_for(cache_dir, files=6, reads=200, max_entries=10))
    check_run(reports, cache_dir, 200, bound=6, final=6)
    # Nothing is ever evicted: a process downloads a file at most once, and only when
    # no other process has published it yet.
    assert sum(r.misses for r in reports) <= 6 * WORKERS


def test_hot_set_larger_than_the_bound_stays_within_it(cache_dir: str) -> None:
    reports = run_workers(jobs_for(cache_dir, files=15, reads=200, max_entries=10))
    check_run(reports, cache_dir, 200, bound=10, final=10)


def test_processes_starting_together_on_new_directories(tmp_path: Any) -> None:
    # A server's workers starting at once all open a new directory's index in the same
    # instant. While the switch of a new index to WAL was not queued, about one round in
    # three failed a worker with "database is locked"; 30 rounds make that failure sure.
    directories = tuple(str(tmp_path / f"new{k}") for k in range(30))
    start = SPAWN.Barrier(8)
    reports = spawned(start_together, [(directories, start, n) for n in range(8)])
    check_reads(reports, len(directories))
    for directory in directories:
        assert (
            index_of(directory)
            == on_disk(directory)
            == CacheStats(
                entries=3, bytes=sum(len(content(f"{PROTOCOL}:///start/f{n}")) for n in range(3))
            )
        )


def test_staggered_starts_neither_forget_nor_double_count(cache_dir: str) -> None:
    limits = {"max_entries": 10, "max_bytes": 6000}
    reports = run_workers(jobs_for(cache_dir, files=40, reads=150, **limits), stagger=40)
    check_reads(reports, 150)
    assert max(r.most_entries for r in reports) <= 10
    assert max(r.most_bytes for r in reports) <= 6000  # every file is smaller than 1.3 KB
    assert 0 < on_disk(cache_dir).bytes <= 6000
    assert index_of(cache_dir, **limits) == on_disk(cache_dir)


def test_heavy_sharing_with_url_variants(cache_dir: str) -> None:
    jobs = jobs_for(cache_dir, files=30, reads=600, max_entries=10, variants=True)
    check_run(run_workers(jobs), cache_dir, 600, bound=10, final=10)


def test_a_hit_in_any_process_counts_as_a_use(cache_dir: str) -> None:
    files = [f"{PROTOCOL}:///lru/f{i}" for i in range(10)]
    (first,) = run_workers([Job(cache_dir, tuple(files), max_entries=10)])
    check_reads([first], 10)
    # This process reads f0, which another process downloaded: f0 is now the newest use.
    with fsspec.open(f"simplecache::{files[0]}", cache_storage=cache_dir, max_entries=10) as f:
        assert f.read() == content(files[0])
    # A third process downloads a new file: the least recently used, f1, makes room.
    (third,) = run_workers([Job(cache_dir, (f"{PROTOCOL}:///lru/new",), max_entries=10)])
    check_reads([third], 1)
    every = [*files, f"{PROTOCOL}:///lru/new"]
    fs = fsspec.filesystem("simplecache", target_protocol=PROTOCOL, cache_storage=cache_dir)
    names = {fs._mapper(GeneratedFileSystem._strip_protocol(url)): url for url in every}
    assert {names[name] for name in entries(cache_dir)} == set(every) - {files[1]}


def test_a_later_process_indexes_only_what_the_index_lacks(cache_dir: str) -> None:
    fs = fsspec.filesystem("simplecache", target_protocol=PROTOCOL, cache_storage=cache_dir)
    for i in range(3):
        fs.cat(f"/late/f{i}")
    size = sum(len(content(f"/late/f{i}")) for i in range(3))
    with open(os.path.join(cache_dir, "placed-by-hand"), "wb") as f:
        f.write(b"12345")
    assert index_of(cache_dir) == CacheStats(entries=3, bytes=size)  # unknown here yet
    (late,) = run_workers([Job(cache_dir, (f"{PROTOCOL}:///late/f0",), max_entries=None)])
    check_reads([late], 1)
    # The new process's start-up scan added the unknown file once, nothing twice.
    assert index_of(cache_dir) == CacheStats(entries=4, bytes=size + 5) == on_disk(cache_dir)
