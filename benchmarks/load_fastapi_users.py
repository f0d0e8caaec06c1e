"""Loopback load test: (a) ``manager.current_session`` vs (c) FastAPI Users, ``DatabaseStrategy``.

Starts one uvicorn process per case of ``bench_fastapi_users.py`` (one worker, on free
ports of 127.0.0.1 only), checks them (a valid token answers 200, an unknown one 401),
warms them up, drives them with ``wrk`` (or the Python client of ``load_middleware.py``)
in ABBA order and prints requests/s, p50/p99 latency, the server's CPU time per request
and the (a)/(c) throughput ratio. Both servers get byte-identical requests, cycling over
the same 1,000 users' tokens (sessions for (a), access tokens for (c)); a token either
failed to resolve would be a 401, counted as an error. The servers are stopped in a
``finally`` (SIGTERM of this script unwinds the same way).

    python3 benchmarks/load_fastapi_users.py             # 2 rounds x 10 s per case
    python3 benchmarks/load_fastapi_users.py --quick     # 1 round x 3 s, smoke run
    python3 benchmarks/load_fastapi_users.py --stack h11 # uvicorn's pure-Python HTTP stack

uvicorn runs its standard stack by default (httptools and uvloop, what
``uvicorn[standard]`` installs), as in production; ``--stack h11`` runs h11 and the
asyncio loop instead, whose own cost per request is about that of the whole of (a).

Like ``bench_fastapi_users.py``, it runs itself in ``.venv-fastapi-users`` (built from
the current sources, with uvicorn added) when FastAPI Users is not importable.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import signal
import statistics
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _fastapi_users_env

try:
    import _apps
    import bench_fastapi_users
    import load_middleware
    from _tools import ensure_tool
    from load_middleware import HOST, Options, Result
except ImportError:
    if __name__ != "__main__":
        raise
    _fastapi_users_env.run_in_environment(__file__)

HERE = Path(__file__).resolve().parent
#: (name, uvicorn factory in ``bench_fastapi_users``), in ABBA's A-then-B order.
TARGETS = (("a", "session_route_factory"), ("c", "database_strategy_factory"))
LABELS = {
    "a": "(a) Depends(manager.current_session)",
    "c": "(c) FastAPI Users, DatabaseStrategy",
}


#: uvicorn's HTTP implementation and event loop per ``--stack``.
STACKS = {"standard": ("httptools", "uvloop"), "h11": ("h11", "asyncio")}


def start_server(factory: str, port: int, users: int, stack: str) -> subprocess.Popen[bytes]:
    """Start ``uvicorn bench_fastapi_users:<factory>`` on ``HOST:port`` (one worker, quiet)."""
    http, loop = STACKS[stack]
    command = [
        sys.executable, "-m", "uvicorn", f"bench_fastapi_users:{factory}", "--factory",
        "--app-dir", str(HERE), "--host", HOST, "--port", str(port), "--http", http,
        "--loop", loop, "--log-level", "warning", "--no-access-log",
    ]  # fmt: skip
    env = {**os.environ, bench_fastapi_users.USERS_ENV: str(users)}
    return subprocess.Popen(command, env=env)


@contextlib.contextmanager
def servers(users: int, stack: str = "standard") -> Iterator[dict[str, tuple[int, int]]]:
    """Run one server per target; yield ``{target: (port, pid)}``; always stop them all."""
    procs: list[subprocess.Popen[bytes]] = []
    ports: dict[str, int] = {}
    try:
        for name, factory in TARGETS:
            ports[name] = load_middleware.free_port()
            procs.append(start_server(factory, ports[name], users, stack))
        token = _apps.make_tokens(1)[0]
        for proc, port in zip(procs, ports.values(), strict=True):
            load_middleware.wait_ready(proc, port, token)
            if load_middleware.get_status(port, "not-a-valid-token") != 401:
                raise SystemExit(f"the server on port {port} accepted an unknown token")
        pids = [proc.pid for proc in procs]
        yield {name: (port, pid) for (name, port), pid in zip(ports.items(), pids, strict=True)}
    finally:
        for proc in procs:
            load_middleware.stop_server(proc)


def format_summary(results: list[Result]) -> str:
    """Per target: overall requests/s and server CPU per request, median p50/p99; ratios."""
    lines = [
        "| case | requests/s | p50 ms | p99 ms | server CPU µs/req | errors |",
        "|---|--:|--:|--:|--:|--:|",
    ]
    rps: dict[str, float] = {}
    cpu: dict[str, float | None] = {}
    for name, _ in TARGETS:
        runs = [r for r in results if r.target == name]
        rps[name] = sum(r.requests for r in runs) / sum(r.seconds for r in runs)
        cpu[name] = load_middleware.server_cpu_us(runs)
        p50 = statistics.median(r.p50_ms for r in runs)
        p99 = statistics.median(r.p99_ms for r in runs)
        used = "n/a" if cpu[name] is None else f"{cpu[name]:.0f}"
        errors = sum(r.errors for r in runs)
        lines.append(
            f"| {LABELS[name]} | {rps[name]:,.0f} | {p50:.2f} | {p99:.2f} | {used} | {errors} |"
        )
    ratio = rps["a"] / rps["c"]
    verdict = "yes" if ratio >= 3 else "NO"
    lines.append(f"\nthroughput (a)/(c): {ratio:.2f} (target >= 3; met: {verdict})")
    cpu_a, cpu_c = cpu["a"], cpu["c"]
    if cpu_a is not None and cpu_c is not None:
        lines.append(f"server CPU per request (c)/(a): {cpu_c / cpu_a:.2f}")
    return "\n".join(lines)


def run(options: Options, stack: str = "standard") -> list[Result]:
    """``load_middleware.run`` over this module's servers and targets: (a), (c), (c), (a)..."""
    start = functools.partial(servers, stack=stack)
    return load_middleware.run(options, start=start, targets=TARGETS)


def describe(options: Options, stack: str) -> str:
    """One line saying what ran (``Options.sessions`` is the number of users)."""
    http, loop = STACKS[stack]
    return (
        f"uvicorn 1 worker, {http} + {loop}; client {options.client}, "
        f"{options.connections} connections, {options.duration:g} s per run, "
        f"{options.sessions:,} users and tokens cycled; {os.cpu_count()} CPUs"
    )


def parse_args() -> tuple[Options, str]:
    """Command-line options (``Options.sessions`` is the number of users)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 round x 3 s")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2, help="runs per target (ABBA order)")
    parser.add_argument("--users", type=int, default=bench_fastapi_users.DEFAULT_USERS)
    parser.add_argument("--client", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument("--stack", choices=tuple(STACKS), default="standard")
    args = parser.parse_args()
    client = args.client
    if client != "python":  # wrk when it is (or can be) installed; asked for, it must be
        client = "wrk" if ensure_tool("wrk", required=client == "wrk") else "python"
    if args.quick:
        return Options(3.0, args.connections, 1, args.users, args.users, client), args.stack
    options = Options(args.duration, args.connections, args.rounds, args.users, args.users, client)
    return options, args.stack


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def main() -> None:
    """Entry point: SIGTERM unwinds like Ctrl-C, so the servers are always stopped."""
    signal.signal(signal.SIGTERM, _terminate)
    options, stack = parse_args()
    print(describe(options, stack), "\n", flush=True)
    results = run(options, stack)
    print(load_middleware.format_runs(results), "", format_summary(results), sep="\n")


if __name__ == "__main__":
    main()
