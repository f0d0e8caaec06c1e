from __future__ import annotations

import asyncio
import logging

from asgi_kit import Session, generate_token
from fastapi_users.extensions.session_manager import SessionManager

logging.basicConfig(level=logging.INFO, format="%(name)s %(message)s")
manager = SessionManager()


async def main() -> Session:
    session = await manager.create_session("alice", generate_token())
    await manager.revoke_session(session.id)
    # asgi_kit.sessions session created id=... user=alice
    # asgi_kit.sessions session ended id=... user=alice reason=logout
    return session


if __name__ == "__main__":
    asyncio.run(main())
