"""Fixtures for the fsspec_patch tests: a recording HTTP server, isolated caches and stores."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import fsspec
import pytest
from fsspec.implementations.cached import SimpleCacheFileSystem
from fsspec.implementations.memory import MemoryFileSystem

import fsspec_patch
from fsspec_patch import CanonicalSimpleCacheFileSystem


@dataclass
class RecordingServer:
    """A local HTTP server that serves ``files`` by path (ignoring the query) and logs requests."""

    base: str = ""
    files: dict[str, bytes] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    truncate: set[str] = field(default_factory=set)
    slow: dict[str, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, target: str) -> str:
        """Return the absolute URL of ``target`` (path plus optional query)."""
        return self.base + target

    def hits(self, path: str) -> int:
        """Return how many requests asked for ``path``, whatever their query."""
        with self.lock:
            return sum(urlsplit(r).path == path for r in self.requests)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        self._respond(body_wanted=True)

    def do_HEAD(self) -> None:
        self._respond(body_wanted=False)

    def _respond(self, *, body_wanted: bool) -> None:
        recorder = self.server.recorder
        with recorder.lock:
            recorder.requests.append(self.path)
        path = urlsplit(self.path).path
        body = recorder.files.get(path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not body_wanted:
            return
        if path in recorder.truncate:
            # The connection closes after half the promised body: a failed download.
            self.wfile.write(body[: len(body) // 2])
            return
        delay = recorder.slow.get(path, 0.0)
        step = max(1, len(body) // 4)
        for start in range(0, len(body), step):
            self.wfile.write(body[start : start + step])
            self.wfile.flush()
            time.sleep(delay)

    def log_message(self, format: str, *args: object) -> None:
        return


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    recorder: RecordingServer

    def handle_error(self, request: object, client_address: object) -> None:
        # Clients that stop reading early (fault injection) break the pipe: expected.
        return


@pytest.fixture
def http_server() -> Iterator[RecordingServer]:
    """A RecordingServer on 127.0.0.1, shut down after the test."""
    server = _Server(("127.0.0.1", 0), _Handler)
    server.recorder = RecordingServer(base=f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield server.recorder
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture(autouse=True)
def _fresh_instances() -> Iterator[None]:
    """Every test starts and ends with no shared patched instances and fsspec patched."""
    CanonicalSimpleCacheFileSystem.clear_instance_cache()
    SimpleCacheFileSystem.clear_instance_cache()
    fsspec_patch.install()
    yield
    fsspec_patch.install()
    CanonicalSimpleCacheFileSystem.clear_instance_cache()
    SimpleCacheFileSystem.clear_instance_cache()


@pytest.fixture
def mem_root() -> Iterator[str]:
    """A unique directory of the in-memory filesystem, removed after the test."""
    root = f"/fsspec-patch-{uuid.uuid4().hex}"
    yield root
    memory = MemoryFileSystem()
    for path in [p for p in list(memory.store) if p.startswith(root)]:
        memory.store.pop(path, None)
    memory.pseudo_dirs[:] = [d for d in memory.pseudo_dirs if not d.startswith(root)]


@pytest.fixture
def cache_dir(tmp_path: Path) -> str:
    """An explicit writable cache directory, so tests can read the cache back."""
    return str(tmp_path / "cache")


@pytest.fixture
def memfs() -> fsspec.AbstractFileSystem:
    """The in-memory filesystem (shared store)."""
    return fsspec.filesystem("memory")
