"""The Debian tools some benchmarks drive (valgrind, wrk), installed as ``.ci/run`` does.

A benchmark asks for its tool here instead of telling the reader to install it by hand:
when the tool is missing and the machine has ``apt-get`` (run as root, as on these
machines), Debian's package is installed, the same way ``.ci/run`` installs redis-server
and Chromium for the tests.
"""

from __future__ import annotations

import os
import shutil
import subprocess


def ensure_tool(command: str, *, package: str | None = None, required: bool = True) -> bool:
    """True once ``command`` is on PATH, installing Debian's ``package`` (default: the
    command's name) if it is not; when it cannot be had, exit if ``required``, else False."""
    if shutil.which(command) is None and shutil.which("apt-get") and os.geteuid() == 0:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        print(f"{command} is not installed: apt-get install {package or command}", flush=True)
        for args in (["update", "-q"], ["install", "-y", "-q", package or command]):
            subprocess.run(["apt-get", *args], env=env, check=False, stdout=subprocess.DEVNULL)
    if shutil.which(command) is not None:
        return True
    if required:
        raise SystemExit(f"{command} is needed and could not be installed (apt-get install)")
    return False
