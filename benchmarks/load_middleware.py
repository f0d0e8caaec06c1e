"""Loopback load test: a bare Starlette app vs the same app behind ``BearerAuthMiddleware``.

Starts one uvicorn process per app on 127.0.0.1 (free ports), drives each with a
time-bounded, fixed-concurrency keep-alive load, and prints requests/s and p50/p99
latency. Runs go in ABBA order (bare, bearer, bearer, bare, ...) so drift hits both
alike. Every request carries ``Authorization: Bearer <token>``, cycling over 1,000
valid tokens of a 100,000-session store; the bare app ignores it, so both servers get
byte-identical requests. The middleware server runs with ``reject_invalid=True``: a
token it failed to resolve would show up as a non-2xx response.

The load generator is ``wrk`` when it is on PATH (``apt-get install wrk``), else a
Python asyncio client (which competes with the server for CPU: lower absolute numbers).

    .venv/bin/python benchmarks/load_middleware.py              # 2 rounds x 10 s per app
    .venv/bin/python benchmarks/load_middleware.py --quick      # 1 round x 3 s, smoke run
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import http.client
import importlib.util
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager as ContextManager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _apps
from _tools import ensure_tool

HERE = Path(__file__).resolve().parent
HOST = "127.0.0.1"
#: (name, uvicorn factory in ``_apps``)
TARGETS = (("bare", "bare_factory"), ("bearer", "bearer_factory"))

#: wrk script: pre-formatted requests cycled per connection, a JSON summary at the end.
WRK_LUA = """\
local tokens = {%s}
local requests = {}
local n = 0
init = function(args)
  for i, token in ipairs(tokens) do
    requests[i] = wrk.format("GET", nil, {["Authorization"] = "Bearer " .. token})
  end
end
request = function()
  n = n %% #requests + 1
  return requests[n]
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %%d, "duration_us": %%d, "p50_us": %%d, "p99_us": %%d, "non2xx": %%d, ' ..
    '"socket_errors": %%d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.status, e.connect + e.read + e.write + e.timeout))
end
"""


@dataclass(frozen=True)
class Result:
    """One load run against one server."""

    target: str
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int
    #: CPU seconds the server process used during the run (None without /proc).
    server_cpu: float | None = None

    @property
    def rps(self) -> float:
        """Requests per second."""
        return self.requests / self.seconds

    @property
    def cpu_us(self) -> float | None:
        """Server CPU microseconds per request: unlike requests/s, blind to other load."""
        return None if self.server_cpu is None else self.server_cpu / self.requests * 1e6


@dataclass(frozen=True)
class Options:
    """What to run."""

    duration: float
    connections: int
    rounds: int
    sessions: int
    active_tokens: int
    client: str


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of process ``pid`` so far, from /proc (None elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """A currently free TCP port on the loopback interface."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def start_server(factory: str, port: int, sessions: int) -> subprocess.Popen[bytes]:
    """Start ``uvicorn _apps:<factory>`` on ``HOST:port`` (one worker, logs quiet)."""
    command = [
        sys.executable, "-m", "uvicorn", f"_apps:{factory}", "--factory",
        "--app-dir", str(HERE), "--host", HOST, "--port", str(port),
        "--log-level", "warning", "--no-access-log",
    ]  # fmt: skip
    env = {**os.environ, _apps.SESSIONS_ENV: str(sessions)}
    return subprocess.Popen(command, env=env)


def get_status(port: int, token: str) -> int:
    """Status of ``GET /`` with ``token`` as the bearer token."""
    conn = http.client.HTTPConnection(HOST, port, timeout=5)
    try:
        conn.request("GET", "/", headers={"Authorization": f"Bearer {token}"})
        return conn.getresponse().status
    finally:
        conn.close()


def wait_ready(proc: subprocess.Popen[bytes], port: int, token: str, timeout: float = 90) -> None:
    """Wait until the server answers ``token`` with 200; fail if it dies or takes too long."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server on port {port} exited with {proc.returncode}")
        with contextlib.suppress(OSError):
            status = get_status(port, token)
            if status != 200:
                raise SystemExit(f"server on port {port} answered {status} to a valid token")
            return
        time.sleep(0.2)
    raise SystemExit(f"server on port {port} not ready after {timeout:.0f} s")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    """Terminate a server, killing it if it does not stop within 10 s."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def servers(sessions: int) -> Iterator[dict[str, tuple[int, int]]]:
    """Run one server per target; yield ``{target: (port, pid)}``; always stop them all."""
    procs: list[subprocess.Popen[bytes]] = []
    ports: dict[str, int] = {}
    try:
        for name, factory in TARGETS:
            ports[name] = free_port()
            procs.append(start_server(factory, ports[name], sessions))
        token = _apps.make_tokens(1)[0]
        for proc, port in zip(procs, ports.values(), strict=True):
            wait_ready(proc, port, token)
        if get_status(ports["bearer"], "not-a-valid-token") != 401:
            raise SystemExit("the middleware server accepted an unknown token")
        pids = [proc.pid for proc in procs]
        yield {name: (port, pid) for (name, port), pid in zip(ports.items(), pids, strict=True)}
    finally:
        for proc in procs:
            stop_server(proc)


