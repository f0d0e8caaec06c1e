"""``SessionManager``: create, list and revoke sessions, and serve ``/auth/sessions``.

manager = SessionManager(session_db=InMemorySessionDatabase())
app.include_router(manager.router, prefix="/auth/sessions")
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from datetime import datetime, timedelta
from functools import cached_property, partial
from typing import Any, TypeVar, cast
from uuid import UUID

from fastapi import APIRouter
from starlette.requests import HTTPConnection
from starlette.responses import Response

from asgi_kit import (
    ConfigurationError,
    Device,
    InMemorySessionDatabase,
    ReauthenticatingSessionDatabase,
    RecentAuthentication,
    RefreshError,
    RefreshTokenReusedError,
    Session,
    SessionCookie,
    SessionDatabase,
    SessionResolver,
    SyncUsageError,
    TokenRefresher,
    UserId,
    coerce_user_id,
    generate_token,
    utcnow,
)

from ._attempts import (
    ReauthenticationFailedError,
    ReauthenticationLimit,
    ReauthenticationLimitError,
)
from ._cap import SessionCap, cap_setting, policy_setting
from ._events import AccountEvent, EndReason, LimitPolicy, UnknownEndReasonError
from ._expiry import new_session, positive_interval, purge_expired, purge_periodically
from ._refresh_route import refresh_path
from ._session_api import SessionBearer, SessionRead, device_of
from ._session_routes import AdminPredicate, admin_router, user_router
from ._step_up import PasswordUserManager, reauthenticate_router, recent_session
from ._strategy import SessionStrategy
from ._sync import (
    AwaitableSession,
    HookRun,
    PendingSession,
    catch_up,
    event_loop_running,
    finish_now,
    run_now,
    with_hooks,
)
from ._transport import (
    BearerRefreshTransport,
    CookieRefreshTransport,
    RefreshTransport,
    TransportLike,
)
from ._user_manager import SessionUserManagerMixin

__all__ = [
    "AccountEvent",
    "AwaitableSession",
    "EndReason",
    "InMemorySessionDatabase",
    "LimitPolicy",
    "PasswordUserManager",
    "ReauthenticationFailedError",
    "ReauthenticationLimit",
    "ReauthenticationLimitError",
    "RefreshError",
    "RefreshTokenReusedError",
    "RefreshTransport",
    "Session",
    "SessionDatabase",
    "SessionManager",
    "SessionRead",
    "SessionStrategy",
    "SessionUserManagerMixin",
    "UnknownEndReasonError",
]

logger = logging.getLogger("asgi_kit.sessions")
S = TypeVar("S", bound=Session)


class SessionManager:
    """Sessions of users: create them at login, list them, revoke one or all.

    ``session_db`` is any ``SessionDatabase``; None makes a fresh in-memory store, and a
    plain ``dict`` (or other ``MutableMapping``) becomes the in-memory store's backing map.
    ``lifetime`` caps every session's age; ``idle_timeout`` ends sessions unused that long;
    ``touch_interval`` is how often activity is written back (``last_seen_at``).
    ``max_sessions_per_user`` caps concurrent sessions (off by default); ``limit_policy``
    evicts the least recently used session or refuses the new one. ``token_url`` (FastAPI
    Users' login route, e.g. ``"auth/login"``) makes the session routes declare the same
    OAuth2 password scheme as FastAPI Users' ``BearerTransport``: one Authorize in ``/docs``.
    ``cookie`` (a ``SessionCookie``) lets browsers' requests carry the token in an HttpOnly
    cookie instead of ``Authorization`` (CSRF-checked); see ``set_cookie``.

    ``access_token_lifetime`` (seconds or a timedelta; off by default) turns on refresh
    tokens: ``login()`` and FastAPI Users' login then give short-lived access tokens and a
    refresh token, exchanged at ``POST /refresh`` (``refresh()``) for the next pair, each
    refresh token once. A rotated-out one presented again more than
    ``refresh_reuse_interval`` seconds (default 10) after its rotation ends the session
    (``EndReason.TOKEN_REUSED``): two parties held it. ``refresh_secret`` signs refresh
    tokens (at least 32 bytes, the same on every instance; a list rotates it).
    ``revoke_all_max_age`` (seconds or a timedelta; off by default) makes ``DELETE
    /auth/sessions`` (log out everywhere, and with ``keep_current`` log out the other
    devices: either way a thief could sign the user out) a sensitive action: it answers 401
    ``REAUTHENTICATION_REQUIRED`` (RFC 9470) unless the caller's session proved who its
    user is that recently (``recent_authentication``, ``get_reauthenticate_router``).
    Hand the manager to ``BearerAuthMiddleware`` too: store and ``touch_interval`` are set here
    once, and each request's session is resolved once for every layer.

    The cap is exact within one process (per event loop): a per-user lock makes each
    login one step. Across instances sharing a store, every login stores its session,
    then lists the user's sessions again and settles:

    - ``evict_lru`` ends the least recently used sessions beyond the cap, ordered by
      ``last_seen_at``, ``created_at``, id, so all instances pick the same ones;
      concurrent logins end as if made one after another (the most recent ``cap`` stay).
    - ``refuse`` refuses a login (``SessionLimitError``) when ``cap`` sessions are
      already stored, or when, once its own is stored, ``cap`` sessions were admitted
      before it (by ``created_at``, id); the refused login removes its own session and
      never another, and concurrent logins are never all refused while there is room.
      Without an atomic "create if fewer than N" in the store one race is left: an
      older login whose write lands after a newer one has settled is admitted too, one
      session over the cap until one ends.

    A login that fails once its session is stored withdraws that session.

    Every change of state is made first; the hooks ``on_after_create`` and
    ``on_after_end`` run after it (override them, e.g. for an audit trail): a new
    session's, then those of the sessions evicted for it. A hook that raises is logged
    and never undoes, or interrupts, the change or the other hooks.
    """

    def __init__(
        self,
        session_db: SessionDatabase | MutableMapping[str, Session] | None = None,
        *,
        lifetime: timedelta | float | None = None,
        idle_timeout: timedelta | float | None = None,
        touch_interval: timedelta | float = 60,
        max_sessions_per_user: int | None = None,
        limit_policy: LimitPolicy | str = LimitPolicy.EVICT_LEAST_RECENTLY_USED,
        token_url: str | None = None,
        cookie: SessionCookie | None = None,
        access_token_lifetime: timedelta | float | None = None,
        refresh_reuse_interval: timedelta | float = 10,
        refresh_secret: str | bytes | Sequence[str | bytes] | None = None,
        revoke_all_max_age: timedelta | float | None = None,
    ) -> None:
        if session_db is None or isinstance(session_db, MutableMapping):
            session_db = InMemorySessionDatabase(session_db)
        self.session_db: SessionDatabase = session_db
        """The session store."""
        self.lifetime = positive_interval(lifetime, "lifetime")
        """Longest age of a session (``expires_at``), or None."""
        self.idle_timeout = positive_interval(idle_timeout, "idle_timeout")
        """A session unused this long ends, or None."""
        self.max_sessions_per_user = cap_setting(max_sessions_per_user)
        """The cap on a user's concurrent sessions, or None (no cap)."""
        self.limit_policy = policy_setting(limit_policy)
        """What the cap does to a login beyond it (a ``LimitPolicy``)."""
        self._cap = SessionCap(session_db)
        #: Hooks of sessions created without ``await``, not run yet (``_sync.HookRun``).
        self._unreported: dict[HookRun, None] = {}
        self.resolver = SessionResolver(session_db, touch_interval=touch_interval, cookie=cookie)
        """Resolves tokens to sessions; hand the manager to ``BearerAuthMiddleware`` to share it."""
        self.current_session = SessionBearer(self.resolver, token_url=token_url)
        """FastAPI dependency: the caller's ``Session`` or a 401 (see ``SessionBearer``)."""
        self.refresher: TokenRefresher | None = None
        """Issues and rotates refresh tokens; None unless ``access_token_lifetime`` is set."""
        if access_token_lifetime is not None:
            self.refresher = TokenRefresher(
                session_db,
                access_token_lifetime=access_token_lifetime,
                reuse_interval=refresh_reuse_interval,
                secret=refresh_secret,
            )
        self.refresh_cookie: SessionCookie | None = cookie
        """Where browsers keep the refresh token: the session cookie's, or a FastAPI Users
        ``CookieTransport``'s as ``transport()`` wraps it."""
        self.revoke_all_rule: RecentAuthentication | None = None
        """What ``DELETE /auth/sessions`` asks of the caller (None: nothing more)."""
        if revoke_all_max_age is not None:
            self.revoke_all_rule = _rule(revoke_all_max_age, "revoke_all_max_age")
        self.reauthentication_limit = ReauthenticationLimit(attempts=5, window=900)
        """Wrong re-authentications allowed per session: 5 per 15 minutes (then 429)."""

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
        """Create and store a session for ``token``; return it (its ``token`` set).

        ``device`` names the device (``describe_device``); by default it is worked out
        from ``user_agent``, once. ``login()`` and FastAPI Users' login give it from the
        request, client hints included.

        ``refresh_token=True`` (refresh tokens on: ``access_token_lifetime``) makes
        ``token`` an access token of that lifetime and gives the session a refresh token
        (``session.refresh_token``); ``login()`` and FastAPI Users' login do so. Without it
        the session is as ever: its token lasts as long as the session, and it has no
        refresh token.

        ``await`` it in async code: ``session = await manager.create_session(uid, token)``
        works with every store. With the in-memory store it also works without ``await``,
        in sync and async code alike: the session is stored before the call returns, and
        the result is a real ``Session`` (a subclass of the store, which may await, is
        awaited like a server store in async code). With a server store, sync code gets
        ``SyncUsageError`` and async code must await (a ``PendingSession``).

        ``user_id`` is opaque (``coerce_user_id``: a UUID, a string or an int). An
        ``expires_at`` at or before now creates a session that has already ended: never
        valid, never listed, reported once by ``purge_expired``. Bad arguments raise
        ``InvalidUserIdError`` or ``ValueError`` at the call, in every style; a refused
        session (``limit_policy="refuse"``) raises ``SessionLimitError``.
        """
        if refresh_token and self.refresher is None:
            raise ConfigurationError(
                "refresh tokens are off: pass access_token_lifetime= to the SessionManager"
            )
        build = partial(
            new_session,
            user_id,
            token,
            expires_at=expires_at,
            lifetime=self.lifetime,
            idle_timeout=self.idle_timeout,
            user_agent=user_agent,
            ip_address=ip_address,
            device=device,
            refresher=self.refresher if refresh_token else None,
            cls=AwaitableSession,
        )
        session = build()  # bad arguments raise here, in every calling style
        if not event_loop_running():
            if not isinstance(self.session_db, InMemorySessionDatabase):
                raise SyncUsageError(
                    f"{type(self.session_db).__name__} is asynchronous: "
                    "call `await manager.create_session(...)` from async code"
                )
            return run_now(self._store_new(session, build))
        # Eager only with the in-memory store itself, which never suspends (a subclass may).
        if type(self.session_db) is not InMemorySessionDatabase:
            work = self._store_new(session, build)
            return cast(AwaitableSession, PendingSession(work, type(self.session_db).__name__))
        evicted: list[Session] = []
        try:
            session = finish_now(self._admit(session, build, evicted))
        except BaseException:
            HookRun(self._report(None, evicted), self._unreported)  # evictions before it
            raise
        return with_hooks(session, HookRun(self._report(session, evicted), self._unreported))

    async def login(self, request: HTTPConnection, user_id: UserId | int) -> Session:
        """Start a session for a user who just proved who they are; return it with its token.

        The token is fresh (``secrets.token_urlsafe(32)``); the request's user agent and
        client IP are recorded so the user can recognise the device later. With refresh
        tokens on, it is an access token and the session has a refresh token.
        """
        user_agent, ip_address, device = await device_of(request.scope)
        return await self.create_session(
            user_id,
            generate_token(),
            user_agent=user_agent,
            ip_address=ip_address,
            refresh_token=self.refresher is not None,
            device=device,
        )

    async def refresh(self, refresh_token: str, *, session_id: UUID | None = None) -> Session:
        """Exchange a refresh token for its session with the next tokens (``token``,
        ``refresh_token``); see ``TokenRefresher.refresh``.

        Raises ``RefreshError`` (nothing changed; ``.code`` says why), or, for a reused
        token, ``RefreshTokenReusedError`` once the session ended and its hooks ran
        (``EndReason.TOKEN_REUSED``).
        """
        if self.refresher is None:
            raise ConfigurationError(
                "refresh tokens are off: pass access_token_lifetime= to the SessionManager"
            )
        await catch_up(self._unreported)
        try:
            return await self.refresher.refresh(refresh_token, session_id=session_id)
        except RefreshTokenReusedError as exc:
            await self._ended([exc.session] if exc.session else [], EndReason.TOKEN_REUSED)
            raise

    def recent_authentication(
        self, max_age: timedelta | float
    ) -> Callable[..., Awaitable[Session]]:
        """A FastAPI dependency: the caller's session, if its user proved who they are
        within ``max_age`` (seconds or a timedelta); else 401 ``REAUTHENTICATION_REQUIRED``.

        The 401 carries RFC 9470's challenge, ``WWW-Authenticate: Bearer
        error="insufficient_user_authentication", error_description="...",
        max_age="<seconds>"``: the client asks the user to prove who they are again
        (``POST /reauthenticate``, ``get_reauthenticate_router``) and retries. A bad
        ``max_age`` (0, negative, NaN, not a number) raises ``ConfigurationError`` here,
        at start-up:

            @app.post("/account/password")
            async def change_password(
                session: Session = Depends(manager.recent_authentication(300)),
            ): ...
        """
        return recent_session(self.current_session, _rule(max_age, "max_age"))

    async def reauthenticated(self, session_id: UUID) -> Session | None:
        """Record that the user of session ``session_id`` just proved who they are again.

        Call it after checking their password or second factor. It moves that session's
        ``authenticated_at`` to now, and no other session's: a re-authentication never
        carries over to the user's other devices. Return the session, or None (nothing
        changed) when no active session has that id. ``on_after_reauthenticate`` runs.
        """
        store = self.session_db
        if not isinstance(store, ReauthenticatingSessionDatabase):
            raise ConfigurationError(
                f"{type(store).__name__} cannot record re-authentications: "
                "add record_authentication() (see ReauthenticatingSessionDatabase)"
            )
        await catch_up(self._unreported)
        session = await store.record_authentication(session_id, utcnow())
        if session is not None:
            await self._notify(self.on_after_reauthenticate, session)
        return session

    async def reauthenticate(
        self, session: Session, verify: Callable[[], Awaitable[bool]]
    ) -> Session | None:
        """Re-authenticate ``session`` if ``verify()`` (the app's own check of a password
        or second factor) says yes; return it as ``reauthenticated`` does.

        Wrong answers are limited per session (``reauthentication_limit``: 5 per 15
        minutes), so a stolen session cannot guess the password: past the limit it raises
        ``ReauthenticationLimitError`` without calling ``verify``. Each attempt counts as
        wrong until ``verify`` says yes, so a burst of guesses sent at once gets 5 checks,
        not one each. A wrong answer raises ``ReauthenticationFailedError``; neither
        changes or ends the session.
        """
        limit = self.reauthentication_limit
        limit.attempt(session.id)  # counted as wrong until it proves right
        if not await verify():
            raise ReauthenticationFailedError("the re-authentication failed: nothing changed")
        limit.forget(session.id)
        return await self.reauthenticated(session.id)

    def set_cookie(self, response: Response, session: Session, request: HTTPConnection) -> None:
        """Set the session cookie (``cookie=`` of the manager) for ``session`` on ``response``.

        A session with a refresh token gets the refresh cookie too, for the path of
        ``POST /refresh`` (found by its route name: include ``manager.router`` in the app).
        """
        cookie = self._cookie()
        cookie.set(response, session, request)
        if session.refresh_token:
            cookie.set_refresh(response, session, request, refresh_path(request))

    def clear_cookie(self, response: Response, request: HTTPConnection) -> None:
        """Delete the session cookie (and a refresh cookie) on ``response`` (at logout)."""
        cookie = self._cookie()
        cookie.clear(response, request)
        if self.refresher is not None:
            cookie.clear_refresh(response, request, refresh_path(request))

    def _cookie(self) -> SessionCookie:
        cookie = self.refresh_cookie
        if cookie is None:
            raise ConfigurationError(
                "this SessionManager has no session cookie: pass cookie=SessionCookie(...)"
            )
        return cookie

    async def authenticate(self, token: str) -> Session | None:
        """Return the active session of a raw token, or None."""
        await catch_up(self._unreported)
        return await self.resolver.resolve(token)

    async def get_sessions(self, user_id: UserId | int) -> list[Session]:
        """Return a user's active sessions, newest first."""
        await catch_up(self._unreported)
        return await self.session_db.list_for_user(coerce_user_id(user_id))

    async def get_session(self, session_id: UUID) -> Session | None:
        """Return the active session with this id, or None."""
        await catch_up(self._unreported)
        return await self.session_db.get(session_id)

    async def revoke_session(
        self, session_id: UUID, *, reason: EndReason | str = EndReason.LOGOUT
    ) -> Session | None:
        """End one session; return it, or None if it was not active.

        An unknown ``reason`` raises ``UnknownEndReasonError`` and ends nothing.
        """
        reason = EndReason.of(reason)
        await catch_up(self._unreported)
        ended = await self.session_db.delete(session_id)
        await self._ended([ended] if ended else [], reason)
        return ended

    async def revoke_all(
        self,
        user_id: UserId | int,
        *,
        keep: Sequence[UUID] = (),
        reason: EndReason | str = EndReason.LOGOUT,
    ) -> list[Session]:
        """End all of a user's sessions except those in ``keep``; return the ended ones.

        An unknown ``reason`` raises ``UnknownEndReasonError`` and ends nothing.
        """
        reason = EndReason.of(reason)
        await catch_up(self._unreported)
        ended = await self.session_db.delete_for_user(coerce_user_id(user_id), keep=keep)
        await self._ended(ended, reason)
        return ended

    async def end_sessions_for_account_event(
        self, user_id: UserId | int, event: AccountEvent | str, *, keep_current: UUID | None = None
    ) -> list[Session]:
        """End a user's sessions after an account event; return the ended ones.

        Password changed or reset: every session ends, except ``keep_current`` if given
        (the session that made the change). Account disabled or deleted: every session
        ends, always; passing ``keep_current`` then raises ``ValueError``.
        """
        event = AccountEvent(event)
        if keep_current is not None and not event.may_keep_current:
            raise ValueError(f"{event.value} ends every session; keep_current is not allowed")
        keep = (keep_current,) if keep_current is not None else ()
        ended = await self.revoke_all(user_id, keep=keep, reason=EndReason.ACCOUNT_EVENT)
        fields = {"account_event": event.value, "user_id": str(user_id), "count": len(ended)}
        line = "account event=%s user=%s sessions_ended=%d"
        logger.info(line, event.value, user_id, len(ended), extra=fields)
        return ended

    async def purge_expired(self, now: datetime | None = None, *, batch_size: int = 500) -> int:
        """Delete sessions expired by ``now`` (default: now); return how many.

        Each goes to ``on_after_end(session, EndReason.EXPIRED)`` once, even when several
        instances purge at once (the store's ``pop_expired``, ``batch_size`` at a time).
        """
        report = partial(self._ended, reason=EndReason.EXPIRED)
        await catch_up(self._unreported)
        return await purge_expired(self.session_db, now, batch_size, report)

    async def purge_periodically(self, interval: float = 3600) -> None:
        """Run ``purge_expired`` every ``interval`` seconds, forever (start it in a task).

        Outages and raising hooks are logged, never fatal. Redis: keep it below its grace.
        """
        await purge_periodically(self.purge_expired, interval)

    async def on_after_create(self, session: Session) -> None:
        """Called after a session was stored. Default: one audit log line (id, never token).

        The line's fields are also in the record's ``extra`` (``session_id``, ``user_id``).
        """
        line = "session created id=%s user=%s"
        logger.info(line, session.id, session.user_id, extra=_audit_fields(session))

    async def on_after_reauthenticate(self, session: Session) -> None:
        """Called after a session's user proved who they are again. Default: an audit line."""
        line = "session reauthenticated id=%s user=%s"
        logger.info(line, session.id, session.user_id, extra=_audit_fields(session))

    async def on_after_end(self, session: Session, reason: EndReason) -> None:
        """Called after a session ended. Default: one audit log line (id and reason).

        The line's fields are also in the record's ``extra`` (``session_id``,
        ``user_id``, ``reason``). Override it (and ``on_after_create``) in a subclass to
        keep your own trail; a hook that raises is logged and changes nothing:

            class AuditedSessionManager(SessionManager):
                async def on_after_end(self, session: Session, reason: EndReason) -> None:
                    await super().on_after_end(session, reason)
                    await audit.record("session_ended", session.id, reason.value)
        """
        fields = {**_audit_fields(session), "reason": reason.value}
        line = "session ended id=%s user=%s reason=%s"
        # A reused refresh token means a token was stolen: worth a warning, not a note.
        level = logging.WARNING if reason is EndReason.TOKEN_REUSED else logging.INFO
        logger.log(level, line, session.id, session.user_id, reason.value, extra=fields)

    @cached_property
    def router(self) -> APIRouter:
        """``GET``/``DELETE /auth/sessions`` and ``DELETE /auth/sessions/{id}``; no prefix."""
        return user_router(self)

    async def strategy(self, connection: HTTPConnection) -> SessionStrategy[Any]:
        """A FastAPI Users authentication strategy for the request ``connection``.

        An async FastAPI dependency (no threadpool hop): pass the method itself as
        ``get_strategy`` and FastAPI hands it each request. Logins through FastAPI Users'
        own routes then create sessions (recording the request's user agent and IP),
        logouts end them, ``/auth/sessions`` lists them, and a request that
        ``BearerAuthMiddleware`` resolved is never looked up again:

            AuthenticationBackend(
                name="session",
                transport=BearerTransport(tokenUrl="auth/login"),
                get_strategy=manager.strategy,
            )
        """
        return SessionStrategy(self, connection)

    def transport(self, inner: TransportLike) -> BearerRefreshTransport | CookieRefreshTransport:
        """FastAPI Users' ``inner`` transport, whose logins also hand out the refresh token.

        With refresh tokens on, a ``BearerTransport`` login answers ``access_token``,
        ``token_type``, ``expires_in`` and ``refresh_token``; a ``CookieTransport`` login
        also sets the HttpOnly refresh cookie, for the path of ``POST /refresh`` only (the
        manager's ``cookie=`` settings, or else the transport's own name, ``Secure`` and
        ``SameSite``), and its logout clears it. With them off it answers as ``inner``:

            AuthenticationBackend(
                name="session",
                transport=manager.transport(BearerTransport(tokenUrl="auth/login")),
                get_strategy=manager.strategy,
            )
        """
        name = getattr(inner, "cookie_name", None)
        if name is None:
            return BearerRefreshTransport(inner, None)
        if self.refresh_cookie is None:  # POST /refresh reads and renews it by these settings
            samesite = getattr(inner, "cookie_samesite", "lax")
            self.refresh_cookie = SessionCookie(
                name,
                samesite="strict" if samesite == "strict" else "lax",
                secure=getattr(inner, "cookie_secure", None),
            )
        return CookieRefreshTransport(inner, self.refresh_cookie)

    def get_reauthenticate_router(self, get_user_manager: Callable[..., Any]) -> APIRouter:
        """``POST /reauthenticate`` (mount with ``prefix="/auth/sessions"``): the caller
        sends ``{"password": "..."}``; the user manager that ``get_user_manager`` (FastAPI
        Users' dependency) gives checks it with its own ``authenticate``.

        204: the caller's session counts as just authenticated. 400
        ``REAUTHENTICATION_BAD_CREDENTIALS``: wrong password, nothing changed. 429
        ``REAUTHENTICATION_RATE_LIMITED`` with ``Retry-After``: too many wrong ones for
        this session lately. 403 ``SESSION_NOT_CURRENT``: a ``session_id`` that is not
        the caller's (only the session that proves it is re-authenticated).
        """
        return reauthenticate_router(self, get_user_manager)

    def get_admin_router(self, is_admin: AdminPredicate) -> APIRouter:
        """Routes for admins over any user's sessions; ``is_admin(session)`` decides who."""
        return admin_router(self, is_admin)

    async def _store_new(self, session: S, build: Callable[[], S]) -> S:
        evicted: list[Session] = []
        try:
            session = await self._admit(session, build, evicted)
        except BaseException:
            await self._report(None, evicted)
            raise
        await self._report(session, evicted)
        return session

    async def _admit(self, session: S, build: Callable[[], S], evicted: list[Session]) -> S:
        limit, policy = self.max_sessions_per_user, self.limit_policy
        return await self._cap.admit(session, build, evicted, limit=limit, policy=policy)

    async def _report(self, created: Session | None, evicted: Sequence[Session]) -> None:
        """The hooks of one creation: the new session's, then those it evicted."""
        if created is not None:
            await self._notify(self.on_after_create, created)
        await self._ended(evicted, EndReason.EVICTED)

    async def _ended(self, sessions: Sequence[Session], reason: EndReason) -> None:
        for session in sessions:
            await self._notify(self.on_after_end, session, reason)

    async def _notify(self, hook: Callable[..., Awaitable[None]], *args: object) -> None:
        try:
            await hook(*args)
        except Exception:
            logger.exception("session hook %s failed; the change it reports stands", hook.__name__)


def _rule(max_age: timedelta | float, name: str) -> RecentAuthentication:
    try:
        return RecentAuthentication(max_age)
    except ConfigurationError as exc:  # name the setting the caller passed
        raise ConfigurationError(str(exc).replace("max_age", name, 1)) from None


def _audit_fields(session: Session) -> dict[str, str]:
    # Ids only: never the token (a credential) nor its digest (the store's key for it).
    return {"session_id": str(session.id), "user_id": str(session.user_id)}
