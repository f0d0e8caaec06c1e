import os

from fastapi import FastAPI, Request, Response
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from asgi_kit import BearerAuthMiddleware, SessionCookie
from fastapi_users.extensions.session_manager import SessionManager

PROXY = os.environ.get("PROXY_ADDRESS", "10.0.0.2")  # trust forwarded headers from it only
PUBLIC_ORIGIN = os.environ.get("PUBLIC_ORIGIN", "https://app.example.com")

cookie = SessionCookie("session", trusted_origins=[PUBLIC_ORIGIN])
manager = SessionManager(cookie=cookie)
app = FastAPI()
app.add_middleware(BearerAuthMiddleware, session_db=manager)
# Added last, so outermost: the client's address and scheme from X-Forwarded-For and
# X-Forwarded-Proto, as `uvicorn --proxy-headers --forwarded-allow-ips=<proxy>` does.
app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=PROXY)
app.include_router(manager.router, prefix="/auth/sessions")


@app.post("/auth/login")
async def login(request: Request, response: Response) -> dict[str, str]:
    session = await manager.login(request, "alice")  # once alice's password is checked
    manager.set_cookie(response, session, request)  # Secure: the browser used https
    return {"access_token": session.token, "token_type": "bearer"}
