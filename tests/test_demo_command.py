"""The README's first command, ``python3 dev.py demo``, started for real and driven over HTTP.

The helpers here (a free port, a demo process in its own process group that is waited
for and then stopped with nothing left behind) are shared with the browser test.
"""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path

import httpx2
import pytest

from .servers import free_port

ROOT = Path(__file__).resolve().parents[1]
#: The first run of ``dev.py`` may create .venv and install the project: allow for it.
START_TIMEOUT = float(os.environ.get("DEMO_START_TIMEOUT", "300"))
STOP_TIMEOUT = 20.0


def group_members(pgid: int) -> list[int]:
    """The live (non-zombie) processes of process group ``pgid``, from /proc."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # gone meanwhile
            continue
        fields = stat.rpartition(")")[2].split()  # after "pid (comm)": state ppid pgrp ...
        if fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(entry.name))
    return members


def stop_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the whole process group, wait for every member, SIGKILL what lingers."""
    pgid = process.pid  # start_new_session=True: the leader's pid is the group id
    with suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    while group_members(pgid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if group_members(pgid):
        with suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
    process.wait(timeout=STOP_TIMEOUT)


def wait_until_up(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    """Poll ``url`` until it answers; fail with the process output if it dies or hangs."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the demo exited with {process.returncode}:\n{log.read_text()}")
        try:
            if httpx2.get(url, timeout=2).status_code == 200:
                return
        except httpx2.TransportError:
            pass
        time.sleep(0.2)
    pytest.fail(f"the demo did not answer {url} within {START_TIMEOUT:.0f}s:\n{log.read_text()}")


@contextmanager
def demo_process(command: Sequence[str], env: Mapping[str, str], log: Path) -> Iterator[str]:
    """Run ``command`` from the repo root in its own process group; yield the demo's URL.

    ``env`` must set ``PORT``. On exit the whole group is stopped and checked to be gone.
    """
    url = f"http://127.0.0.1:{env['PORT']}"
    with log.open("wb") as out:
        process = subprocess.Popen(
            list(command),
            cwd=ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **env},
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_until_up(process, url + "/", log)
        yield url
    finally:
        stop_group(process)
    assert group_members(process.pid) == [], "processes of the demo outlived it"


def python3() -> str:
    """``python3`` as the README says, falling back to this interpreter if PATH has none."""
    return shutil.which("python3") or sys.executable


def test_readme_command_serves_login_list_revoke(tmp_path: Path) -> None:
    database = tmp_path / "sessions.sqlite3"
    secret = tmp_path / "data" / "refresh-secret"
    env = {
        "PORT": str(free_port()),
        "SESSION_STORE_URL": f"sqlite:///{database}",
        "FILES_CACHE_DIR": str(tmp_path / "file-cache"),
        "REFRESH_SECRET_FILE": str(secret),
    }
    log = tmp_path / "demo.log"
    with (
        demo_process([python3(), "dev.py", "demo"], env, log) as url,
        httpx2.Client(base_url=url, timeout=10) as http,
    ):
        assert "<title>" in http.get("/").text

        def login(agent: str) -> dict[str, str]:
            reply = http.post(
                "/auth/login",
                json={"username": "alice", "password": "demo"},
                headers={"User-Agent": agent},
            )
            assert reply.status_code == 200, reply.text
            tokens[agent] = reply.json()
            return {"Authorization": f"Bearer {reply.json()['access_token']}"}

        tokens: dict[str, dict[str, str]] = {}
        laptop, phone = login("laptop"), login("phone")
        listed = http.get("/auth/sessions", headers=laptop).json()
        assert [(s["user_agent"], s["current"]) for s in listed] == [
            ("phone", False),
            ("laptop", True),
        ]
        assert all(s["ip_address"] == "127.0.0.1" for s in listed)
        assert http.delete(f"/auth/sessions/{listed[0]['id']}", headers=laptop).status_code == 204
        assert http.get("/me", headers=phone).status_code == 401
        assert http.get("/me", headers=laptop).json()["username"] == "alice"
        # An API client's refresh: the next pair in the body, the old access token gone.
        # The login's refresh cookie must not go along: with no Origin it would be refused
        # as cross-site (403 CSRF_FAILED), and beside a body it is a second token (400).
        http.cookies.clear()
        refresh = {"refresh_token": tokens["laptop"]["refresh_token"]}
        renewed = http.post("/auth/sessions/refresh", json=refresh)
        assert renewed.status_code == 200, renewed.text
        assert renewed.json()["expires_in"] == 300
        assert http.get("/me", headers=laptop).status_code == 401
        laptop = {"Authorization": f"Bearer {renewed.json()['access_token']}"}
        assert http.get("/me", headers=laptop).json()["username"] == "alice"
        assert http.get("/files/hello.txt?t=1").status_code == 200

    output = log.read_text()
    assert f"open {url}" in output
    assert "alice / demo" in output
    assert "bob / demo" in output
    assert f"refresh secret {secret}" in output
    assert "Application shutdown complete" in output  # stopped gracefully: store closed
    assert database.exists()
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600  # made at the first start-up
    with pytest.raises(httpx2.TransportError):
        httpx2.get(url, timeout=2)
