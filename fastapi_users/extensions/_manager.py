"""``Manager``: what the strategy, the routers and the user-manager mixin use of a manager.

``SessionManager`` implements it; the helper modules depend on this protocol, never on
``session_manager`` itself, so ``session_manager`` imports them and nothing imports it back.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable
from uuid import UUID

from starlette.requests import HTTPConnection
from starlette.responses import Response

from asgi_kit import (
    Device,
    RecentAuthentication,
    Session,
    SessionCookie,
    SessionResolver,
    TokenRefresher,
    UserId,
)

from ._events import AccountEvent, EndReason
from ._sync import AwaitableSession


@runtime_checkable
class Manager(Protocol):
    """The part of ``SessionManager`` its helpers call (see ``SessionManager`` for each)."""

    @property
    def resolver(self) -> SessionResolver:
        """The resolver of every request's session."""
        ...

    @property
    def current_session(self) -> Callable[..., Awaitable[Session]]:
        """The FastAPI dependency giving the caller's session."""
        ...

    def create_session(
        self,
        user_id: UserId | int,
        token: str,
        *,
        expires_at: datetime | None = None,
        user_agent: str | None = None,
        ip_address: str | None = None,
        refresh_token: bool = False,
        device: Device | None = None,
    ) -> AwaitableSession:
        """Create and store a session."""
        ...

    @property
    def revoke_all_rule(self) -> RecentAuthentication | None:
        """What ``DELETE /auth/sessions`` asks of the caller's session, if anything."""
        ...

    def recent_authentication(
        self, max_age: timedelta | float
    ) -> Callable[..., Awaitable[Session]]:
        """The dependency: the caller's session, authenticated within ``max_age``."""
        ...

    async def reauthenticate(
        self, session: Session, verify: Callable[[], Awaitable[bool]]
    ) -> Session | None:
        """Record a re-authentication that ``verify`` passed, within the limit of failures."""
        ...

    @property
    def refresher(self) -> TokenRefresher | None:
        """Issues and rotates refresh tokens; None when they are off."""
        ...

    @property
    def refresh_cookie(self) -> SessionCookie | None:
        """Where browsers keep the refresh token, if anywhere."""
        ...

    async def refresh(self, refresh_token: str, *, session_id: UUID | None = None) -> Session:
        """Exchange a refresh token for the next tokens."""
        ...

    def set_cookie(self, response: Response, session: Session, request: HTTPConnection) -> None:
        """Set the session (and refresh) cookie."""
        ...

    def clear_cookie(self, response: Response, request: HTTPConnection) -> None:
        """Delete the session (and refresh) cookie."""
        ...

    async def authenticate(self, token: str) -> Session | None:
        """The active session of a raw token."""
        ...

    async def get_sessions(self, user_id: UserId | int) -> list[Session]:
        """A user's active sessions."""
        ...

    async def get_session(self, session_id: UUID) -> Session | None:
        """The active session with this id."""
        ...

    async def revoke_session(
        self, session_id: UUID, *, reason: EndReason | str = EndReason.LOGOUT
    ) -> Session | None:
        """End one session."""
        ...

    async def revoke_all(
        self,
        user_id: UserId | int,
        *,
        keep: Sequence[UUID] = (),
        reason: EndReason | str = EndReason.LOGOUT,
    ) -> list[Session]:
        """End a user's sessions."""
        ...

    async def end_sessions_for_account_event(
        self, user_id: UserId | int, event: AccountEvent | str, *, keep_current: UUID | None = None
    ) -> list[Session]:
        """End a user's sessions after an account event."""
        ...
