"""How ``create_session`` serves every caller: sync code, ``await``, and async code without it.

- No event loop running (scripts, sync tests, worker threads): the whole creation, hooks
  included, runs to the end in a private event loop before the call returns.
- An event loop running and the in-memory store: the session is stored before the call
  returns (the in-memory store never suspends, see ``finish_now``); the lifecycle hooks
  run when the result is awaited, or, if it never is, in a task of the running loop.
- An event loop running and a server store: a ``PendingSession`` that must be awaited;
  reading it, or dropping it unawaited, fails loudly at the call site.
"""

from __future__ import annotations

import asyncio
import dataclasses
import warnings
from collections.abc import Coroutine, Generator
from typing import Any, TypeVar

import anyio

from asgi_kit import Session, SyncUsageError

T = TypeVar("T")

#: Hook tasks of sessions created without ``await``: asyncio keeps only weak references.
_BACKGROUND: set[asyncio.Task[None]] = set()


class AwaitableSession(Session):
    """A ``Session`` that can also be awaited (to itself), as ``create_session`` returns.

    It compares equal to the same session read back from a store. Awaiting it first
    finishes the creation's lifecycle hooks, if they have not run yet.
    """

    __slots__ = ("_hooks",)

    def __await__(self) -> Generator[Any, None, Session]:
        """Finish the creation's hooks (once), then return this session."""
        hooks: HookRun | None = getattr(self, "_hooks", None)
        if hooks is not None:
            yield from hooks.wait().__await__()
        return self

    def __eq__(self, other: object) -> bool:
        """Equal to any ``Session`` with the same compared fields (a stored one included)."""
        if not isinstance(other, Session):
            return NotImplemented
        return _compared(self) == _compared(other)

    __hash__ = Session.__hash__


def _compared(session: Session) -> tuple[object, ...]:
    return tuple(getattr(session, f.name) for f in dataclasses.fields(Session) if f.compare)


class HookRun:
    """The lifecycle hooks of one creation made in a running loop, run exactly once.

    They run in the caller's own task when it awaits the session, or when it next awaits
    one of the manager's operations (``pending``, the manager's runs not yet started,
    oldest first, is caught up first); failing both, in a task of their own at the loop's
    next iteration. Never half in one task and half in another: a hook may await anything.
    """

    __slots__ = ("_pending", "_task", "_work")

    def __init__(self, work: Coroutine[Any, Any, None], pending: dict[HookRun, None]) -> None:
        self._work: Coroutine[Any, Any, None] | None = work
        self._task: asyncio.Task[None] | None = None
        self._pending = pending
        pending[self] = None
        asyncio.get_running_loop().call_soon(self._start)

    def _take(self) -> Coroutine[Any, Any, None] | None:
        self._pending.pop(self, None)
        work, self._work = self._work, None
        return work

    def _start(self) -> None:
        work = self._take()
        if work is not None:
            task = self._task = asyncio.ensure_future(work)
            _BACKGROUND.add(task)
            task.add_done_callback(_BACKGROUND.discard)

    async def wait(self) -> None:
        """Run the hooks now if they have not started (older pending runs first)."""
        await catch_up(self._pending)
        if self._task is not None:
            await self._task


async def catch_up(pending: dict[HookRun, None]) -> None:
    """Run every hook run in ``pending`` that has not started, oldest first, in this task."""
    while pending:
        work = next(iter(pending))._take()
        if work is not None:
            await work


def with_hooks(session: AwaitableSession, hooks: HookRun | None) -> AwaitableSession:
    """``session``, which awaiting now also finishes ``hooks``; returned for convenience."""
    object.__setattr__(session, "_hooks", hooks)  # not a field: frozen-ness does not apply
    return session


def finish_now(work: Coroutine[Any, Any, T]) -> T:
    """Run ``work``, which must never suspend, to its end right now; return its result.

    For the in-memory store's admission, inside a running event loop: its operations and
    the (uncontended, ``fast_acquire``) per-user lock never wait, so the coroutine ends in
    its first step, in the caller's own task, and the session is stored before
    ``create_session`` returns. A coroutine that does suspend is a bug: it is closed.
    """
    try:
        work.send(None)
    except StopIteration as done:
        result: T = done.value
        return result
    work.close()
    raise RuntimeError("the in-memory session store suspended while storing a session")


class PendingSession:
    """What ``create_session`` returns in async code with a server store: await it.

    Reading any attribute raises ``SyncUsageError``, and so does dropping it without
    awaiting it (as a ``RuntimeWarning`` at that very line): the session is not created
    until it is awaited.
    """

    __slots__ = ("_store", "_work")

    def __init__(self, work: Coroutine[Any, Any, Session], store: str) -> None:
        self._work: Coroutine[Any, Any, Session] | None = work
        self._store = store

    def __await__(self) -> Generator[Any, None, Session]:
        """Create the session in the caller's event loop."""
        work, self._work = self._work, None
        if work is None:
            raise SyncUsageError("this create_session() result was awaited already")
        return work.__await__()

    def __getattr__(self, name: str) -> Any:
        raise SyncUsageError(
            f"create_session() with {self._store} must be awaited before reading "
            f".{name}: session = await manager.create_session(...)"
        )

    def __del__(self) -> None:
        work = getattr(self, "_work", None)
        if work is not None:
            work.close()  # no second, vaguer "coroutine was never awaited" warning
            warnings.warn(
                f"create_session() with {self._store} was not awaited, so no session was "
                "created: write `session = await manager.create_session(...)`",
                RuntimeWarning,
                stacklevel=2,
            )


def event_loop_running() -> bool:
    """True when called from code running inside an asyncio event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def run_now(work: Coroutine[Any, Any, T]) -> T:
    """Run ``work`` to completion in a private event loop; return its result."""

    async def finish() -> T:
        return await work

    return anyio.run(finish)
