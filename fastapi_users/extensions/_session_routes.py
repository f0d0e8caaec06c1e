"""The /auth/sessions routers: one for every user's own sessions, one for admins.

No ``from __future__ import annotations`` here: FastAPI reads the route signatures at
run time, and they name dependencies (``Current``, ``Admin``) local to each factory.
"""

import inspect
from collections.abc import Awaitable, Callable
from typing import Annotated
from urllib.parse import quote, unquote_to_bytes
from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from starlette.convertors import Convertor, register_url_convertor

from asgi_kit import ErrorCode, InvalidUserIdError, Session, UserId, coerce_user_id

from ._events import EndReason
from ._manager import Manager
from ._refresh_route import add_refresh_route
from ._session_api import SessionRead, error_responses, parse_uuid, store_errors_as_503
from ._step_up import recent_session


class UserIdSegment(Convertor[str]):
    """A route parameter for a user id: the rest of the path, whatever its characters.

    Starlette's ``path`` stops at a newline, so an id holding a control character would
    be a 404 instead of the 422 that says what is wrong. An empty id, or a path ending in
    ``/`` (a trailing-slash form), never matches: those are answered 404 (``no_redirects``).
    """

    regex = "(?s:.*[^/])"

    def convert(self, value: str) -> str:
        """The matched text as it is (``_user_id`` reads the id itself)."""
        return value

    def to_string(self, value: str) -> str:
        """The id as a path segment."""
        return quote(value, safe="")


register_url_convertor("asgi_kit_user_id", UserIdSegment())

#: Decides whether the holder of a session is an admin (sync or async).
AdminPredicate = Callable[[Session], "bool | Awaitable[bool]"]


def user_router(manager: Manager) -> APIRouter:
    """Routes for a user's own sessions, and ``POST /refresh``; mount with
    ``prefix="/auth/sessions"``."""
    router = APIRouter(tags=["sessions"])
    Current = Annotated[Session, Depends(manager.current_session)]
    rule = manager.revoke_all_rule
    # Log out everywhere: with revoke_all_max_age, only a recently authenticated session.
    sensitive = manager.current_session
    if rule is not None:
        sensitive = recent_session(manager.current_session, rule)
    Sensitive = Annotated[Session, Depends(sensitive)]
    add_refresh_route(router, manager)

    @router.get(
        "",
        name="sessions:list",
        response_model=list[SessionRead],
        responses=error_responses(401, 503),
        summary="List my active sessions, newest first",
    )
    async def list_sessions(session: Current) -> list[SessionRead]:
        with store_errors_as_503():
            sessions = await manager.get_sessions(session.user_id)
        return [SessionRead.of(s, session) for s in sessions]

    @router.delete(
        "/{session_id}",
        name="sessions:revoke",
        status_code=204,
        response_class=Response,
        responses=error_responses(401, 403, 404, 503),
        summary="Revoke one of my sessions",
    )
    async def revoke_session(session_id: str, session: Current) -> None:
        target = await _find(manager, session_id)
        if target.user_id != session.user_id:
            raise HTTPException(403, ErrorCode.SESSION_OF_ANOTHER_USER)
        mine = target.id == session.id  # ending the session you are using is a logout
        await _revoke(manager, target.id, EndReason.LOGOUT if mine else EndReason.REVOKED_BY_USER)

    @router.delete(
        "",
        name="sessions:revoke_all",
        status_code=204,
        response_class=Response,
        responses=error_responses(401, 503),
        summary="Revoke all my sessions (log out everywhere)",
    )
    async def revoke_all_sessions(session: Sensitive, keep_current: bool = False) -> None:
        with store_errors_as_503():
            others = EndReason.REVOKED_BY_USER
            await manager.revoke_all(session.user_id, keep=(session.id,), reason=others)
            if not keep_current:  # last, so a failure above leaves the caller able to retry
                await manager.revoke_session(session.id, reason=EndReason.LOGOUT)

    no_redirects(router)
    return router


