"""``bench_middleware.py``'s cases, counted in CPU instructions under callgrind, not timed.

An instruction count hardly depends on what else the machine runs (runs of the same code
differ by about 1 %, from hash seeds and address layout), so its ratios hold on a busy
shared machine where timed ratios move by a tenth between runs. Instructions are not time
(a cache miss costs more than an add), which is why ``bench_middleware.py`` stays the
measure; this is its steady witness.

Every case is one of ``_apps.build_cases`` (the same apps, store and tokens as the timed
benchmark), driven by direct ASGI calls in one asyncio loop. Each case runs twice under
``valgrind --tool=callgrind``, with ``--requests`` and with five times as many; the
difference, divided by the extra requests, is the count per request (set-up, imports and
the store's sessions cancel out).

    .venv/bin/python benchmarks/count_middleware.py          # ~6 min (installs Debian's valgrind)
    .venv/bin/python benchmarks/count_middleware.py --quick  # fewer requests and sessions
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _apps
from _tools import ensure_tool
from bench_middleware import receive, scope_template, send

#: (case, label, app key in ``_apps.build_cases``, whether the valid token is sent).
CASES: tuple[tuple[str, str, str, bool], ...] = (
    ("bare", "1. bare Starlette app", "bare", True),
    ("bearer", "2. BearerAuthMiddleware, valid token", "bearer", True),
    ("bearer_anon", "2a. BearerAuthMiddleware, no header", "bearer", False),
    ("starlette_dict", "3. Starlette AuthenticationMiddleware + hand-written backend",
     "starlette_dict", True),
    ("starlette_session", "3a. Starlette AuthenticationMiddleware + SessionAuthBackend",
     "starlette_session", True),
    ("minimal", "4. minimal pure ASGI (sha256 + dict) = lower bound", "minimal", True),
)  # fmt: skip
_COLLECTED = re.compile(r"Collected : (\d+)")


async def serve(case: str, requests: int, sessions: int) -> None:
    """Send ``requests`` requests to ``case``'s app, cycling over 1,000 tokens."""
    _, _, app_key, with_token = next(c for c in CASES if c[0] == case)
    apps, tokens = _apps.build_cases(sessions)
    app = apps[app_key]
    templates = [scope_template(t if with_token else None) for t in tokens[:1_000]]
    for number in range(requests):
        await app(dict(templates[number % len(templates)]), receive, send)


def instructions(case: str, requests: int, sessions: int) -> int:
    """Instructions callgrind counts for the whole child process serving ``requests``."""
    child = [sys.executable, __file__, "--child", case, str(requests), str(sessions)]
    command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *child]
    done = subprocess.run(command, capture_output=True, text=True, check=True, timeout=1800)
    found = _COLLECTED.search(done.stderr)
    if found is None:
        raise SystemExit(f"callgrind printed no count for {case}:\n{done.stderr[-2000:]}")
    return int(found.group(1))


def per_request(case: str, requests: int, sessions: int) -> float:
    """Instructions per request of ``case``: two runs, differenced."""
    few = instructions(case, requests, sessions)
    many = instructions(case, requests * 5, sessions)
    return (many - few) / (requests * 4)


def report(counts: dict[str, float]) -> str:
    """The cases' counts, overheads over the bare app, and the issue's two ratios."""
    bare, lower = counts["bare"], counts["minimal"] - counts["bare"]
    lines = [
        "| case | instructions/request | overhead | overhead / lower bound |",
        "|---|--:|--:|--:|",
    ]
    for case, label, _, _ in CASES:
        overhead = counts[case] - bare
        ratio = "" if case == "bare" else f"{overhead / lower:.2f}"
        lines.append(f"| {label} | {counts[case]:,.0f} | {overhead:+,.0f} | {ratio} |")
    bearer = counts["bearer"] - bare
    lines.append("")
    for name, other, target in (
        ("lower bound", "minimal", "<= 2.2"),
        ("Starlette AuthenticationMiddleware (hand-written)", "starlette_dict", "<= 1.0"),
        ("Starlette AuthenticationMiddleware (SessionAuthBackend)", "starlette_session", "<= 1.0"),
    ):
        lines.append(f"bearer / {name}: {bearer / (counts[other] - bare):.2f} (target {target})")
    return "\n".join(lines)


def main() -> None:
    """Entry point: the parent counts every case (two at a time), a child serves one."""
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        asyncio.run(serve(sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="500 requests, 10,000 sessions")
    parser.add_argument("--requests", type=int, default=2_000, help="of the smaller run")
    parser.add_argument("--sessions", type=int, default=20_000)
    args = parser.parse_args()
    ensure_tool("valgrind")
    requests, sessions = (500, 10_000) if args.quick else (args.requests, args.sessions)
    runs = f"{requests:,} and {requests * 5:,} requests per case, {sessions:,} sessions"
    print(f"Python {platform.python_version()} on {platform.machine()}; callgrind; {runs}\n")
    with ThreadPoolExecutor(max_workers=max(1, min(len(CASES), os.cpu_count() or 1))) as pool:
        futures = {c[0]: pool.submit(per_request, c[0], requests, sessions) for c in CASES}
        counts = {case: future.result() for case, future in futures.items()}
    print(report(counts))


if __name__ == "__main__":
    main()
