"""The documented upgrade (docs/upgrading.md) of a table made by the previous schema.

The previous ``session_table`` declared ``user_id`` as SQLAlchemy's ``Uuid``: native ``uuid``
on PostgreSQL, ``CHAR(32)`` of hex digits on SQLite. Each test makes such a table, writes
sessions as the previous store did, runs the statements exactly as the document shows them
(read from its fenced ``sql`` blocks, so the two cannot drift apart) and reads everything
back through today's store.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    MetaData,
    String,
    Table,
    Uuid,
    insert,
    select,
    text,
    type_coerce,
)
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from asgi_kit import Session, SQLAlchemySessionDatabase, generate_token, utcnow

from .servers import POSTGRES_ADDRESS, POSTGRES_URL, require, unique_name

pytestmark = pytest.mark.anyio

UPGRADING = Path(__file__).resolve().parent.parent / "docs" / "upgrading.md"
DEFAULT_TABLE = "asgi_kit_sessions"


def documented_statements(server: str, table: str) -> list[str]:
    """The ``sql`` blocks of docs/upgrading.md whose first line is ``-- <server>``."""
    blocks = re.findall(r"^```sql\n(.*?)^```", UPGRADING.read_text(), re.MULTILINE | re.DOTALL)
    mine = [b for b in blocks if b.splitlines()[0].strip() == f"-- {server}"]
    assert mine, f"docs/upgrading.md has no sql block for {server}"
    return [b.replace(DEFAULT_TABLE, table) for b in mine]


def previous_table(name: str) -> Table:
    """The table as the previous ``session_table`` defined it (``user_id`` a ``Uuid``).

    A frozen copy on purpose, not derived from today's ``session_table``: the upgrade
    starts from what the previous version made, whatever the schema becomes later.
    """
    return Table(
        name,
        MetaData(),
        Column("id", Uuid, primary_key=True),
        Column("token_digest", String(64), nullable=False),
        Column("user_id", Uuid, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("expires_at", DateTime(timezone=True)),
        Column("idle_timeout_us", BigInteger),
        Column("last_seen_at", DateTime(timezone=True), nullable=False),
        Column("deadline", DateTime(timezone=True)),
        Column("user_agent", String(512)),
        Column("ip_address", String(45)),
        Index(f"ix_{name}_token_digest", "token_digest", unique=True),
        Index(f"ix_{name}_user_id", "user_id"),
        Index(f"ix_{name}_deadline", "deadline"),
    )


def previous_row(session: Session) -> dict[str, Any]:
    """The row the previous store wrote: the user id as a ``UUID``, for the ``Uuid`` column."""
    idle = session.idle_timeout
    return {
        "id": session.id,
        "token_digest": session.token_digest,
        "user_id": session.user_id,
        "created_at": session.created_at,
        "expires_at": session.expires_at,
        "idle_timeout_us": None if idle is None else idle // timedelta(microseconds=1),
        "last_seen_at": session.last_seen_at,
        "deadline": session.deadline,
        "user_agent": session.user_agent,
        "ip_address": session.ip_address,
    }


@pytest.fixture(params=["SQLite", "PostgreSQL"])
async def old_table(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[str, AsyncEngine, Table]]:
    """(server, engine, table): an empty table of the previous schema; dropped afterwards."""
    server: str = request.param
    if server == "PostgreSQL":
        require(server, POSTGRES_ADDRESS)
        engine = create_async_engine(POSTGRES_URL)
        table = previous_table(unique_name("upgrade"))
    else:
        engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'old.sqlite3'}")
        table = previous_table(DEFAULT_TABLE)
    async with engine.begin() as conn:
        await conn.run_sync(table.create)
    try:
        yield server, engine, table
    finally:
        async with engine.begin() as conn:
            await conn.run_sync(table.drop)
        await engine.dispose()


async def test_the_documented_upgrade_keeps_every_session_and_its_user(
    old_table: tuple[str, AsyncEngine, Table],
) -> None:
    server, engine, table = old_table
    users = [uuid.uuid4() for _ in range(3)]
    start = utcnow()
    old = [
        Session(
            user_id=user,
            token=generate_token(),
            created_at=start + timedelta(seconds=i),
            expires_at=start + timedelta(days=1),
            idle_timeout=timedelta(hours=2),
            user_agent="Firefox",
        )
        for i, user in enumerate(users * 2)
    ]
    async with engine.begin() as conn:
        await conn.execute(insert(table), [previous_row(s) for s in old])
        raw = select(type_coerce(table.c.user_id, String))  # the column as the driver has it
        stored = (await conn.execute(raw)).scalars()
        # As the previous schema kept them: 32 hex digits on SQLite, native uuid on PostgreSQL.
        expected = {u.hex if server == "SQLite" else u for u in users}
        assert set(stored) == expected

    for _ in range(2):  # a second run changes nothing
        async with engine.begin() as conn:
            for statement in documented_statements(server, table.name):
                await conn.execute(text(statement))

    store = SQLAlchemySessionDatabase(engine, table_name=table.name)
    await store.create_table()  # as every start-up runs it: the table and its rows stay
    for s in old:
        for got in (await store.get(s.id), await store.get_by_token_digest(s.token_digest)):
            assert got == s
            assert got is not None
            assert type(got.user_id) is uuid.UUID
    for user in users:
        mine = sorted((s for s in old if s.user_id == user), key=lambda s: s.created_at)
        assert await store.list_for_user(user) == mine[::-1]
    beside = [Session(user_id=i, token=generate_token()) for i in ("auth0|5f7c8e", "🙂" * 255)]
    for s in beside:
        await store.create(s)
        assert await store.list_for_user(s.user_id) == [s]
        assert await store.get_by_token_digest(s.token_digest) == s
    assert len(await store.delete_for_user(users[0])) == 2
    assert len(await store.list_for_user(users[1])) == 2
    await store.aclose()
