"""The asgi-kit demo: log in, see your sessions, revoke devices, watch the file cache.

Run it with ``python3 dev.py demo`` (``uvicorn examples.demo.app:app``) and open
http://127.0.0.1:8000. Settings come from environment variables (``settings.Settings``);
``create_app(settings)`` builds an app for any of them, which is how the tests use it.
Refresh tokens are on: access tokens last ``ACCESS_TOKEN_LIFETIME`` seconds, and the page
renews them at ``POST /auth/sessions/refresh`` with its HttpOnly refresh cookie.
"Log out everywhere" asks for the password again once the session's sign-in is older than
``REVOKE_ALL_MAX_AGE`` seconds (RFC 9470 step-up, ``POST /auth/sessions/reauthenticate``).

No ``from __future__ import annotations`` here: FastAPI reads the route signatures at
run time, and they name dependencies local to the factories.
"""

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field, ValidationError

from asgi_kit import (
    BearerAuthMiddleware,
    ErrorCode,
    Session,
    SessionCookie,
    SessionDatabase,
    StoreUnavailableError,
    expires_in,
    from_other_origin,
    session_database_from_url,
    store_unavailable_handler,
)
from fastapi_users.extensions.session_manager import SessionManager

from .accounts import DEMO_PASSWORD, Account, Accounts, AccountsUserManager
from .files import FileCache, files_router
from .page import add_page
from .settings import KeptSecret, Settings, redact, sqlite_path

_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")

#: The page's session cookie: HttpOnly and SameSite=Lax; Secure when served over https
#: (``secure=None``), so it also works on the demo's plain http://127.0.0.1:8000. The
#: refresh token has its own, ``asgi_kit_session_refresh``, sent to the refresh route only.
COOKIE = SessionCookie("asgi_kit_session")
#: Tokens must not be kept by a cache between the demo and its client (RFC 6749 5.1).
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class Credentials(BaseModel):
    """What ``POST /auth/login`` takes, as JSON or as a form."""

    username: str = Field(min_length=1, max_length=150)
    password: str = Field(min_length=1, max_length=1024)


class UserOut(BaseModel):
    """A demo account as the API shows it."""

    id: UUID
    username: str
    is_admin: bool

    @classmethod
    def of(cls, account: Account) -> "UserOut":
        """Describe ``account``."""
        return cls(id=account.id, username=account.username, is_admin=account.is_admin)


class LoginOut(BaseModel):
    """A new session: its tokens (RFC 6749 section 5.1), its id and who it belongs to."""

    access_token: str
    token_type: str = "bearer"
    expires_in: int = Field(description="seconds until the access token expires")
    refresh_token: str
    session_id: UUID
    user: UserOut


class MeOut(BaseModel):
    """The caller of ``GET /me``: their account and the session they called with."""

    user_id: str
    username: str | None
    is_admin: bool
    session_id: UUID
    expires_in: int = Field(description="seconds until this request's access token expires")


async def read_credentials(request: Request) -> Credentials:
    """Parse the login body, JSON or form, into ``Credentials`` (422 when it is not one)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    data: Any
    try:
        if content_type in _FORM_TYPES:
            data = dict((await request.form()).items())
        else:
            data = await request.json()
        return Credentials.model_validate(data)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False)) from None
    except ValueError:  # not JSON at all
        raise HTTPException(422, "INVALID_LOGIN_BODY") from None


_LOGIN_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            media: {"schema": {"$ref": "#/components/schemas/Credentials"}}
            for media in ("application/json", "application/x-www-form-urlencoded")
        },
    }
}


def auth_router(manager: SessionManager, accounts: Accounts) -> APIRouter:
    """``POST /auth/login``, ``POST /auth/logout``, ``GET /me`` and ``GET /admin/accounts``."""
    router = APIRouter(tags=["demo"])
    Current = Annotated[Session, Depends(manager.current_session)]

    def admin(session: Current) -> Session:
        if not is_admin(accounts)(session):
            raise HTTPException(403, "NOT_AN_ADMIN")
        return session

    @router.post(
        "/auth/login",
        response_model=LoginOut,
        summary="Exchange a username and password for a session (cookies and tokens)",
        responses={
            401: {"description": "LOGIN_BAD_CREDENTIALS"},
            403: {"description": "CSRF_FAILED: sent by a page of another origin"},
        },
        openapi_extra=_LOGIN_BODY,
    )
    async def login(request: Request, response: Response) -> LoginOut:
        # No cookie authenticates a login: refuse one a page elsewhere made (login CSRF).
        if from_other_origin(request):
            raise HTTPException(403, ErrorCode.CSRF_FAILED)
        credentials = await read_credentials(request)
        account = await accounts.verify_in_thread(credentials.username, credentials.password)
        if account is None:
            raise HTTPException(401, "LOGIN_BAD_CREDENTIALS", {"WWW-Authenticate": "Bearer"})
        session = await manager.login(request, account.id)
        # The page uses the HttpOnly cookies (the session's, and the refresh token's for
        # POST /auth/sessions/refresh only); API clients use the tokens in the body.
        manager.set_cookie(response, session, request)
        response.headers.update(_NO_STORE)
        return LoginOut(
            access_token=session.token,
            expires_in=expires_in(session),
            refresh_token=session.refresh_token,
            session_id=session.id,
            user=UserOut.of(account),
        )

    @router.post(
        "/auth/logout",
        status_code=204,
        summary="End the caller's session and clear its cookies",
    )
    async def logout(request: Request, response: Response, session: Current) -> None:
        await manager.revoke_session(session.id)
        manager.clear_cookie(response, request)

    @router.get("/me", response_model=MeOut, summary="Who am I, and with which session?")
    async def me(session: Current) -> MeOut:
        account = accounts.of_user(session.user_id)
        return MeOut(
            user_id=str(session.user_id),
            username=account.username if account else None,
            is_admin=bool(account and account.is_admin),
            session_id=session.id,
            expires_in=expires_in(session),
        )

    @router.get(
        "/admin/accounts",
        response_model=list[UserOut],
        summary="The demo accounts (admins only)",
        dependencies=[Depends(admin)],
    )
    async def list_accounts() -> list[UserOut]:
        return [UserOut.of(a) for a in accounts.by_name.values()]

    return router


def is_admin(accounts: Accounts) -> Callable[[Session], bool]:
    """The admin router's predicate: the session belongs to an admin account (alice)."""

    def check(session: Session) -> bool:
        account = accounts.of_user(session.user_id)
        return account is not None and account.is_admin

    return check


