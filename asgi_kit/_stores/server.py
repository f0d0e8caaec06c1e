"""What the server-backed stores (SQL, Redis) share: the outage error, the deadline, the purge.

``SessionManager.purge_periodically`` runs the same loop over its own ``purge_expired``.

No driver is imported here, so either store works without the other's extra installed.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager

import anyio

from .._errors import ConfigurationError, StoreUnavailableError

logger = logging.getLogger("asgi_kit")


def store_unavailable(server: str, cause: BaseException) -> StoreUnavailableError:
    """Log a warning about ``cause`` and return the error to raise (``from`` it).

    Only the type and the first line of the driver's own message are kept: never a
    statement or its parameters (token digests), nor a server URL (it may hold a password).
    """
    text = str(cause).strip()
    reason = type(cause).__name__ + (f": {text.splitlines()[0]}" if text else "")
    logger.warning("session store unavailable (%s: %s)", server, reason)
    return StoreUnavailableError(f"session store unavailable ({server}: {reason})")


@contextmanager
def deadline(server: str, timeout: float | None) -> Iterator[None]:
    """Give the operation in the ``with`` block ``timeout`` seconds in all (None: no limit).

    One deadline for the whole operation (a wait for a pooled connection, connecting, each
    statement or command) so it ends within ``timeout`` however many requests queue for a
    connection; it is cancelled then, and ``StoreUnavailableError`` raised. The code inside
    must discard a connection it was using when cancelled: its state is unknown.
    """
    try:
        with anyio.fail_after(timeout):
            yield
    except TimeoutError as exc:
        raise store_unavailable(server, TimeoutError(f"no answer within {timeout} s")) from exc


async def purge_periodically(purge: Callable[[], Awaitable[int]], interval: float) -> None:
    """Call ``purge()`` (it returns how many sessions it removed) every ``interval`` s, forever.

    An outage (``StoreUnavailableError``) does not end the loop: it is logged, and the
    next round tries again.
    """
    if interval <= 0:
        raise ConfigurationError(f"interval must be positive, got {interval!r}")
    while True:
        try:
            removed = await purge()
        except StoreUnavailableError:
            logger.warning("purging expired sessions failed; next try in %s s", interval)
        else:
            logger.debug("purged %d expired sessions", removed)
        await anyio.sleep(interval)
