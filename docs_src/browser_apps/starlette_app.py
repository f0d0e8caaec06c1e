from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from asgi_kit import BearerAuthMiddleware, SessionCookie, request_session
from fastapi_users.extensions.session_manager import SessionManager

manager = SessionManager(cookie=SessionCookie("__Host-session"))


async def login(request: Request) -> Response:
    form = await request.form()
    user_id = str(form["username"])  # after checking form["password"] against your users
    session = await manager.login(request, user_id)
    response = JSONResponse({"access_token": session.token})
    manager.set_cookie(response, session, request)
    return response


async def me(request: Request) -> Response:
    session = request_session(request)  # from the cookie, or from a Bearer header
    if session is None:
        return JSONResponse({"detail": "UNAUTHORIZED"}, 401)
    return JSONResponse({"user": request.user.display_name, "session": str(session.id)})


app = Starlette(
    routes=[Route("/auth/login", login, methods=["POST"]), Route("/me", me)],
    middleware=[Middleware(BearerAuthMiddleware, session_db=manager)],
)