def run_wrk(target: str, port: int, tokens: list[str], options: Options, path: str = "/") -> Result:
    """Drive ``GET path`` on ``HOST:port`` with wrk (one thread); parse the JSON summary."""
    lua = WRK_LUA % ", ".join(json.dumps(t) for t in tokens)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(lua)
    try:
        command = [
            "wrk", "-t1", f"-c{options.connections}", f"-d{options.duration:g}s",
            "--timeout", "5s", "-s", script.name, f"http://{HOST}:{port}{path}",
        ]  # fmt: skip
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=options.duration + 60, check=True
        )
    finally:
        os.unlink(script.name)
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    return Result(
        target=target,
        requests=summary["requests"],
        seconds=summary["duration_us"] / 1e6,
        p50_ms=summary["p50_us"] / 1000,
        p99_ms=summary["p99_us"] / 1000,
        errors=summary["non2xx"] + summary["socket_errors"],
    )


async def read_response(reader: asyncio.StreamReader) -> int:
    """Read one HTTP/1.1 response with a Content-Length body; return its status."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    await reader.readexactly(length)
    return int(head[9:12])


async def client_loop(
    port: int, requests: list[bytes], start: int, deadline: float, latencies: list[int]
) -> int:
    """One keep-alive connection sending requests until ``deadline``; return its errors."""
    reader, writer = await asyncio.open_connection(HOST, port)
    errors, index = 0, start
    try:
        while time.perf_counter() < deadline:
            began = time.perf_counter_ns()
            writer.write(requests[index % len(requests)])
            status = await read_response(reader)
            latencies.append(time.perf_counter_ns() - began)
            errors += not 200 <= status < 400
            index += 1
    finally:
        writer.close()
    return errors


async def python_load(
    port: int, tokens: list[str], options: Options, path: str = "/"
) -> tuple[list[int], int]:
    """Run ``options.connections`` client loops; return (latencies in ns, errors)."""
    head = f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
    requests = [f"{head}Authorization: Bearer {t}\r\n\r\n".encode() for t in tokens]
    latencies: list[int] = []
    deadline = time.perf_counter() + options.duration
    loops = [
        client_loop(port, requests, i * 31, deadline, latencies) for i in range(options.connections)
    ]
    errors = await asyncio.gather(*loops)
    return latencies, sum(errors)


def run_python(
    target: str, port: int, tokens: list[str], options: Options, path: str = "/"
) -> Result:
    """Drive ``GET path`` on ``HOST:port`` with the asyncio client."""
    started = time.perf_counter()
    latencies, errors = asyncio.run(python_load(port, tokens, options, path))
    seconds = time.perf_counter() - started
    cuts = statistics.quantiles(latencies, n=100)
    return Result(target, len(latencies), seconds, cuts[49] / 1e6, cuts[98] / 1e6, errors)


def run_load(
    target: str, server: tuple[int, int], tokens: list[str], options: Options, path: str = "/"
) -> Result:
    """One load run of ``GET path`` with the chosen client, with the server's CPU time."""
    port, pid = server
    before = cpu_seconds(pid)
    if options.client == "wrk":
        result = run_wrk(target, port, tokens, options, path)
    else:
        result = run_python(target, port, tokens, options, path)
    after = cpu_seconds(pid)
    if before is None or after is None:
        return result
    return dataclasses.replace(result, server_cpu=after - before)


def abba(rounds: int, targets: Sequence[tuple[str, str]] = TARGETS) -> list[str]:
    """Target order: bare, bearer, bearer, bare, bare, bearer, ... (A, B, B, A for others)."""
    names = [name for name, _ in targets]
    return [n for r in range(rounds) for n in (names if r % 2 == 0 else names[::-1])]


def _cpu(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f}"


def format_runs(results: list[Result]) -> str:
    """Markdown table of every run."""
    lines = [
        "| run | target | requests/s | p50 ms | p99 ms | server CPU µs/req | requests | errors |",
        "|--:|---|--:|--:|--:|--:|--:|--:|",
    ]
    for number, r in enumerate(results, 1):
        lines.append(
            f"| {number} | {r.target} | {r.rps:,.0f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} "
            f"| {_cpu(r.cpu_us)} | {r.requests:,} | {r.errors} |"
        )
    return "\n".join(lines)


