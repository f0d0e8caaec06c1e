from fastapi.testclient import TestClient

from docs_src.tutorial_fastapi.own_routes import app, manager


def test_me() -> None:
    manager.create_session("alice", "a-test-token")  # in memory: no await needed
    with TestClient(app) as client:
        reply = client.get("/me", headers={"Authorization": "Bearer a-test-token"})
    assert reply.json()["user_id"] == "alice"
