"""The documented upgrades (docs/upgrading.md) of stores made by previous versions.

Each SQL test makes a table exactly as a previous ``session_table`` defined it (a frozen
copy), writes sessions as that version's store did, runs the statements exactly as the
document shows them (read from its fenced ``sql`` blocks, picked by their first line
``-- <server>: <change>``, so the two cannot drift apart) and reads everything back through
today's store. The document's Alembic migration runs too, when alembic is installed (it is
not a dependency). One Redis test checks the document's claim that Redis needs no upgrade.
"""

from __future__ import annotations

import importlib.util
import json
import re
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import redis.asyncio as aioredis
from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    DateTime,
    Index,
    MetaData,
    String,
    Table,
    Uuid,
    insert,
    inspect,
    select,
    text,
    type_coerce,
    update,
)
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.types import TypeEngine

from asgi_kit import (
    RedisSessionDatabase,
    Session,
    SQLAlchemySessionDatabase,
    TokenRefresher,
    UserId,
    generate_token,
    session_table,
    utcnow,
)

from .servers import (
    POSTGRES_ADDRESS,
    POSTGRES_URL,
    REDIS_ADDRESS,
    REDIS_URL,
    missing,
    require,
    unique_name,
)

pytestmark = pytest.mark.anyio

UPGRADING = Path(__file__).resolve().parent.parent / "docs" / "upgrading.md"
DEFAULT_TABLE = "asgi_kit_sessions"
#: The changes, as the first lines of their ``sql`` blocks name them.
OPAQUE_USER_IDS = "opaque user ids"  # issue 11
REFRESH_TOKENS = "refresh tokens"  # issue 22
#: The fields refresh tokens (issue 22) added to every store.
REFRESH_FIELDS = (
    "refresh_digest",
    "refresh_generation",
    "access_expires_at",
    "refreshed_at",
    "rotation_seal",
)


def documented_blocks(language: str, first_line: str) -> list[str]:
    """The fenced ``language`` blocks of docs/upgrading.md that start with ``first_line``."""
    pattern = rf"^```{language}\n(.*?)^```"
    blocks = re.findall(pattern, UPGRADING.read_text(), re.MULTILINE | re.DOTALL)
    return [b for b in blocks if b.splitlines()[0].strip() == first_line]


def documented_statements(server: str, table: str, change: str) -> list[str]:
    """The statements of the ``sql`` block ``-- <server>: <change>``, one by one, on ``table``.

    One by one because SQLite executes one statement per call.
    """
    blocks = documented_blocks("sql", f"-- {server}: {change}")
    assert len(blocks) == 1, f"docs/upgrading.md needs one sql block for {server}: {change}"
    statements = re.split(r";\s*$", blocks[0].split("\n", 1)[1], flags=re.MULTILINE)
    return [s.strip().replace(DEFAULT_TABLE, table) for s in statements if s.strip()]


def documented_migration(table: str) -> dict[str, Any]:
    """The namespace of the refresh-token Alembic migration in docs/upgrading.md, on ``table``."""
    blocks = documented_blocks("python", '"""asgi-kit sessions: refresh tokens."""')
    assert len(blocks) == 1, "docs/upgrading.md needs one Alembic migration for refresh tokens"
    namespace: dict[str, Any] = {}
    exec(blocks[0].replace(DEFAULT_TABLE, table), namespace)  # noqa: S102 - our own document
    return namespace


async def upgrade(engine: AsyncEngine, server: str, table: str, change: str) -> None:
    """Run the documented statements of ``change`` in one transaction."""
    async with engine.begin() as conn:
        for statement in documented_statements(server, table, change):
            await conn.execute(text(statement))


