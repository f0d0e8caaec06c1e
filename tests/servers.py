"""Where the real servers are, and what a test does when one is missing.

PostgreSQL and Redis run on their standard local ports on CI machines. A test that needs one
skips with the reason when it is unreachable, except under ``CI``: then it fails, so a CI run
can never pass by skipping the very tests that matter.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import NoReturn
from urllib.parse import urlsplit

import anyio
import pytest

POSTGRES_URL = os.environ.get(
    "ASGI_KIT_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("ASGI_KIT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _address(url: str, default_port: int) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or default_port


POSTGRES_ADDRESS = _address(POSTGRES_URL, 5432)
REDIS_ADDRESS = _address(REDIS_URL, 6379)


def reachable(address: tuple[str, int]) -> bool:
    """True if something accepts TCP connections at ``address``."""
    try:
        with socket.create_connection(address, timeout=1):
            return True
    except OSError:
        return False


def require(name: str, address: tuple[str, int]) -> None:
    """Skip (or, with ``CI`` set, fail) the calling test unless ``address`` is reachable."""
    if not reachable(address):
        missing(f"{name} is not reachable at {address[0]}:{address[1]}", "start it")


def missing(reason: str, fix: str | None = None) -> NoReturn:
    """Skip the calling test for ``reason`` (``fix`` says what runs it), or fail under ``CI``."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason}, and CI is set: these tests must run on CI", pytrace=False)
    see = "see docs/development.md"
    pytest.skip(reason if fix is None else f"{reason}; {fix} to run these tests ({see})")


def unique_name(prefix: str) -> str:
    """A name no other test uses (table names, key prefixes)."""
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


async def wait_until(check: Callable[[], bool | Awaitable[bool]], what: str) -> None:
    """Poll ``check`` (state a server or a background task changes) until it is true."""
    for _ in range(500):
        verdict = check()
        if inspect.isawaitable(verdict):
            verdict = await verdict
        if verdict:
            return
        await anyio.sleep(0.02)
    pytest.fail(f"timed out waiting until {what}")


def _ephemeral_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def free_ports(count: int) -> list[int]:
    """``count`` distinct ports on 127.0.0.1 that nothing uses now, for servers tests start.

    Not the kernel's choice (``bind(("127.0.0.1", 0))``): that comes from the ephemeral
    range, where every outgoing connection's local port comes from too, so one of the
    suite's own client connections could take it before the server binds it. These come
    from below that range, which connections never take. Each is checked by binding it
    (without ``SO_REUSEADDR``, so a port still in TIME_WAIT is passed over too) and held
    until all are chosen.
    """
    chosen: list[int] = []
    with contextlib.ExitStack() as stack:
        while len(chosen) < count:
            port = random.randrange(20_000, _ephemeral_start())
            sock = stack.enter_context(socket.socket())
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            chosen.append(port)
    return chosen


def free_port() -> int:
    """One port of ``free_ports``."""
    return free_ports(1)[0]


class ServerProcess:
    """A server the tests start themselves on a free loopback port, to kill and pause.

    ``kill()`` is SIGKILL to the server and the processes it started; ``start()`` again
    brings it back on the same port with its data. ``pause()`` (SIGSTOP) leaves its port
    accepting connections, in the kernel's backlog, that it never answers until ``resume()``.
    """

    def __init__(self, command: list[str], port: int, *, user: str | None = None) -> None:
        self.command = command
        self.port = port
        self.user = user
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the server and wait (up to 30 s) until it accepts connections."""
        self._process = subprocess.Popen(
            self.command, user=self.user, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        for _ in range(300):
            if self.ready():
                return
            time.sleep(0.1)
        raise RuntimeError(f"{self.command[0]} did not start on port {self.port}")

    def ready(self) -> bool:
        """True once the server accepts connections."""
        return reachable(("127.0.0.1", self.port))

    def _pids(self) -> list[int]:
        assert self._process is not None
        pid = self._process.pid
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            children = []
        return [pid, *map(int, children)]

    def _signal(self, signum: int) -> None:
        for pid in self._pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    def pause(self) -> None:
        """SIGSTOP the server and its processes."""
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT the server and its processes."""
        self._signal(signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL the server and its processes; return once they are gone."""
        if self._process is None:
            return
        pids = self._pids()
        self._signal(signal.SIGKILL)
        self._process.wait(timeout=30)
        self._process = None
        for _ in range(300):
            if not any(Path(f"/proc/{pid}").exists() for pid in pids[1:]):
                return
            time.sleep(0.1)


def private_redis(directory: Path) -> ServerProcess:
    """A ``redis-server`` on a free port that writes every change to disk before answering."""
    executable = shutil.which("redis-server")
    if executable is None:
        missing("redis-server is not installed")
    port = free_port()
    options = ["--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    options += ["--appendonly", "yes", "--appendfsync", "always", "--dir", str(directory)]
    return ServerProcess([str(executable), *options], port)


POSTGRES_BIN = Path(os.environ.get("ASGI_KIT_TEST_POSTGRES_BIN", "/usr/lib/postgresql/15/bin"))


class PrivatePostgres(ServerProcess):
    """A PostgreSQL cluster of its own in a temporary directory (``initdb``, trust auth).

    As root it runs as the ``postgres`` user (PostgreSQL refuses root). ``url`` reaches
    its ``postgres`` database; ``close()`` kills it and removes the directory. Every
    client is the superuser ``postgres``, so all ``max_connections`` are theirs (the
    ``superuser_reserved_connections`` too).
    """

    def __init__(self, *, max_connections: int = 200) -> None:
        if not (POSTGRES_BIN / "initdb").exists():
            missing(f"PostgreSQL's initdb is not in {POSTGRES_BIN}")
        user = "postgres" if os.geteuid() == 0 else None
        self.directory = Path(tempfile.mkdtemp(prefix="asgi-kit-pg-"))
        if user is not None:
            shutil.chown(self.directory, user)
        self.data = self.directory / "data"
        initdb = [str(POSTGRES_BIN / "initdb"), "-D", str(self.data), "-A", "trust"]
        initdb += ["-U", "postgres", "--no-sync", "-E", "UTF8"]
        subprocess.run(initdb, user=user, check=True, capture_output=True)
        port = free_port()
        options = ["-p", str(port), "-k", str(self.directory), "-h", "127.0.0.1"]
        options += ["-c", "fsync=off", "-c", f"max_connections={max_connections}"]
        super().__init__(
            [str(POSTGRES_BIN / "postgres"), "-D", str(self.data), *options], port, user=user
        )
        self.url = f"postgresql+asyncpg://postgres@127.0.0.1:{port}/postgres"

    def ready(self) -> bool:
        """True once the cluster accepts queries (``postmaster.pid`` says ``ready``)."""
        try:
            lines = (self.data / "postmaster.pid").read_text().splitlines()
        except OSError:
            return False
        return len(lines) > 7 and lines[7].strip() == "ready"

    def close(self) -> None:
        """Kill the cluster and remove its directory."""
        self.kill()
        shutil.rmtree(self.directory, ignore_errors=True)
