"""Project tasks that need nothing but Python 3.10+ and pip.

    python3 dev.py demo    # create/refresh .venv, then run the demo app on 127.0.0.1:8000
    python3 dev.py test    # create/refresh .venv, then ruff, mypy, the docs and every test
    python3 dev.py docs    # create/refresh .venv, then serve the documentation on 127.0.0.1:8001

Each task (re)creates ``.venv`` beside this file and reinstalls the project when
``pyproject.toml`` has changed since the last install, so no other set-up step is needed.
``ASGI_KIT_VENV=.venv-py3.12 python3.12 dev.py test`` uses another environment (and
that Python) instead.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
# ASGI_KIT_VENV picks another environment (.ci/run makes one per Python version).
VENV = ROOT / os.environ.get("ASGI_KIT_VENV", ".venv")
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")
STAMP = VENV / ".asgi-kit-installed"
# Material for MkDocs prints a banner about its successor on every build; the docs say why we
# stay on it (docs/development.md).
QUIET_MKDOCS = {"NO_MKDOCS_2_WARNING": "1"}


def run(*args: str | Path, **env: str) -> None:
    """Run a command from the project root; exit with its code when it fails."""
    print("+", " ".join(str(a) for a in args), flush=True)
    command = [str(a) for a in args]
    result = subprocess.run(command, cwd=ROOT, env={**os.environ, **env}, check=False)  # noqa: S603
    if result.returncode != 0:
        sys.exit(result.returncode)


def ensure_venv() -> None:
    """Create .venv and install the project with its dev extras when pyproject.toml changed."""
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if not PYTHON.exists():
        venv.create(VENV, with_pip=True)
    if STAMP.exists() and STAMP.read_text() == wanted:
        return
    run(PYTHON, "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    run(PYTHON, "-m", "pip", "install", "--quiet", "-e", ".[dev]")
    STAMP.write_text(wanted)


def demo() -> None:
    """Run the demo app (examples/demo) with uvicorn on 127.0.0.1:8000."""
    ensure_venv()
    host = os.environ.get("HOST", "127.0.0.1")
    port = os.environ.get("PORT", "8000")
    run(PYTHON, "-m", "uvicorn", "examples.demo.app:app", "--host", host, "--port", port)


def docs() -> None:
    """Serve the documentation site (mkdocs.yml, docs/) on 127.0.0.1:8001, rebuilt on edits."""
    ensure_venv()
    address = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8001')}"
    run(PYTHON, "-m", "mkdocs", "serve", "--strict", "--dev-addr", address, **QUIET_MKDOCS)


def test() -> None:
    """Lint, type-check, check the import contracts, build the docs strictly, run the tests."""
    ensure_venv()
    run(PYTHON, "-m", "ruff", "check", ".")
    run(PYTHON, "-m", "mypy")
    run(BIN / "lint-imports")
    # Broken links, anchors and API references fail the run, as a failing test does.
    site = VENV / "site"
    run(PYTHON, "-m", "mkdocs", "build", "--strict", "--quiet", "--site-dir", site, **QUIET_MKDOCS)
    run(PYTHON, "-m", "pytest", "--cov", "--cov-report=term", "--cov-fail-under=95", *sys.argv[2:])


TASKS = {"demo": demo, "docs": docs, "test": test}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in TASKS:
        sys.exit(__doc__)
    TASKS[sys.argv[1]]()