def frozen_table(name: str, user_id_type: TypeEngine[Any]) -> Table:
    """The table as ``session_table`` defined it before refresh tokens, but for the user id.

    A frozen copy on purpose, not derived from today's ``session_table``: an upgrade starts
    from what a previous version made, whatever the schema becomes later.
    """
    return Table(
        name,
        MetaData(),
        Column("id", Uuid, primary_key=True),
        Column("token_digest", String(64), nullable=False),
        Column("user_id", user_id_type, nullable=False),
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


def table_before_issue_11(name: str) -> Table:
    """The table before user ids became opaque: ``user_id`` a ``Uuid``."""
    return frozen_table(name, Uuid())


def table_before_issue_22(name: str) -> Table:
    """The table before refresh tokens: ``user_id`` text, no refresh columns."""
    return frozen_table(name, String(255))


def row_before_issue_22(session: Session) -> dict[str, Any]:
    """The row the store wrote before refresh tokens (the user id as text)."""
    idle = session.idle_timeout
    return {
        "id": session.id,
        "token_digest": session.token_digest,
        "user_id": str(session.user_id),
        "created_at": session.created_at,
        "expires_at": session.expires_at,
        "idle_timeout_us": None if idle is None else idle // timedelta(microseconds=1),
        "last_seen_at": session.last_seen_at,
        "deadline": session.deadline,
        "user_agent": session.user_agent,
        "ip_address": session.ip_address,
    }


def row_before_issue_11(session: Session) -> dict[str, Any]:
    """The row the store wrote before opaque user ids: the id a ``UUID``, for ``Uuid``."""
    return {**row_before_issue_22(session), "user_id": session.user_id}


def column_layout(conn: Connection, table: str) -> list[tuple[str, str, bool]]:
    """(name, type as this server declares it, nullable) of each column of ``table``."""
    columns = inspect(conn).get_columns(table)
    return [(c["name"], c["type"].compile(dialect=conn.dialect), c["nullable"]) for c in columns]


def declared_layout(table: Table, engine: AsyncEngine) -> list[tuple[str, str, bool]]:
    """``column_layout`` of ``table`` as its definition would create it on ``engine``."""
    dialect = engine.dialect
    return [(c.name, c.type.compile(dialect=dialect), bool(c.nullable)) for c in table.columns]


def old_sessions(users: Sequence[UserId]) -> list[Session]:
    """Two sessions of each user, created a second apart, as a previous version made them."""
    start = utcnow()
    return [
        Session(
            user_id=user,
            token=generate_token(),
            created_at=start + timedelta(seconds=i),
            expires_at=start + timedelta(days=1),
            idle_timeout=timedelta(hours=2),
            user_agent="Firefox",
            ip_address="203.0.113.7",
        )
        for i, user in enumerate([*users, *users])
    ]


async def assert_old_sessions_read_back(
    store: SQLAlchemySessionDatabase, old: list[Session]
) -> None:
    """Every session of ``old`` resolves unchanged, without a refresh token, and lists."""
    for s in old:
        for got in (await store.get(s.id), await store.get_by_token_digest(s.token_digest)):
            assert got == s  # the refresh fields too: none
            assert got is not None
            assert got.refresh_digest is None
    for user in {s.user_id for s in old}:
        mine = sorted((s for s in old if s.user_id == user), key=lambda s: s.created_at)
        assert await store.list_for_user(user) == mine[::-1]


async def assert_refresh_tokens_work(store: SQLAlchemySessionDatabase, user: UserId) -> Session:
    """A new session with a refresh token is created, refreshed and read back; return it."""
    refresher = TokenRefresher(store, access_token_lifetime=300, secret="k" * 32)
    sid = uuid.uuid4()
    new = Session(
        id=sid, user_id=user, token=generate_token(), **refresher.new_tokens(sid, utcnow())
    )
    await store.create(new)
    assert await store.get_by_token_digest(new.token_digest) == new
    rotated = await refresher.refresh(new.refresh_token)
    assert (rotated.id, rotated.refresh_generation) == (sid, 1)
    assert rotated.refresh_digest not in (None, new.refresh_digest)
    assert await store.get_by_token_digest(rotated.token_digest) == rotated
    assert await store.get(sid) == rotated
    assert await store.get_by_token_digest(new.token_digest) is None  # rotated out
    return rotated


class Database(NamedTuple):
    server: str
    engine: AsyncEngine
    table_name: str


@pytest.fixture(params=["SQLite", pytest.param("PostgreSQL", marks=pytest.mark.postgres)])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """A database and a table name no one uses there; the table is dropped afterwards."""
    server: str = request.param
    if server == "PostgreSQL":
        require(server, POSTGRES_ADDRESS)
        engine = create_async_engine(POSTGRES_URL)
        name = unique_name("upgrade")
    else:
        engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'old.sqlite3'}")
        name = DEFAULT_TABLE
    try:
        yield Database(server, engine, name)
    finally:
        async with engine.begin() as conn:
            await conn.execute(text(f"DROP TABLE IF EXISTS {name}"))
        await engine.dispose()