def no_redirects(router: APIRouter) -> None:
    """Answer every trailing-slash form under ``router`` with a JSON 404, changing nothing.

    Without these routes Starlette's ``redirect_slashes`` answers ``DELETE /auth/sessions/``
    (an empty id, say an unset variable in a client) with a 307 to ``/auth/sessions``, and
    a client that follows it (307 keeps the method) logs the user out everywhere.
    """

    async def not_found() -> None:
        raise HTTPException(404, ErrorCode.SESSION_NOT_FOUND)

    methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]
    for path in ("/", "/{rest:path}/"):
        router.add_api_route(path, not_found, methods=methods, include_in_schema=False)


def admin_router(manager: Manager, is_admin: AdminPredicate) -> APIRouter:
    """Routes for admins over any user's sessions; everyone else gets 403."""

    async def admin(session: Annotated[Session, Depends(manager.current_session)]) -> Session:
        verdict = is_admin(session)
        if inspect.isawaitable(verdict):
            verdict = await verdict
        if not verdict:
            raise HTTPException(403, ErrorCode.NOT_AN_ADMIN)
        return session

    Admin = Annotated[Session, Depends(admin)]
    router = APIRouter(tags=["sessions (admin)"], dependencies=[Depends(admin)])

    @router.get(
        "/users/{user_id:asgi_kit_user_id}",
        name="sessions:admin_list",
        response_model=list[SessionRead],
        responses=error_responses(401, 403, 422, 503),
        summary="List a user's active sessions",
    )
    async def list_user_sessions(
        request: Request, user_id: str, caller: Admin
    ) -> list[SessionRead]:
        with store_errors_as_503():
            sessions = await manager.get_sessions(_user_id(request, user_id))
        return [SessionRead.of(s, caller) for s in sessions]

    @router.delete(
        "/users/{user_id:asgi_kit_user_id}",
        name="sessions:admin_revoke_user",
        status_code=204,
        response_class=Response,
        responses=error_responses(401, 403, 422, 503),
        summary="Revoke all of a user's sessions",
    )
    async def revoke_user_sessions(request: Request, user_id: str) -> None:
        user = _user_id(request, user_id)
        with store_errors_as_503():
            await manager.revoke_all(user, reason=EndReason.REVOKED_BY_ADMIN)

    @router.delete(
        "/{session_id}",
        name="sessions:admin_revoke",
        status_code=204,
        response_class=Response,
        responses=error_responses(401, 403, 404, 503),
        summary="Revoke any session",
    )
    async def revoke_any_session(session_id: str) -> None:
        target = await _find(manager, session_id)
        await _revoke(manager, target.id, EndReason.REVOKED_BY_ADMIN)

    no_redirects(router)
    return router


async def _find(manager: Manager, session_id: str) -> Session:
    parsed = parse_uuid(session_id)
    with store_errors_as_503():
        target = None if parsed is None else await manager.get_session(parsed)
    if target is None:
        raise HTTPException(404, ErrorCode.SESSION_NOT_FOUND)
    return target


async def _revoke(manager: Manager, session_id: UUID, reason: EndReason) -> None:
    with store_errors_as_503():
        ended = await manager.revoke_session(session_id, reason=reason)
    if ended is None:  # revoked by someone else in the meantime
        raise HTTPException(404, ErrorCode.SESSION_NOT_FOUND)


def _user_id(request: Request, matched: str) -> UserId:
    """The user id of an admin route: its path's last segment, percent-decoded once.

    Read from the raw path when the server gives it: a decoded path cannot tell an id
    holding ``/`` (sent as ``%2F``) or ``%`` from other segments. ``matched`` (what the
    ``{user_id:path}`` route matched) serves servers that give no ``raw_path``.
    """
    raw = request.scope.get("raw_path")
    try:
        value = unquote_to_bytes(raw.rpartition(b"/")[2]).decode() if raw else matched
        return coerce_user_id(value)
    except (UnicodeDecodeError, InvalidUserIdError) as exc:
        raise HTTPException(422, ErrorCode.INVALID_USER_ID) from exc
