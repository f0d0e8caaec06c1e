"""Where the real servers are, and what a test does when one is missing.

PostgreSQL and Redis run on their standard local ports on CI machines. A test that needs one
skips with the reason when it is unreachable, except under ``CI``: then it fails, so a CI run
can never pass by skipping the very tests that matter.
"""

from __future__ import annotations

import inspect
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from typing import NoReturn
from urllib.parse import urlsplit

import anyio
import pytest

POSTGRES_URL = os.environ.get(
    "ASGI_KIT_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("ASGI_KIT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _address(url: str, default_port: int) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or default_port


POSTGRES_ADDRESS = _address(POSTGRES_URL, 5432)
REDIS_ADDRESS = _address(REDIS_URL, 6379)


def reachable(address: tuple[str, int]) -> bool:
    """True if something accepts TCP connections at ``address``."""
    try:
        with socket.create_connection(address, timeout=1):
            return True
    except OSError:
        return False


def require(name: str, address: tuple[str, int]) -> None:
    """Skip (or, with ``CI`` set, fail) the calling test unless ``address`` is reachable."""
    if not reachable(address):
        missing(f"{name} is not reachable at {address[0]}:{address[1]}", "start it")


def missing(reason: str, fix: str) -> NoReturn:
    """Skip the calling test for ``reason`` (``fix`` says what runs it), or fail under ``CI``."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason}, and CI is set: store tests must run on CI", pytrace=False)
    pytest.skip(f"{reason}; {fix} to run these tests (see README, Development)")


def unique_name(prefix: str) -> str:
    """A name no other test uses (table names, key prefixes)."""
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


async def wait_until(check: Callable[[], bool | Awaitable[bool]], what: str) -> None:
    """Poll ``check`` (state a server or a background task changes) until it is true."""
    for _ in range(500):
        verdict = check()
        if inspect.isawaitable(verdict):
            verdict = await verdict
        if verdict:
            return
        await anyio.sleep(0.02)
    pytest.fail(f"timed out waiting until {what}")