async def create_old_table(engine: AsyncEngine, table: Table, rows: list[dict[str, Any]]) -> None:
    """Create ``table`` (a frozen previous one) and write ``rows`` into it."""
    async with engine.begin() as conn:
        await conn.run_sync(table.create)
        await conn.execute(insert(table), rows)


async def test_the_documented_upgrades_keep_every_session_and_its_user(database: Database) -> None:
    """A table from before issue 11 takes both upgrades, in order: opaque ids, refresh tokens."""
    server, engine, name = database
    table = table_before_issue_11(name)
    users = [uuid.uuid4() for _ in range(3)]
    old = old_sessions(users)
    await create_old_table(engine, table, [row_before_issue_11(s) for s in old])
    async with engine.begin() as conn:
        raw = select(type_coerce(table.c.user_id, String))  # the column as the driver has it
        stored = (await conn.execute(raw)).scalars()
        # As the previous schema kept them: 32 hex digits on SQLite, native uuid on PostgreSQL.
        expected = {u.hex if server == "SQLite" else u for u in users}
        assert set(stored) == expected

    for _ in range(2):  # a second run changes nothing
        await upgrade(engine, server, name, OPAQUE_USER_IDS)
    await upgrade(engine, server, name, REFRESH_TOKENS)

    store = SQLAlchemySessionDatabase(engine, table_name=name)
    await store.create_table()  # as every start-up runs it: the table and its rows stay
    await assert_old_sessions_read_back(store, old)
    for s in old:
        got = await store.get_by_token_digest(s.token_digest)
        assert got is not None
        assert type(got.user_id) is uuid.UUID
    beside = [Session(user_id=i, token=generate_token()) for i in ("auth0|5f7c8e", "🙂" * 255)]
    for s in beside:
        await store.create(s)
        assert await store.list_for_user(s.user_id) == [s]
        assert await store.get_by_token_digest(s.token_digest) == s
    await assert_refresh_tokens_work(store, users[2])
    assert len(await store.delete_for_user(users[0])) == 2
    assert len(await store.list_for_user(users[1])) == 2
    await store.aclose()


async def test_the_refresh_token_upgrade_keeps_every_session_and_the_previous_version_working(
    database: Database,
) -> None:
    server, engine, name = database
    table = table_before_issue_22(name)
    users: list[UserId] = [uuid.uuid4(), "auth0|5f7c8e", "42"]
    old = old_sessions(users)
    await create_old_table(engine, table, [row_before_issue_22(s) for s in old])

    await upgrade(engine, server, name, REFRESH_TOKENS)
    if server == "PostgreSQL":
        await upgrade(engine, server, name, REFRESH_TOKENS)  # IF NOT EXISTS: re-runnable
    else:  # no IF NOT EXISTS for columns, as the document says: a second run fails, harmlessly
        with pytest.raises(OperationalError, match="duplicate column name: refresh_digest"):
            await upgrade(engine, server, name, REFRESH_TOKENS)
    async with engine.connect() as conn:
        upgraded = await conn.run_sync(column_layout, name)
    # Exactly the columns, types and nullability a table made by today's version has.
    assert upgraded == declared_layout(session_table(MetaData(), name), engine)

    # The previous version on the upgraded table: it reads and writes its own columns only.
    late = Session(user_id=users[1], token=generate_token(), user_agent="Safari")
    seen = utcnow() + timedelta(minutes=1)
    touched = late.replace(token="", last_seen_at=seen)
    async with engine.begin() as conn:
        await conn.execute(insert(table), [row_before_issue_22(late)])
        at_id = table.c.id == late.id
        await conn.execute(update(table).where(at_id).values(last_seen_at=seen, deadline=None))
        rows = (await conn.execute(select(table))).all()
    written = {(s.id, s.token_digest, str(s.user_id)) for s in [*old, late]}
    assert {(r.id, r.token_digest, r.user_id) for r in rows} == written

    store = SQLAlchemySessionDatabase(engine, table=session_table(MetaData(), name))
    await store.create_table()  # as every start-up runs it: the table and its rows stay
    await assert_old_sessions_read_back(store, [*old, touched])
    await assert_refresh_tokens_work(store, users[0])
    await store.aclose()


