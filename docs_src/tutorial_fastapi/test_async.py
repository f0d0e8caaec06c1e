import httpx2
import pytest

from docs_src.tutorial_fastapi.own_routes import app, manager


@pytest.mark.anyio
async def test_me() -> None:
    await manager.create_session("alice", "alice-token")  # works with every store
    manager.create_session("bob", "bob-token")  # in memory, no await works too
    transport = httpx2.ASGITransport(app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://test") as client:
        alice = await client.get("/me", headers={"Authorization": "Bearer alice-token"})
        bob = await client.get("/me", headers={"Authorization": "Bearer bob-token"})
    assert (alice.json()["user_id"], bob.json()["user_id"]) == ("alice", "bob")
