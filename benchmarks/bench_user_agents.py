"""Parse time per user agent: ua-parser's Rust and pure-Python backends, our built-in rules.

The corpus is the 1,600 distinct user agents of uap-core's ``tests/test_ua.yaml``
(``benchmarks/data/uap_core_test_ua.txt``; half of them bots, as in uap-core's tests). Cases,
all timed in one run, one call at a time, interleaved per user agent in a rotating order:

- ``rust``: ``ua_parser.Parser(ua_parser.regex.Resolver(load_lazy_builtins())).parse`` (the
  ``regex`` extra, ua-parser-rs), no cache: the baseline of every ratio;
- ``python``: ``ua_parser.Parser(BasicResolver(load_builtins())).parse``, no cache (ua-parser
  without the extra);
- ``built-in``: ``_builtin_device``, our rules without ua-parser, end to end (a ``Device``);
- ``describe_device``: end to end through ``ua_parser.parse`` with the global parser
  ``Parser.from_matchers`` builds (the Rust resolver behind a cache of 2,000), on a cold
  cache: an empty one each round, each user agent once per round, as at a login (a
  session's device is worked out once);
- ``describe_device, python``: the same with the pure-Python resolver behind the cache.

Every user agent goes through ``user_agent_field`` first (as ``describe_device`` does), so the
raw parsers see what ours sees. An untimed first round compiles what is compiled on first
use. A user agent's time is its median over the rounds; the
figures are the median, p99 and worst of those over the corpus. Then the hostile inputs of
``tests/test_device_names.py`` (uap-core's ReDoS list among them), cut to 512 characters,
and the first call in a fresh process (ua-parser builds its parser on first use).

    .venv/bin/python benchmarks/bench_user_agents.py            # 5 rounds, ~1 min
    .venv/bin/python benchmarks/bench_user_agents.py --quick    # 1 round, 300 user agents
"""

from __future__ import annotations

import argparse
import gc
import platform
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import ua_parser
import ua_parser.regex

from asgi_kit._device import user_agent_field
from asgi_kit._user_agents import _builtin_device, describe_device

CORPUS = Path(__file__).with_name("data") / "uap_core_test_ua.txt"
BASELINE = "rust"
Case = Callable[[str], object]
# A sample of the tests' hostile inputs (uap-core's tests/regexes.js for the "uap" ones).
HOSTILE = {
    "many semicolons": ";" * 100_000,
    "many tokens": "Mozilla/5.0 (" + "a; " * 200,
    "digits and dots": "1." * 50_000,
    "AppleWebKit repeated": "AppleWebKit/" * 10_000,
    "uap a": "a" * 3502,
    "uap HuaweiA": ";A Build HuaweiA" + "4" * 3500 + "z",
    "uap HbbTV": "HbbTV/1.1.1 (" + ";a;" * 10000 + "!",
    "uap Mozilla Mobile": "Mozilla" + "Mobile" * 10000 + "!",
    "uap iPod CPUOS": "iPod;" + "CPUOS 1_1" * 10000 + "!",
    "uap Windows Phone": "Windows Phone  ; " + "IEMobile/" * 10000 + "!",
    "uap Android Build": "Android 1; " + " Build" * 10000 + "!",
    "uap Coolpad": ";" + "Coolpad_" * 10000 + "!",
    "emoji": "😀" * 600,
}


def load_corpus() -> list[str]:
    """The corpus's user agents, normalised as a session keeps them."""
    lines = CORPUS.read_text(encoding="utf-8").split("\n")
    agents = (user_agent_field(line) for line in lines if not line.startswith("#"))
    return [agent for agent in agents if agent]


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    options.add_argument("--rounds", type=int, default=5)
    options.add_argument("--quick", action="store_true")
    args = options.parse_args()
    agents = load_corpus()
    if args.quick:
        args.rounds, agents = 1, random.Random(1).sample(agents, 300)
    print(f"Python {platform.python_version()}, ua-parser {'.'.join(map(str, ua_parser.VERSION))}")
    print(f"{len(agents)} user agents from {CORPUS.name}, {args.rounds} rounds\n")
    rust = ua_parser.regex.Resolver(ua_parser.load_lazy_builtins())  # what ua-parser picks
    python = ua_parser.BasicResolver(ua_parser.load_builtins())
    cases: dict[str, tuple[Case, ua_parser.Resolver | None]] = {
        "rust": (ua_parser.Parser(rust).parse, None),
        "python": (ua_parser.Parser(python).parse, None),
        "built-in": (_builtin_device, None),
        "describe_device": (describe_device, rust),
        "describe_device, python": (describe_device, python),
    }
    report(run(cases, agents, args.rounds), agents)
    hostile(cases)
    first_calls()


