"""What the server-backed stores (SQL, Redis) share: the outage error, the periodic purge.

``SessionManager.purge_periodically`` runs the same loop over its own ``purge_expired``.

No driver is imported here, so either store works without the other's extra installed.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

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
