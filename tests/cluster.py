"""A real three-node Redis Cluster on loopback, started by the tests themselves.

Three masters from the ``redis-server`` binary (no replicas, nothing saved to disk), on
``servers.free_ports``, joined with ``redis-cli --cluster create``. The session fixture starts it
once, when a test first asks for it, and stops it at the end of the run, or at once if it
failed to come up.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode

from .servers import free_ports, missing

NODES = 3
# Measured here (2026-12): 2.3 to 3.3 s from the first start to cluster_state:ok everywhere,
# mostly redis-cli's own one-second waits for the join; 0.3 s to stop. Each wait is bounded
# by this, ten times that, for a loaded machine.
READY_WITHIN = 30.0


@dataclass(frozen=True)
class LocalCluster:
    """The running cluster: its masters' ports on 127.0.0.1."""

    ports: tuple[int, ...]

    @property
    def url(self) -> str:
        """A URL of one node: ``RedisCluster`` finds the others from it."""
        return f"redis://127.0.0.1:{self.ports[0]}/0"

    def client(self, **options: Any) -> aioredis.RedisCluster:
        """A new ``RedisCluster`` client given every node as a start-up node."""
        nodes = [ClusterNode("127.0.0.1", port) for port in self.ports]
        return aioredis.RedisCluster(startup_nodes=nodes, **options)


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``redis-cli`` with ``args`` (bounded by ``READY_WITHIN``), capturing its output."""
    return subprocess.run(
        ["redis-cli", *args], capture_output=True, text=True, timeout=READY_WITHIN, check=False
    )


def reply(port: int, *command: str) -> str:
    """What the node at ``port`` answers to ``command`` (empty if it does not answer yet)."""
    return cli("-p", str(port), *command).stdout


def start_node(port: int, bus_port: int, workdir: Path) -> subprocess.Popen[bytes]:
    """Start one cluster-enabled ``redis-server`` on 127.0.0.1, logging to its own file."""
    return subprocess.Popen(
        [
            *("redis-server", "--port", str(port), "--cluster-port", str(bus_port)),
            *("--bind", "127.0.0.1", "--cluster-enabled", "yes"),
            *("--cluster-config-file", str(workdir / f"nodes-{port}.conf")),
            *("--dir", str(workdir), "--logfile", str(workdir / f"redis-{port}.log")),
            *("--save", "", "--appendonly", "no", "--daemonize", "no"),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def wait_for(what: str, ready: Callable[[], bool], procs: list[subprocess.Popen[bytes]]) -> None:
    """Poll ``ready`` until it is true; fail after ``READY_WITHIN`` s or if a node exits."""
    deadline = time.monotonic() + READY_WITHIN
    while not ready():
        if any(proc.poll() is not None for proc in procs):
            pytest.fail(f"a redis-server of the test cluster exited before {what}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {READY_WITHIN} s waiting until {what}")
        time.sleep(0.05)


@contextmanager
def running_cluster(workdir: Path) -> Iterator[LocalCluster]:
    """Start, join and wait for a cluster of ``NODES`` masters; stop them all afterwards."""
    chosen = free_ports(2 * NODES)  # a client port and a cluster-bus port per node
    ports, bus_ports = chosen[:NODES], chosen[NODES:]
    nodes = [f"127.0.0.1:{port}" for port in ports]
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for port, bus_port in zip(ports, bus_ports, strict=True):
            procs.append(start_node(port, bus_port, workdir))
        wait_for(
            "every node answers PING",
            lambda: all(reply(p, "ping").strip() == "PONG" for p in ports),
            procs,
        )
        joined = cli("--cluster", "create", *nodes, "--cluster-replicas", "0", "--cluster-yes")
        if joined.returncode != 0:
            pytest.fail(f"redis-cli --cluster create failed: {joined.stdout}{joined.stderr}")
        wait_for(
            "every node says cluster_state:ok",
            lambda: all("cluster_state:ok" in reply(p, "cluster", "info") for p in ports),
            procs,
        )
        yield LocalCluster(tuple(ports))
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """A three-master Redis Cluster on loopback for the whole run (skips, or fails under CI,
    when the ``redis-server`` or ``redis-cli`` binary is missing)."""
    for binary in ("redis-server", "redis-cli"):
        if shutil.which(binary) is None:
            missing(f"{binary} is not installed", "install Redis 7 (Debian: redis-server)")
    with running_cluster(tmp_path_factory.mktemp("redis-cluster")) as cluster:
        yield cluster
