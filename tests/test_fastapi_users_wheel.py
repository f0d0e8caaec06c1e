"""The FastAPI Users integration, against the real thing.

Builds this project's wheel, installs it (not editable) beside FastAPI Users 15 from PyPI
in a separate virtual environment, ``.venv-fastapi-users`` at the repository root, and
runs ``fastapi_users_env/check.py`` there from a directory outside the repository.

The environment is kept between runs: it is made anew when ``pyproject.toml``, the
requirements below or the Python version change, and the wheel is force-reinstalled when
its content changes. The first run takes a minute or two (PyPI downloads); later runs
take seconds. Delete ``.venv-fastapi-users`` to start over.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import anyio
import asyncpg  # type: ignore[import-untyped]
import pytest

from .servers import POSTGRES_ADDRESS, POSTGRES_URL, require, unique_name

REPO = Path(__file__).resolve().parents[1]
ENV_DIR = REPO / ".venv-fastapi-users"
STAMP = ENV_DIR / "asgi-kit-env.json"
CHECK_DIR = Path(__file__).resolve().parent / "fastapi_users_env"
#: The complete app of the docs (docs/tutorial/fastapi-users.md includes it verbatim).
APP = Path(__file__).resolve().parents[1] / "examples" / "fastapi_users_app.py"
REQUIREMENTS = ("fastapi-users[sqlalchemy]==15.*", "aiosqlite", "asyncpg", "httpx2")
#: What the wheel is built from (everything else in the repository stays out).
SOURCES = ("pyproject.toml", "README.md", "LICENSE", "asgi_kit", "fastapi_users", "fsspec_patch")
PIP = ("-m", "pip", "--disable-pip-version-check", "--no-input")


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without what could point Python at other code."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")
        and not key.startswith(("COV_CORE_", "COVERAGE_"))
    }
    return {**env, **extra}


def run(args: list[str], *, cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    """Run a command in a clean environment; fail the test with its output if it fails."""
    result = subprocess.run(
        args, cwd=cwd, env=clean_env(), capture_output=True, text=True, timeout=timeout, check=False
    )
    if result.returncode != 0:
        pytest.fail(
            f"{' '.join(args)} exited with {result.returncode}\n"
            f"--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}",
            pytrace=False,
        )
    return result


def build_wheel(workdir: Path) -> Path:
    """Build this project's wheel from a clean copy of its sources (no stale build/ dir)."""
    source = workdir / "source"
    source.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in SOURCES:
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=ignore)
        elif path.exists():
            shutil.copy2(path, source / name)
    dist = workdir / "dist"
    run(
        [sys.executable, *PIP, "wheel", "--quiet", "--no-deps", "-w", str(dist), str(source)],
        cwd=workdir,
        timeout=600,
    )
    (wheel,) = dist.glob("asgi_kit-*.whl")
    return wheel


def wheel_digest(wheel: Path) -> str:
    """A hash of the wheel's files (names and bytes), whatever their zip time stamps."""
    digest = hashlib.sha256()
    with zipfile.ZipFile(wheel) as archive:
        for name in sorted(archive.namelist()):
            digest.update(name.encode() + b"\0" + archive.read(name) + b"\0")
    return digest.hexdigest()


def environment_key() -> str:
    """What decides the environment's dependencies: pyproject.toml, requirements, Python."""
    digest = hashlib.sha256((REPO / "pyproject.toml").read_bytes())
    digest.update("\n".join([*REQUIREMENTS, sys.version]).encode())
    return digest.hexdigest()


