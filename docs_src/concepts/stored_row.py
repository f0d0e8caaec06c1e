from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import select

from asgi_kit import Session, SQLAlchemySessionDatabase, generate_token, token_digest


async def main(url: str = "sqlite:///sessions.sqlite3") -> tuple[dict[str, Any], Session | None]:
    store = SQLAlchemySessionDatabase(url)
    await store.create_table()
    token = generate_token()  # what the client gets, once
    await store.create(
        Session(
            user_id="alice",
            token=token,
            user_agent="curl/8.5.0\r\nX-Injected: 1",  # control characters are dropped
            ip_address="::ffff:203.0.113.7",  # kept as its IPv4 address
        )
    )
    table = store.table
    async with store.engine.connect() as conn:
        query = select(table).where(table.c.token_digest == token_digest(token))
        row = dict((await conn.execute(query)).one()._mapping)
    print(row)  # token_digest is SHA-256(token); the token itself is nowhere
    read_back = await store.get_by_token_digest(token_digest(token))
    print(repr(read_back))  # no token, no digest
    await store.aclose()
    return row, read_back


if __name__ == "__main__":
    asyncio.run(main())
