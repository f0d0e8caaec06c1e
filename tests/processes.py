"""Work in real spawned processes: for tests of what several processes share at once."""

from __future__ import annotations

import multiprocessing
import traceback
from collections.abc import Callable, Sequence
from typing import Any

SPAWN = multiprocessing.get_context("spawn")
# Seconds a whole run may take before the test fails: a bound, not a measurement.
TIMEOUT = 300


def spawned(
    target: Callable[..., Any], arguments: Sequence[tuple[Any, ...]], ready: Any = None
) -> list[Any]:
    """Run ``target(*args)`` in one spawned process per ``args``; return what each returned.

    ``target`` must be importable by name (a module's function). A worker that raised fails
    the test with its traceback. With ``ready`` (one ``SPAWN.Event`` per worker), each
    process starts once the previous one's event is set.
    """
    results = SPAWN.Queue()
    processes = [
        SPAWN.Process(target=_serve, args=(results, n, target, args), daemon=True)
        for n, args in enumerate(arguments)
    ]
    try:
        for n, process in enumerate(processes):
            process.start()
            if ready is not None and n + 1 < len(processes):
                assert ready[n].wait(TIMEOUT), f"worker {n} did not get going"
        found = dict(results.get(timeout=TIMEOUT) for _ in processes)
    finally:
        for process in processes:
            process.join(TIMEOUT)
            if process.is_alive():
                process.terminate()
                process.join()
        results.close()
        results.join_thread()
    outcomes = [found[n] for n in range(len(arguments))]
    for n, (failed, value) in enumerate(outcomes):
        assert not failed, f"worker {n} raised:\n{value}"
    return [value for _, value in outcomes]


def _serve(results: Any, number: int, target: Callable[..., Any], args: tuple[Any, ...]) -> None:
    # Process entry point: put (number, (raised, what it returned or the traceback)).
    try:
        results.put((number, (False, target(*args))))
    except BaseException:
        results.put((number, (True, traceback.format_exc())))
        raise
