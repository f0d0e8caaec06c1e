"""Step-up authentication (RFC 9470): sensitive actions ask for a recent sign-in.

A session's ``authenticated_at`` is when its user last proved who they are (the login, or
a re-authentication). ``RecentAuthentication(max_age)`` is the one rule: a request passes
when its session's ``authenticated_at`` is at most ``max_age`` old, and is otherwise
answered 401 ``REAUTHENTICATION_REQUIRED`` with RFC 9470's challenge:

    WWW-Authenticate: Bearer error="insufficient_user_authentication",
        error_description="A more recent authentication is required", max_age="300"

The client then has the user prove who they are again (a password, a second factor),
the app records it (``SessionManager.reauthenticated`` or a store's
``record_authentication``), and the client retries.
"""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from ._clock import duration_setting
from ._http import ErrorCode, Refusal, refusal
from ._models import Session
from ._request import Conn, get_auth_result

__all__ = ["RecentAuthentication"]

Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])


class RecentAuthentication:
    """Require that the caller's session proved who its user is within ``max_age``.

    ``max_age`` is seconds or a timedelta, finite and positive (else ``ConfigurationError``,
    when the rule is made: at start-up). Use it as a decorator of Starlette endpoints, or
    ``check`` a request or raw scope that ``BearerAuthMiddleware`` (or
    ``SessionAuthBackend``) resolved:

        @RecentAuthentication(300)
        async def change_password(request: Request) -> Response: ...

        answer = RecentAuthentication(300).check(scope)  # a raw ASGI app
        if answer is not None:
            return await answer.response()(scope, receive, send)
    """

    def __init__(self, max_age: timedelta | float) -> None:
        self.max_age = duration_setting(max_age, "max_age")
        """The longest a session may have gone since its user last proved who they are."""
        self._seconds = self.max_age.total_seconds()
        # RFC 9470 section 3: max_age in whole seconds (a sub-second setting says 1).
        shown = max(1, int(self._seconds))
        challenge = (
            'Bearer error="insufficient_user_authentication", '
            f'error_description="A more recent authentication is required", max_age="{shown}"'
        )
        self.challenge = Refusal(
            401, ErrorCode.REAUTHENTICATION_REQUIRED, {"WWW-Authenticate": challenge}
        )
        """The answer to a session that authenticated too long ago."""

    def is_met(self, session: Session, now: float | None = None) -> bool:
        """True when ``session`` authenticated at most ``max_age`` before ``now`` (a timestamp)."""
        now = time.time() if now is None else now
        return now - session.authenticated.timestamp() <= self._seconds

    def refusal(self, session: Session) -> Refusal | None:
        """None when ``session`` meets the rule, else ``challenge``."""
        return None if self.is_met(session) else self.challenge

    def check(self, conn: Conn) -> Refusal | None:
        """None when the request's session meets the rule, else the answer to send.

        An anonymous request gets the usual 401 (or 400/403) of why it has no session.
        Raises ``RuntimeError`` when nothing resolved the request (no middleware), so a
        missing middleware is never mistaken for a stale session.
        """
        result = get_auth_result(conn)
        if result is None:
            raise RuntimeError("BearerAuthMiddleware must be installed to check the session")
        if result.session is None:
            return refusal(result.reason)
        return self.refusal(result.session)

    def __call__(self, endpoint: Endpoint) -> Endpoint:
        """Decorate a Starlette HTTP endpoint (sync or async, taking the request first)."""
        is_async = inspect.iscoroutinefunction(endpoint)

        @functools.wraps(endpoint)
        async def guarded(request: Request, *args: Any, **kwargs: Any) -> Response:
            answer = self.check(request)
            if answer is not None:
                return answer.response()
            if is_async:
                response: Awaitable[Response] = endpoint(request, *args, **kwargs)
                return await response
            return await run_in_threadpool(endpoint, request, *args, **kwargs)

        return guarded  # type: ignore[return-value]
