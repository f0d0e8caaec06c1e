"""Run a FastAPI Users benchmark inside ``.venv-fastapi-users``, made from the current sources.

Our ``fastapi_users/extensions`` is a namespace package that must sit beside the real
FastAPI Users, so FastAPI Users cannot go into ``.venv``. The FastAPI Users integration
test (``tests/test_fastapi_users_wheel.py``) already builds our wheel and installs it
with ``fastapi-users[sqlalchemy]==15.*`` into ``.venv-fastapi-users``; this module calls
that test's own ``build_wheel`` and ``ensure_environment`` (imported by path, so there is
one recipe for the environment), adds uvicorn and its standard stack for the loopback
benchmark, and re-executes the benchmark with the environment's Python.

The wheel is rebuilt on every run from outside the environment, so the benchmark always
measures the current code (an unchanged wheel is not reinstalled).
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from types import ModuleType
from typing import NoReturn

REPO = Path(__file__).resolve().parents[1]
WHEEL_TEST = REPO / "tests" / "test_fastapi_users_wheel.py"
#: What the benchmarks need beyond what the integration test installs: uvicorn with its
#: standard stack (httptools, uvloop: what ``uvicorn[standard]`` and ``fastapi[standard]``
#: install), as a production server runs; redis-py for the Redis store of ``load_real_db``.
#: Each name is both the module and the package.
EXTRA_REQUIREMENTS = ("uvicorn", "httptools", "uvloop", "redis")
#: Set in the re-executed process, so a broken environment fails instead of looping.
MARKER_ENV = "ASGI_KIT_FASTAPI_USERS_BENCH"


def wheel_test() -> ModuleType:
    """``tests/test_fastapi_users_wheel.py`` as a module (it needs the dev extra: pytest)."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    return importlib.import_module("tests.test_fastapi_users_wheel")


def prepare() -> tuple[Path, dict[str, str]]:
    """Build the wheel, make or refresh the environment; return its Python and a clean env."""
    test = wheel_test()
    with tempfile.TemporaryDirectory(prefix="asgi-kit-bench-") as tmp:
        workdir = Path(tmp)
        print("building the wheel and refreshing .venv-fastapi-users ...", file=sys.stderr)
        python: Path = test.ensure_environment(test.build_wheel(workdir), workdir)
        env: dict[str, str] = test.clean_env()
        for requirement in EXTRA_REQUIREMENTS:
            probe = [str(python), "-c", f"import {requirement}"]
            if subprocess.run(probe, env=env, capture_output=True, check=False).returncode:
                install = [str(python), *test.PIP, "install", "--quiet", requirement]
                subprocess.run(install, env=env, cwd=workdir, check=True, timeout=900)
    return python, env


def run_in_environment(script: str) -> NoReturn:
    """Re-execute ``script`` (with this process's arguments) under the environment's Python."""
    if os.environ.get(MARKER_ENV):
        raise SystemExit(f"FastAPI Users is not importable in {sys.executable}")
    python, env = prepare()
    env[MARKER_ENV] = "1"
    sys.stdout.flush()
    # exec, not a child process: the benchmark owns the terminal, signals and exit code.
    os.execve(python, [str(python), script, *sys.argv[1:]], env)  # noqa: S606
