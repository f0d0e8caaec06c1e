from __future__ import annotations

import dataclasses

import fsspec

import fsspec_patch


def cache_report(url: str) -> dict[str, int]:
    """Read ``url`` through the cache, then what the cache counted."""
    fs = fsspec.filesystem("simplecache", target_protocol="http")
    with fs.open(url) as f:
        f.read()
    stats = fsspec_patch.cache_stats(fs)  # CacheStats(hits=..., misses=..., entries=..., bytes=...)
    everywhere = fsspec_patch.cache_stats()  # the sum over all shared instances
    assert everywhere.entries >= stats.entries
    assert fs.cache_size() == stats.bytes  # bytes in the writable directory
    return dataclasses.asdict(stats)  # for JSON