def env_python() -> Path:
    return ENV_DIR / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def ensure_environment(wheel: Path, workdir: Path) -> Path:
    """Make or refresh ``.venv-fastapi-users``; return its Python."""
    wanted = {"environment": environment_key(), "wheel": wheel_digest(wheel)}
    try:
        have = json.loads(STAMP.read_text())
    except (OSError, ValueError):
        have = {}
    python = env_python()
    if have == wanted and python.exists():
        return python
    if have.get("environment") != wanted["environment"] or not python.exists():
        shutil.rmtree(ENV_DIR, ignore_errors=True)
        run([sys.executable, "-m", "venv", str(ENV_DIR)], cwd=workdir, timeout=300)
        install = [*REQUIREMENTS, str(wheel)]
    else:  # same dependencies, new wheel: replace just the wheel
        STAMP.unlink()
        install = ["--force-reinstall", "--no-deps", str(wheel)]
    run([str(python), *PIP, "install", "--quiet", *install], cwd=workdir, timeout=900)
    STAMP.write_text(json.dumps(wanted))
    return python


@pytest.fixture(scope="module")
def environment(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Python of ``.venv-fastapi-users``, holding the wheel of the current sources."""
    build = tmp_path_factory.mktemp("wheel")
    return ensure_environment(build_wheel(build), build)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """The docs' app (as app.py), app_int.py and check.py, copied outside the repository
    (nothing there can shadow them)."""
    workdir = tmp_path / "check"
    workdir.mkdir()
    shutil.copy2(APP, workdir / "app.py")
    for name in ("app_int.py", "check.py"):
        shutil.copy2(CHECK_DIR / name, workdir / name)
    assert REPO not in workdir.resolve().parents
    return workdir


@pytest.fixture
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database for one run of the app, dropped afterwards."""
    require("PostgreSQL", POSTGRES_ADDRESS)
    name = unique_name("fastapi_users_check")
    admin = POSTGRES_URL.replace("postgresql+asyncpg://", "postgresql://")

    async def run(statement: str) -> None:
        connection = await asyncpg.connect(admin)
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    anyio.run(run, f'CREATE DATABASE "{name}"')
    try:
        yield POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        anyio.run(run, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


RUNS = [
    pytest.param("app", "sqlite", id="uuid-ids-sqlite"),
    pytest.param("app", "postgres", id="uuid-ids-postgres", marks=pytest.mark.postgres),
    pytest.param("app_int", "sqlite", id="integer-ids-sqlite"),
]


@pytest.mark.parametrize(("app", "database"), RUNS)
def test_fastapi_users_15_with_the_built_wheel(
    environment: Path, workdir: Path, app: str, database: str, request: pytest.FixtureRequest
) -> None:
    """FastAPI Users' own login/logout/reset/users routes drive asgi-kit sessions.

    The README's app (``UUIDIDMixin``) on SQLite and on PostgreSQL, and the same app with
    ``IntegerIDMixin`` (``app_int.py``); each run includes a burst of 50 simultaneous logins.
    """
    if database == "postgres":
        url = request.getfixturevalue("postgres_database")
    else:
        url = f"sqlite+aiosqlite:///{workdir / 'app.sqlite3'}"
    result = subprocess.run(
        [str(environment), "check.py"],
        cwd=workdir,
        env=clean_env(ASGI_KIT_REPO=str(REPO), CHECK_APP=app, DATABASE_URL=url),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = f"--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}"
    assert result.returncode == 0, f"check.py failed (exit {result.returncode})\n{output}"
    assert "all FastAPI Users integration checks passed" in result.stdout, output


def test_the_wiring_type_checks_against_fastapi_users(environment: Path, workdir: Path) -> None:
    """mypy --strict, against the installed FastAPI Users: SessionStrategy is a Strategy.

    app.py declares ``auth_backend: AuthenticationBackend[User, uuid.UUID]`` (app_int.py
    ``[User, int]``), so this
    fails if ``manager.strategy()`` does not satisfy FastAPI Users' ``Strategy`` protocol,
    or if ``SessionUserManagerMixin``'s hooks clash with ``BaseUserManager``'s.
    """
    cache = ENV_DIR / ".mypy_cache"
    run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--python-executable",
            str(environment),
            "--cache-dir",
            str(cache),
            "app.py",
            "app_int.py",
            "check.py",
        ],
        cwd=workdir,
        timeout=600,
    )

