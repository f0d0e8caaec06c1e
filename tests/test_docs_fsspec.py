"""The examples of docs/how-to/fsspec-cache.md, run against a local HTTP server."""

from __future__ import annotations

import importlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import ModuleType
from urllib.parse import urlsplit

import fsspec
import pytest
from fsspec.implementations.cached import SimpleCacheFileSystem

import fsspec_patch
from fsspec_patch import CanonicalSimpleCacheFileSystem

DATA = b"id,value\n1,one\n2,two\n"


class Server(ThreadingHTTPServer):
    """Serves ``DATA`` at every path, whatever the query, and records each request's path."""

    daemon_threads = True
    requests: list[str]


class Handler(BaseHTTPRequestHandler):
    server: Server

    def do_GET(self) -> None:
        self.server.requests.append(self.path)
        self.send_response(200)
        self.send_header("Content-Length", str(len(DATA)))
        self.end_headers()
        self.wfile.write(DATA)

    def do_HEAD(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(DATA)))
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def server() -> Iterator[Server]:
    httpd = Server(("127.0.0.1", 0), Handler)
    httpd.requests = []
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def base(server: Server) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


@pytest.fixture(autouse=True)
def _fresh_instances() -> Iterator[None]:
    """Each test starts with the patch installed, no shared instances and a new temp cache."""
    fsspec_patch.install()
    CanonicalSimpleCacheFileSystem.clear_instance_cache()
    SimpleCacheFileSystem.clear_instance_cache()
    yield
    fsspec_patch.install()
    CanonicalSimpleCacheFileSystem.clear_instance_cache()
    SimpleCacheFileSystem.clear_instance_cache()


def fresh(module: str) -> ModuleType:
    return importlib.reload(importlib.import_module(module))


def test_signed_url_variants_share_one_download(server: Server) -> None:
    module = fresh("docs_src.fsspec_cache.open_signed")
    first = f"{base(server)}/data.csv?X-Amz-Signature=aaaa&X-Amz-Date=20260101T000000Z"
    assert module.read(first) == DATA
    assert module.read(f"{base(server)}/data.csv?X-Amz-Signature=bbbb#top") == DATA
    assert module.read(f"{base(server)}/./x/../data.csv?t=1700000000") == DATA
    assert [urlsplit(p).query for p in server.requests] == [urlsplit(first).query]  # as given
    assert module.read(f"{base(server)}/data.csv?version=2") == DATA  # a major parameter
    assert len(server.requests) == 2


def test_install_and_uninstall_switch_the_simplecache_class() -> None:
    fresh("docs_src.fsspec_cache.install")  # its asserts run
    assert not fsspec_patch.is_installed()
    fs = fsspec.filesystem("simplecache", target_protocol="memory")
    assert type(fs) is SimpleCacheFileSystem
    fsspec_patch.install()
    fs = fsspec.filesystem("simplecache", target_protocol="memory")
    assert isinstance(fs, CanonicalSimpleCacheFileSystem)


def test_the_canonical_keys_shown() -> None:
    module = fresh("docs_src.fsspec_cache.keys")
    assert module.key == "https://host/a/data.csv?a=1&b=2"


def test_global_configuration_applies_to_new_instances(server: Server) -> None:
    try:
        fresh("docs_src.fsspec_cache.global_config")
        for query in ("part=1&t=1", "part=1&t=2", "part=2"):
            with fsspec.open(f"simplecache::{base(server)}/big.parquet?{query}") as f:
                assert f.read() == DATA
        assert server.requests == ["/big.parquet?part=1&t=1", "/big.parquet?part=2"]
    finally:
        fsspec.config.conf.pop("simplecache", None)


def test_cache_stats_count_hits_misses_entries_and_bytes(server: Server) -> None:
    module = fresh("docs_src.fsspec_cache.stats")
    url = f"{base(server)}/data.csv"
    assert module.cache_report(url + "?t=1") == {
        "hits": 0,
        "misses": 1,
        "entries": 1,
        "bytes": len(DATA),
    }
    assert module.cache_report(url + "?t=2") == {
        "hits": 1,
        "misses": 1,
        "entries": 1,
        "bytes": len(DATA),
    }
    assert len(server.requests) == 1
