from starlette.applications import Starlette
from starlette.authentication import requires
from starlette.middleware import Middleware
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from asgi_kit import BearerAuthMiddleware, InMemorySessionDatabase

store = InMemorySessionDatabase()  # or SQLite, PostgreSQL, Redis: one line each


@requires("authenticated")
async def me(request):
    return PlainTextResponse(f"hello {request.user.identity}")


app = Starlette(
    routes=[Route("/me", me)],
    middleware=[Middleware(BearerAuthMiddleware, session_db=store)],
)