def server_cpu_us(runs: list[Result]) -> float | None:
    """Server CPU microseconds per request over ``runs`` (None without /proc)."""
    cpu = [r.server_cpu for r in runs]
    if any(c is None for c in cpu):
        return None
    return sum(c for c in cpu if c is not None) / sum(r.requests for r in runs) * 1e6


def format_summary(results: list[Result]) -> str:
    """Per target: overall requests/s and server CPU per request, median p50/p99; ratios."""
    lines = [
        "| target | requests/s | p50 ms | p99 ms | server CPU µs/req |",
        "|---|--:|--:|--:|--:|",
    ]
    rps: dict[str, float] = {}
    cpu: dict[str, float | None] = {}
    for name, _ in TARGETS:
        runs = [r for r in results if r.target == name]
        rps[name] = sum(r.requests for r in runs) / sum(r.seconds for r in runs)
        cpu[name] = server_cpu_us(runs)
        p50 = statistics.median(r.p50_ms for r in runs)
        p99 = statistics.median(r.p99_ms for r in runs)
        lines.append(f"| {name} | {rps[name]:,.0f} | {p50:.2f} | {p99:.2f} | {_cpu(cpu[name])} |")
    lines.append(f"\nthroughput bearer/bare: {rps['bearer'] / rps['bare']:.3f}")
    bare_cpu, bearer_cpu = cpu["bare"], cpu["bearer"]
    if bare_cpu is not None and bearer_cpu is not None:
        lines.append(
            f"server CPU per request bearer - bare: {bearer_cpu - bare_cpu:+.1f} µs "
            f"({(bearer_cpu / bare_cpu - 1) * 100:+.1f} %)"
        )
    return "\n".join(lines)


def describe(options: Options) -> str:
    """One line saying what ran."""
    fast = [m for m in ("httptools", "uvloop") if importlib.util.find_spec(m) is not None]
    stack = ", ".join(fast) if fast else "h11 + asyncio (no httptools/uvloop installed)"
    return (
        f"uvicorn 1 worker, {stack}; client {options.client}, {options.connections} connections, "
        f"{options.duration:g} s per run, {options.sessions:,} sessions, "
        f"{options.active_tokens:,} tokens cycled; {os.cpu_count()} CPUs"
    )


def run(
    options: Options,
    start: Callable[[int], ContextManager[dict[str, tuple[int, int]]]] = servers,
    targets: Sequence[tuple[str, str]] = TARGETS,
) -> list[Result]:
    """Start the servers, warm them up, run the load in ABBA order, stop the servers.

    ``start`` and ``targets`` are this module's by default; ``load_fastapi_users`` passes
    its own servers and targets and shares the rest.
    """
    tokens = _apps.make_tokens(options.active_tokens)
    warm_up = dataclasses.replace(options, duration=1.0)
    with start(options.sessions) as running:
        for name, server in running.items():
            run_load(name, server, tokens, warm_up)
        results = []
        for name in abba(options.rounds, targets):
            results.append(run_load(name, running[name], tokens, options))
            print(f"{name}: {results[-1].rps:,.0f} requests/s", file=sys.stderr)
    return results


def parse_args() -> Options:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 round x 3 s, 10,000 sessions")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2, help="runs per target (ABBA order)")
    parser.add_argument("--sessions", type=int, default=_apps.DEFAULT_SESSIONS)
    parser.add_argument("--active-tokens", type=int, default=_apps.DEFAULT_ACTIVE_TOKENS)
    parser.add_argument("--client", choices=("auto", "wrk", "python"), default="auto")
    args = parser.parse_args()
    client = args.client
    if client != "python":  # wrk when it is (or can be) installed; asked for, it must be
        client = "wrk" if ensure_tool("wrk", required=client == "wrk") else "python"
    if args.quick:
        return Options(3.0, args.connections, 1, 10_000, args.active_tokens, client)
    return Options(
        args.duration, args.connections, args.rounds, args.sessions, args.active_tokens, client
    )


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def main() -> None:
    """Entry point: SIGTERM unwinds like Ctrl-C, so the servers are always stopped."""
    signal.signal(signal.SIGTERM, _terminate)
    options = parse_args()
    print(describe(options), "\n", flush=True)
    results = run(options)
    print(format_runs(results), "", format_summary(results), sep="\n")


if __name__ == "__main__":
    main()
