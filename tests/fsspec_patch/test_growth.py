"""Bounded growth: N URL variants of K files make K entries and no new instances."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

import fsspec
import pytest
from cache_helpers import entries, variant
from fsspec.implementations.cached import SimpleCacheFileSystem
from fsspec.implementations.memory import MemoryFileSystem

from fsspec_patch import CanonicalSimpleCacheFileSystem, cache_stats

if TYPE_CHECKING:
    from conftest import RecordingServer

K = 10


def bound(n: int) -> int:
    """The issue's bound on growth for N variants of K files."""
    return K + 1 if n <= 5 else K + max(10, n // 10)


@pytest.mark.parametrize("n", [1, 5, 100, 10_000])
def test_memory_variants_keep_k_entries_and_no_new_instances(
    n: int, memfs: Any, mem_root: str, cache_dir: str
) -> None:
    paths = [f"{mem_root}/d{k}/file{k}.bin" for k in range(K)]
    for k, path in enumerate(paths):
        memfs.pipe(path, b"%d" % k)
    before = len(SimpleCacheFileSystem._cache)
    for path in paths:  # a memory target only knows the plain names: fetch those first
        with fsspec.open(f"simplecache::memory://{path}", cache_storage=cache_dir) as f:
            f.read()
    # One instance per logical file, in fsspec's own instance cache.
    assert len(SimpleCacheFileSystem._cache) - before == K
    ours, targets = len(CanonicalSimpleCacheFileSystem._cache), len(MemoryFileSystem._cache)
    rnd = random.Random(n)
    for i in range(n):
        k = rnd.randrange(K)
        url = f"simplecache::memory://{variant(rnd, paths[k], i)}"
        with fsspec.open(url, cache_storage=cache_dir) as f:
            assert f.read() == b"%d" % k
    on_disk = len(entries(cache_dir))
    assert on_disk <= bound(n)
    assert len(CanonicalSimpleCacheFileSystem._cache) - ours <= bound(n) - K
    assert on_disk == K
    assert len(CanonicalSimpleCacheFileSystem._cache) == ours
    assert len(MemoryFileSystem._cache) == targets
    fs = fsspec.filesystem("simplecache", target_protocol="memory", cache_storage=cache_dir)
    assert cache_stats(fs).misses == K
    assert fs._mapper.memo_size() <= fs._mapper.key_cache_size


def test_http_variants_fetch_each_file_once(http_server: RecordingServer, cache_dir: str) -> None:
    for k in range(3):
        http_server.files[f"/d/file{k}.bin"] = b"%d" % k
    rnd = random.Random(3)
    fs = fsspec.filesystem("simplecache", target_protocol="http", cache_storage=cache_dir)
    for i in range(300):
        k = rnd.randrange(3)
        url = http_server.url(variant(rnd, f"/d/file{k}.bin", i))
        with fs.open(url) as f:
            assert f.read() == b"%d" % k
    assert len(http_server.requests) == 3
    assert len(entries(cache_dir)) == 3