def run(
    cases: dict[str, tuple[Case, ua_parser.Resolver | None]], agents: list[str], rounds: int
) -> dict[str, list[float]]:
    """Per case, each user agent's median time in µs over ``rounds`` interleaved rounds.

    A first, untimed round compiles what the resolvers compile on first use (ua-parser-rs
    compiles each rule lazily: a process's first pass over the corpus takes 2.5 times the
    next). A case with a resolver runs with ``ua_parser.parser`` set (the documented hook,
    untimed) to the stack ``Parser.from_matchers`` builds, that resolver behind a
    ``CachingResolver`` of 2,000 entries, with a new, empty cache each round: every call
    misses it, as a login's parse does.
    """
    samples = {name: [[0.0] * rounds for _ in agents] for name in cases}
    names = list(cases)
    order = list(range(len(agents)))
    clock = time.perf_counter_ns
    for r in range(-1, rounds):
        parsers = {
            name: ua_parser.Parser(ua_parser.CachingResolver(resolver, ua_parser.Cache(2000)))
            for name, (_, resolver) in cases.items()
            if resolver is not None
        }
        random.Random(r).shuffle(order)
        gc.collect()
        gc.disable()
        try:
            for n, i in enumerate(order):
                agent = agents[i]
                for name in names[n % len(names) :] + names[: n % len(names)]:
                    case, _ = cases[name]
                    if name in parsers:
                        ua_parser.parser = parsers[name]
                    start = clock()
                    case(agent)
                    if r >= 0:
                        samples[name][i][r] = (clock() - start) / 1000
        finally:
            gc.enable()
    return {name: [statistics.median(s) for s in per_agent] for name, per_agent in samples.items()}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def report(times: dict[str, list[float]], agents: list[str]) -> None:
    base = times[BASELINE]
    stats = {name: (statistics.median(t), percentile(t, 0.99), max(t)) for name, t in times.items()}
    b_median, b_p99, b_worst = stats[BASELINE]
    print(f"{'case':26} {'median µs':>10} {'p99 µs':>9} {'worst µs':>9}   ratios to {BASELINE}")
    for name, (median, p99, worst) in stats.items():
        ratios = f"{median / b_median:6.2f} {p99 / b_p99:6.2f} {worst / b_worst:6.2f}"
        print(f"{name:26} {median:10.1f} {p99:9.1f} {worst:9.1f}   {ratios}")
        per_agent = [t / b for t, b in zip(times[name], base, strict=True)]
        slowest = agents[times[name].index(worst)]
        print(f"{'':26} per agent / {BASELINE}: median {statistics.median(per_agent):.2f}x;"
              f" worst: {slowest[:60]!r}")  # fmt: skip
    print()


def hostile(cases: dict[str, tuple[Case, ua_parser.Resolver | None]]) -> None:
    """The worst of the hostile inputs per case, cut as ``describe_device`` cuts them."""
    labels = list(HOSTILE)
    agents = [user_agent_field(HOSTILE[label]) or "" for label in labels]
    times = run(cases, agents, rounds=3)
    print(f"hostile inputs ({len(HOSTILE)}, cut to 512 characters; median of 3), worst per case:")
    for name, spent in times.items():
        worst = max(spent)
        print(f"  {name:24} {worst:9.1f} µs  ({labels[spent.index(worst)]})")
    print()


FIRST_CALL = """
import time
start = time.perf_counter()
from asgi_kit._user_agents import describe_device, _builtin_device
imported = time.perf_counter()
describe_device({agent!r})
first = time.perf_counter()
describe_device({other!r})
second = time.perf_counter()
_builtin_device({agent!r})
builtin = time.perf_counter()
print(imported - start, first - imported, second - first, builtin - second)
"""


def first_calls() -> None:
    """A fresh process's first ``describe_device``: ua-parser builds its global parser."""
    agent = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"
    code = FIRST_CALL.format(agent=agent, other=agent.replace("133", "134"))
    runs = [
        [float(x) * 1e3 for x in subprocess.check_output([sys.executable, "-c", code]).split()]
        for _ in range(3)
    ]
    medians = [statistics.median(column) for column in zip(*runs, strict=True)]
    print("fresh process (median of 3), ms: import asgi_kit {:.1f}, first describe_device {:.1f},"
          " second {:.3f}, first built-in {:.3f}".format(*medians))  # fmt: skip


if __name__ == "__main__":
    main()
