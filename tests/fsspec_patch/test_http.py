"""The patched simplecache over http:// against a local server that records every request."""

from __future__ import annotations

import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import fsspec
import pytest

from fsspec_patch import CacheStats, cache_stats

if TYPE_CHECKING:
    from conftest import RecordingServer

SECRET = "s3cr3tSIGNATUREvalue"
SIGNED = (
    f"X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAEXAMPLE%2F{SECRET}"
    f"&X-Amz-Date=20240101T000000Z&X-Amz-Expires=3600&X-Amz-Security-Token={SECRET}"
    f"&X-Amz-Signature={SECRET}"
)


def fetch(url: str, **options: Any) -> bytes:
    """Read ``url`` through simplecache with fsspec.open."""
    with fsspec.open(f"simplecache::{url}", **options) as f:
        data: bytes = f.read()
    return data


def all_files(directory: str) -> list[Path]:
    """Every file below ``directory``."""
    return [p for p in Path(directory).rglob("*") if p.is_file()]


def test_original_url_is_fetched_once_then_variants_are_free(
    http_server: RecordingServer, cache_dir: str
) -> None:
    http_server.files["/a"] = b"A" * 1000
    first = "/a?r=/b/&b=2&a=1"
    assert fetch(http_server.url(first), cache_storage=cache_dir) == b"A" * 1000
    # One GET, for exactly the URL given: query, order and trailing "/" untouched.
    assert http_server.requests == [first]
    fs = fsspec.filesystem("simplecache", target_protocol="http", cache_storage=cache_dir)
    for variant in ("/a?a=1&b=2", "/a", "/a#x", "/./x/../a?t=17", f"/a?{SIGNED}"):
        assert fetch(http_server.url(variant), cache_storage=cache_dir) == b"A" * 1000
        with fs.open(http_server.url(variant)) as f:
            assert f.read() == b"A" * 1000
    assert http_server.requests == [first]
    assert cache_stats(fs) == CacheStats(hits=10, misses=1, entries=1, bytes=1000)


def test_major_parameters_fetch_separately(http_server: RecordingServer, cache_dir: str) -> None:
    http_server.files["/v"] = b"v"
    for target in ("/v?version=1", "/v?version=2", "/v?t=1&version=1", "/v?version=2&t=2"):
        fetch(http_server.url(target), cache_storage=cache_dir)
    assert http_server.requests == ["/v?version=1", "/v?version=2"]


def test_missing_file_costs_one_request_and_caches_nothing(
    http_server: RecordingServer, cache_dir: str
) -> None:
    with pytest.raises(FileNotFoundError):
        fetch(http_server.url("/nope?x=1"), cache_storage=cache_dir)
    assert http_server.requests == ["/nope?x=1"]
    assert all_files(cache_dir) == []


def test_truncated_download_leaves_nothing_behind(
    http_server: RecordingServer, cache_dir: str
) -> None:
    body = bytes(range(256)) * 400
    http_server.files["/big"] = body
    http_server.truncate.add("/big")
    with pytest.raises(aiohttp.ClientPayloadError):
        fetch(http_server.url("/big"), cache_storage=cache_dir)
    assert all_files(cache_dir) == []
    fs = fsspec.filesystem("simplecache", target_protocol="http", cache_storage=cache_dir)
    assert cache_stats(fs) == CacheStats()
    http_server.truncate.clear()
    assert fetch(http_server.url("/big?retry=1"), cache_storage=cache_dir) == body
    assert http_server.hits("/big") == 2
    assert len(all_files(cache_dir)) == 1


def test_append_after_a_failed_download_leaves_nothing_behind(
    http_server: RecordingServer, cache_dir: str
) -> None:
    http_server.files["/log"] = bytes(10_000)
    http_server.truncate.add("/log")
    fs = fsspec.filesystem("simplecache", target_protocol="http", cache_storage=cache_dir)
    with pytest.raises(aiohttp.ClientPayloadError):
        fs.open(http_server.url("/log"), "ab")
    assert all_files(cache_dir) == []


def test_signing_parameters_are_never_persisted_or_logged(
    http_server: RecordingServer, cache_dir: str, caplog: pytest.LogCaptureFixture
) -> None:
    http_server.files["/dir/data.csv"] = b"a,b\n1,2\n"
    signed = http_server.url(f"/dir/data.csv?{SIGNED}")
    with caplog.at_level(logging.DEBUG):
        for options in ({}, {"same_names": True}):
            storage = f"{cache_dir}-{len(options)}"
            assert fetch(signed, cache_storage=storage, **options) == b"a,b\n1,2\n"
            fs = fsspec.filesystem(
                "simplecache", target_protocol="http", cache_storage=storage, **options
            )
            assert fs.cat(signed) == b"a,b\n1,2\n"
            with fs.open(signed + "&version=1", "rb") as f:
                f.read()
            files = all_files(storage) + all_files(fs._store.shared.index)
            assert files
            for path in files:
                assert SECRET not in str(path)
                assert SECRET.encode() not in path.read_bytes()
    # The server got the signature (the fetch is untouched) ...
    assert any(SECRET in r for r in http_server.requests)
    # ... but no log record outside the target's own HTTP client mentions it.
    ours = [r for r in caplog.records if not r.name.startswith(("fsspec.http", "aiohttp"))]
    assert all(SECRET not in r.getMessage() for r in ours)


def test_threads_opening_one_file_during_its_download(
    http_server: RecordingServer, cache_dir: str
) -> None:
    body = os.urandom(64 * 1024)
    http_server.files["/slow"] = body
    http_server.slow["/slow"] = 0.05
    started = threading.Event()
    results: list[bytes] = []

    def first() -> None:
        results.append(fetch(http_server.url("/slow?t=0"), cache_storage=cache_dir))

    leader = threading.Thread(target=first)
    leader.start()
    while not http_server.hits("/slow"):
        started.wait(0.005)
    # The leader's download is in progress now; others wait for it, never see a part.
    with ThreadPoolExecutor(8) as pool:
        results += pool.map(
            lambda i: fetch(http_server.url(f"/slow?t={i}"), cache_storage=cache_dir), range(1, 17)
        )
    leader.join()
    assert results == [body] * 17
    assert http_server.hits("/slow") == 1
    assert len(all_files(cache_dir)) == 1


def test_thread_pool_shares_instances_and_one_cache(http_server: RecordingServer) -> None:
    for i in range(20):
        http_server.files[f"/f{i}"] = b"%d" % i

    def work(i: int) -> tuple[int, int, str]:
        of = fsspec.open(f"simplecache::{http_server.url(f'/f{i % 20}?n={i}')}")
        with of as f:
            assert f.read() == b"%d" % (i % 20)
        return i % 20, id(of.fs), of.fs.storage[-1]

    with ThreadPoolExecutor(8) as pool:
        seen = set(pool.map(work, range(160)))
    # One instance per logical file, whatever the thread; one directory for all of them.
    assert len(seen) == 20
    assert len({fs for _, fs, _ in seen}) == 20
    (storage,) = {storage for _, _, storage in seen}
    assert len(all_files(storage)) == 20
    assert len(http_server.requests) == 20
    assert all(http_server.hits(f"/f{i}") == 1 for i in range(20))
