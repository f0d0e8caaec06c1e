"""How ``create_session`` serves both synchronous and async callers."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Coroutine, Generator
from typing import Any

import anyio

from asgi_kit import Session, SyncUsageError


class AwaitableSession(Session):
    """A ``Session`` that can also be awaited (to itself), as ``create_session`` returns."""

    __slots__ = ()

    def __await__(self) -> Generator[Any, None, Session]:
        """Awaiting an already created session returns it at once."""
        yield from ()
        return self


class PendingSession:
    """What ``create_session`` returns inside an event loop: await it for the Session."""

    __slots__ = ("_work",)

    def __init__(self, work: Coroutine[Any, Any, Session]) -> None:
        self._work = work

    def __await__(self) -> Generator[Any, None, Session]:
        """Run the creation in the caller's event loop."""
        return self._work.__await__()

    def __getattr__(self, name: str) -> Any:
        raise SyncUsageError(
            f"create_session() was called in async code, so it must be awaited before "
            f"reading .{name}: session = await manager.create_session(...)"
        )


def event_loop_running() -> bool:
    """True when called from code running inside an asyncio event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def run_now(work: Coroutine[Any, Any, Session]) -> AwaitableSession:
    """Run ``work`` to completion in a private event loop; return its awaitable result."""

    async def finish() -> Session:
        return await work

    session = anyio.run(finish)
    values = {f.name: getattr(session, f.name) for f in dataclasses.fields(Session) if f.init}
    return AwaitableSession(**values)
