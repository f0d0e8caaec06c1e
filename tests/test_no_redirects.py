"""Trailing-slash forms of the session routes: a JSON 404 and nothing changed, never a redirect."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from fastapi_users.extensions.session_manager import SessionManager

from .conftest import bearer

PATHS = [
    "/auth/sessions/",
    "/auth/sessions//",
    "/auth/sessions/{sid}/",
    "/admin/sessions/",
    "/admin/sessions/users/",
    "/admin/sessions/users/user1/",
    "/admin/sessions/{sid}/",
]


@pytest.mark.parametrize("redirect_slashes", [True, False])
@pytest.mark.parametrize("method", ["GET", "DELETE", "POST"])
@pytest.mark.parametrize("path", PATHS)
def test_trailing_slash_forms_are_a_json_404_and_end_nothing(
    redirect_slashes: bool, method: str, path: str
) -> None:
    manager = SessionManager()
    app = FastAPI(redirect_slashes=redirect_slashes)
    app.include_router(manager.router, prefix="/auth/sessions")
    admin = manager.get_admin_router(lambda session: session.user_id == "root")
    app.include_router(admin, prefix="/admin/sessions")
    root = manager.create_session("root", "root-token")
    user = manager.create_session("user1", "user-token")
    with TestClient(app, follow_redirects=False) as client:
        for token in ("root-token", "user-token"):
            r = client.request(method, path.format(sid=user.id), headers=bearer(token))
            assert r.status_code in (403, 404, 405), (token, r.status_code, r.headers)
            assert "location" not in r.headers
            assert "detail" in r.json()
        for token in ("root-token", "user-token"):  # nobody was logged out
            assert client.get("/auth/sessions", headers=bearer(token)).status_code == 200
    assert root.is_active()
