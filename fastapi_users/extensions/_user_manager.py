"""``SessionUserManagerMixin``: FastAPI Users account events end the user's sessions."""

from __future__ import annotations

from typing import Any, Protocol, cast

from starlette.requests import Request

from asgi_kit import ConfigurationError, Session, coerce_user_id, resolve_request

from ._events import AccountEvent
from ._manager import Manager

__all__ = ["SessionUserManagerMixin"]

#: The ``BaseUserManager`` hooks the mixin extends.
HOOKS = ("on_after_update", "on_after_reset_password", "on_after_delete")


class _User(Protocol):
    @property
    def id(self) -> Any: ...


class _Hooks(Protocol):
    """The FastAPI Users hooks the mixin chains to (``super()``)."""

    async def on_after_update(
        self, user: Any, update_dict: dict[str, Any], request: Request | None = None
    ) -> None: ...

    async def on_after_reset_password(self, user: Any, request: Request | None = None) -> None: ...

    async def on_after_delete(self, user: Any, request: Request | None = None) -> None: ...


class SessionUserManagerMixin:
    """End a user's sessions on FastAPI Users' account events (OWASP ASVS 5.0 V7.4).

    Put it first among the bases of your user manager and give it the ``SessionManager``,
    as a class attribute or as the ``session_manager=`` argument:

        class UserManager(SessionUserManagerMixin, UUIDIDMixin, BaseUserManager[User, UUID]):
            session_manager = manager
            reset_password_token_secret = SECRET
            verification_token_secret = SECRET

    What ends which sessions:

    - ``on_after_reset_password`` (forgot/reset password): every session of the user
      (``AccountEvent.PASSWORD_RESET``).
    - ``on_after_update`` with a new password (``update_dict["password"]`` not None, as
      ``PATCH /users/me`` and ``PATCH /users/{id}`` pass it): every session except the
      one that made the request, when that session is the user's own
      (``AccountEvent.PASSWORD_CHANGED``). When a superuser changes someone else's
      password, all of that user's sessions end.
    - ``on_after_update`` setting ``is_active`` to False: every session
      (``AccountEvent.ACCOUNT_DISABLED``); this wins over a password change in the same
      update.
    - ``on_after_delete``: every session (``AccountEvent.ACCOUNT_DELETED``).

    Each hook ends the sessions first and then calls ``super()``, even when ending them
    failed, so your own overrides still run: override the hooks in your ``UserManager``
    and call ``await super().on_after_update(...)`` etc. to keep this behaviour. Other
    updates (e-mail, verification, superuser flag) end no session. Any id type works
    (``UUIDIDMixin``, ``IntegerIDMixin``, ...).
    """

    session_manager: Manager
    """The ``SessionManager`` whose sessions the account events end."""

    def __init__(self, *args: Any, session_manager: Manager | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if session_manager is not None:
            self.session_manager = session_manager
        if not isinstance(getattr(self, "session_manager", None), Manager):
            raise ConfigurationError(
                f"{type(self).__name__} needs a SessionManager: set the class attribute "
                "`session_manager = manager` or pass `session_manager=manager`"
            )

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Refuse a base order in which FastAPI Users' own hooks would hide the mixin's."""
        super().__init_subclass__(**kwargs)
        mro = cls.__mro__
        mine = mro.index(SessionUserManagerMixin)
        for base in mro[1:mine]:
            if issubclass(base, SessionUserManagerMixin):
                continue
            hidden = [name for name in HOOKS if name in vars(base)]
            if hidden:
                raise ConfigurationError(
                    f"{cls.__name__}: list SessionUserManagerMixin before {base.__name__} "
                    f"in the bases, or its {', '.join(hidden)} never run"
                )

    async def on_after_update(
        self, user: _User, update_dict: dict[str, Any], request: Request | None = None
    ) -> None:
        """After an update: a new password or ``is_active=False`` ends sessions (see the class)."""
        try:
            if "is_active" in update_dict and not update_dict["is_active"]:
                await self.session_manager.end_sessions_for_account_event(
                    user.id, AccountEvent.ACCOUNT_DISABLED
                )
            elif update_dict.get("password") is not None:
                current = await self._current_session(request, user)
                await self.session_manager.end_sessions_for_account_event(
                    user.id,
                    AccountEvent.PASSWORD_CHANGED,
                    keep_current=current.id if current else None,
                )
        finally:
            await cast(_Hooks, super()).on_after_update(user, update_dict, request)

    async def on_after_reset_password(self, user: _User, request: Request | None = None) -> None:
        """After a password reset: every session of the user ends."""
        try:
            await self.session_manager.end_sessions_for_account_event(
                user.id, AccountEvent.PASSWORD_RESET
            )
        finally:
            await cast(_Hooks, super()).on_after_reset_password(user, request)

    async def on_after_delete(self, user: _User, request: Request | None = None) -> None:
        """After the user was deleted: every session of the user ends."""
        try:
            await self.session_manager.end_sessions_for_account_event(
                user.id, AccountEvent.ACCOUNT_DELETED
            )
        finally:
            await cast(_Hooks, super()).on_after_delete(user, request)

    async def _current_session(self, request: Request | None, user: _User) -> Session | None:
        """The session ``request`` was made with, if it is ``user``'s own."""
        if request is None:
            return None
        session = await resolve_request(request, self.session_manager.resolver)
        if not isinstance(session, Session) or session.user_id != coerce_user_id(user.id):
            return None
        return session