async def test_the_documented_alembic_migration_adds_and_drops_the_columns(
    database: Database,
) -> None:
    if importlib.util.find_spec("alembic") is None:
        missing("alembic is not installed (the dev extra has it)", "pip install -e '.[dev]'")
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from alembic.operations import Operations

    _, engine, name = database
    table = table_before_issue_22(name)
    users: list[UserId] = [uuid.uuid4(), "auth0|5f7c8e"]
    old = old_sessions(users)
    await create_old_table(engine, table, [row_before_issue_22(s) for s in old])
    migration = documented_migration(name)
    today = session_table(MetaData(), name)

    def only_this_table(name_: str | None, type_: str, _parents: Any) -> bool:
        return type_ != "table" or name_ == name

    def autogenerated(conn: Connection) -> list[tuple[str, str]]:
        context = MigrationContext.configure(conn, opts={"include_name": only_this_table})
        return [(d[0], d[3].name) for d in compare_metadata(context, today.metadata)]

    def run(conn: Connection, step: str) -> None:
        with Operations.context(MigrationContext.configure(conn)):
            migration[step]()

    async with engine.begin() as conn:
        # As the document says: autogenerate finds the same five columns, nothing else.
        found = await conn.run_sync(autogenerated)
        assert sorted(found) == sorted(("add_column", f) for f in REFRESH_FIELDS)
        await conn.run_sync(run, "upgrade")
        assert await conn.run_sync(column_layout, name) == declared_layout(today, engine)

    store = SQLAlchemySessionDatabase(engine, table=today)
    await assert_old_sessions_read_back(store, old)
    refreshed = await assert_refresh_tokens_work(store, users[0])
    await store.aclose()

    async with engine.begin() as conn:
        await conn.run_sync(run, "downgrade")
        assert await conn.run_sync(column_layout, name) == declared_layout(table, engine)
        indexes = await conn.run_sync(lambda c: inspect(c).get_indexes(name))
        assert {i["name"] for i in indexes} == {i.name for i in table.indexes}
        kept = (await conn.execute(select(table.c.id))).scalars()
        assert set(kept) == {s.id for s in [*old, refreshed]}


@pytest.mark.redis
async def test_redis_sessions_written_before_refresh_tokens_read_back_without_one() -> None:
    """The document's claim: Redis needs no upgrade, records without the fields read back."""
    require("Redis", REDIS_ADDRESS)
    store = RedisSessionDatabase(REDIS_URL, key_prefix=f"test:{unique_name('upgrade')}:")
    raw = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    users: list[UserId] = [uuid.uuid4(), "auth0|5f7c8e"]
    old = [*old_sessions(users), Session(user_id=users[0], token=generate_token())]
    try:
        for s in old:  # the id key and the index entries, exactly as the previous version
            await store.create(s)
        for s in old:  # and its record: the JSON without the refresh fields
            key = f"{store.key_prefix}s2:{s.token_digest}"
            record = json.loads(await raw.get(key))
            assert set(REFRESH_FIELDS) <= record.keys()
            previous = {k: v for k, v in record.items() if k not in REFRESH_FIELDS}
            assert await raw.set(key, json.dumps(previous, separators=(",", ":")), keepttl=True)
        for s in old:
            for got in (await store.get_by_token_digest(s.token_digest), await store.get(s.id)):
                assert got == s  # the refresh fields too: none
                assert got is not None
                assert got.refresh_digest is None
        for user in users:
            mine = sorted((s for s in old if s.user_id == user), key=lambda s: s.created_at)
            assert await store.list_for_user(user) == mine[::-1]
        seen = utcnow()
        touched = await store.touch(old[0], seen)
        assert touched is not None
        assert await store.get_by_token_digest(old[0].token_digest) == touched
    finally:
        await store.clear()
        await store.aclose()
        await raw.aclose()