def mebibytes(size: int | None) -> str:
    """``16 MiB`` for 16 * 2**20; ``no byte limit`` for None."""
    return "no byte limit" if size is None else f"{size / 2**20:g} MiB"


def banner(
    settings: Settings, accounts: Accounts, files: FileCache, kept: KeptSecret | None
) -> str:
    """The start-up message: where to go, how to log in, where things are kept."""
    names = [
        f"{a.username} / {DEMO_PASSWORD}" + ("   (admin)" if a.is_admin else "")
        for a in accounts.by_name.values()
    ]
    limits = f"at most {files.max_entries} files, {mebibytes(files.max_bytes)}"
    tokens = (
        f"access {settings.access_token_lifetime:g} s, then refreshed"
        f" (reuse interval {settings.refresh_reuse_interval:g} s)"
    )
    lines = [
        f"asgi-kit demo: open {settings.url}",
        f"  accounts       {names[0]}",
        *(f"                 {name}" for name in names[1:]),
        f"  session store  {redact(settings.session_store_url)}",
        f"  files          {files.base}",
        f"  file cache     {files.cache_dir} ({limits})",
        f"  tokens         {tokens}",
        f"  refresh secret {'REFRESH_SECRET' if kept is None else kept.path}",
        f"  step-up        log out everywhere: password again {settings.revoke_all_max_age:g} s"
        " after sign-in",
        f"  API docs       {settings.url}/docs",
    ]
    rule = "-" * max(len(line) for line in lines)
    return "\n".join([rule, *lines, rule])


def lifespan(
    settings: Settings,
    store: SessionDatabase,
    accounts: Accounts,
    files: FileCache,
    kept: KeptSecret | None,
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """Create the store's table (and SQLite folder) and save the refresh secret at start-up;
    close the store at shutdown."""

    @asynccontextmanager
    async def run(_app: FastAPI) -> AsyncIterator[None]:
        database = sqlite_path(settings.session_store_url)
        if database is not None:
            database.parent.mkdir(parents=True, exist_ok=True)
        try:
            if kept is not None:
                kept.save()
            create_table = getattr(store, "create_table", None)
            if create_table is not None:
                await create_table()
            print(banner(settings, accounts, files, kept), flush=True)
            yield
        finally:
            aclose = getattr(store, "aclose", None)
            if aclose is not None:
                await aclose()

    return run


def create_app(settings: Settings | None = None, accounts: Accounts | None = None) -> FastAPI:
    """Build the demo app for ``settings`` (default: ``Settings.from_env()``).

    ``accounts`` defaults to freshly hashed demo accounts; tests share one to save time.
    Without ``settings.refresh_secret``, refresh tokens are signed with the secret kept in
    ``settings.refresh_secret_file`` (made, and saved at start-up, if there is none yet).
    """
    settings = settings or Settings.from_env()
    accounts = accounts or Accounts()
    store = session_database_from_url(settings.session_store_url)
    kept = None if settings.refresh_secret else KeptSecret.at(Path(settings.refresh_secret_file))
    secret = settings.refresh_secret if kept is None else kept.value
    manager = SessionManager(
        session_db=store,
        lifetime=settings.session_lifetime,
        touch_interval=settings.touch_interval,
        cookie=COOKIE,
        access_token_lifetime=settings.access_token_lifetime,
        refresh_reuse_interval=settings.refresh_reuse_interval,
        refresh_secret=secret,
        revoke_all_max_age=settings.revoke_all_max_age,
    )
    users = AccountsUserManager(accounts)

    def get_user_manager() -> AccountsUserManager:
        return users

    files = FileCache(
        settings.files_root,
        settings.files_cache_dir,
        max_entries=settings.files_cache_max_entries,
        max_bytes=settings.files_cache_max_bytes,
    )
    app = FastAPI(
        title="asgi-kit demo",
        summary="Sessions you can see and revoke, and a bounded file cache.",
        lifespan=lifespan(settings, store, accounts, files, kept),
    )
    # The manager, not the store: store and touch interval are configured once (above).
    app.add_middleware(BearerAuthMiddleware, session_db=manager)
    # A login (or any route) while the store is down: 503 JSON with Retry-After, not a 500.
    app.add_exception_handler(StoreUnavailableError, store_unavailable_handler)
    app.include_router(auth_router(manager, accounts))
    app.include_router(manager.router, prefix="/auth/sessions")
    app.include_router(manager.get_reauthenticate_router(get_user_manager), prefix="/auth/sessions")
    app.include_router(manager.get_admin_router(is_admin(accounts)), prefix="/admin/sessions")
    app.include_router(files_router(files))
    add_page(app)
    app.state.settings = settings
    app.state.manager = manager
    app.state.accounts = accounts
    app.state.files = files
    return app


app = create_app()
