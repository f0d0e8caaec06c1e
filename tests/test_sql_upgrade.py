"""The documented upgrades (docs/upgrading.md) of stores made by previous versions.

Each SQL test makes a table exactly as a previous ``session_table`` defined it (a frozen
copy), writes sessions as that version's store did, runs the statements exactly as the
document shows them (read from its fenced ``sql`` blocks, picked by their first line
``-- <server>: <change>``, so the two cannot drift apart) and reads everything back through
today's store. The document's Alembic migrations (``docs_src/upgrading/``, which the page
includes verbatim) run too, when alembic is installed (it is not a dependency). A table
made two or three versions ago takes every section since, in order. The Redis tests check
the document's claim that Redis needs no upgrade.
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
    Integer,
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
    Device,
    RedisSessionDatabase,
    RefreshSecret,
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

ROOT = Path(__file__).resolve().parent.parent
UPGRADING = ROOT / "docs" / "upgrading.md"
DEFAULT_TABLE = "asgi_kit_sessions"
#: The changes, as the first lines of their ``sql`` blocks name them.
OPAQUE_USER_IDS = "opaque user ids"  # issue 11
REFRESH_TOKENS = "refresh tokens"  # issue 22
STEP_UP = "step-up and device names"  # issue 23
#: The Alembic migration of each change, as docs/upgrading.md includes it.
MIGRATIONS = {
    OPAQUE_USER_IDS: "docs_src/upgrading/alembic_issue11.py",
    REFRESH_TOKENS: "docs_src/upgrading/alembic_issue22.py",
    STEP_UP: "docs_src/upgrading/alembic_issue23.py",
}
#: The fields refresh tokens (issue 22) added to every store.
REFRESH_FIELDS = (
    "refresh_digest",
    "refresh_generation",
    "access_expires_at",
    "refreshed_at",
    "rotation_seal",
)
#: The columns step-up and device names (issue 23) added to the SQL table.
STEP_UP_FIELDS = (
    "authenticated_at",
    "device_browser",
    "device_os",
    "device_kind",
    "device_label",
)
#: The keys step-up and device names (issue 23) added to every Redis record.
STEP_UP_KEYS = ("authenticated_at", "device")
DEVICE = Device("Firefox 133", "Windows 11", "desktop", "Firefox on Windows")
SECRET = "k" * 32


def documented_blocks(first_line: str) -> list[str]:
    """The fenced ``sql`` blocks of docs/upgrading.md that start with ``first_line``."""
    blocks = re.findall(r"^```sql\n(.*?)^```", UPGRADING.read_text(), re.MULTILINE | re.DOTALL)
    return [b for b in blocks if b.splitlines()[0].strip() == first_line]


def documented_statements(server: str, table: str, change: str) -> list[str]:
    """The statements of the ``sql`` block ``-- <server>: <change>``, one by one, on ``table``.

    One by one because SQLite executes one statement per call.
    """
    blocks = documented_blocks(f"-- {server}: {change}")
    assert len(blocks) == 1, f"docs/upgrading.md needs one sql block for {server}: {change}"
    statements = re.split(r";\s*$", blocks[0].split("\n", 1)[1], flags=re.MULTILINE)
    return [s.strip().replace(DEFAULT_TABLE, table) for s in statements if s.strip()]


def documented_migration(table: str, change: str) -> dict[str, Any]:
    """The namespace of the Alembic migration of ``change`` (the file docs/upgrading.md
    includes), on ``table``."""
    path = MIGRATIONS[change]
    assert f'--8<-- "{path}"' in UPGRADING.read_text(), f"docs/upgrading.md must include {path}"
    source = (ROOT / path).read_text(encoding="utf-8")
    namespace: dict[str, Any] = {}
    exec(source.replace(DEFAULT_TABLE, table), namespace)  # noqa: S102 - our own document
    return namespace


async def upgrade(engine: AsyncEngine, server: str, table: str, change: str) -> None:
    """Run the documented statements of ``change`` in one transaction."""
    async with engine.begin() as conn:
        for statement in documented_statements(server, table, change):
            await conn.execute(text(statement))


async def upgrade_twice(
    engine: AsyncEngine, server: str, table: str, change: str, first_column: str
) -> None:
    """Run ``change``'s statements, then again: PostgreSQL's are re-runnable (IF NOT EXISTS);
    SQLite has no IF NOT EXISTS for columns, so, as the document says, a second run fails
    on the first new column and changes nothing."""
    await upgrade(engine, server, table, change)
    if server == "PostgreSQL":
        await upgrade(engine, server, table, change)
    else:
        with pytest.raises(OperationalError, match=f"duplicate column name: {first_column}"):
            await upgrade(engine, server, table, change)


def frozen_table(
    name: str, user_id_type: TypeEngine[Any], later: Sequence[Column[Any]] = ()
) -> Table:
    """The table as ``session_table`` defined it before refresh tokens, but for the user id,
    with the ``later`` columns after ``ip_address``.

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
        *later,
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


def table_before_issue_23(name: str) -> Table:
    """The table before step-up and device names: as refresh tokens (issue 22) left it."""
    return frozen_table(
        name,
        String(255),
        [
            Column("refresh_digest", String(64)),
            Column("refresh_generation", Integer),
            Column("access_expires_at", DateTime(timezone=True)),
            Column("refreshed_at", DateTime(timezone=True)),
            Column("rotation_seal", String(255)),
        ],
    )


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


def row_before_issue_23(session: Session) -> dict[str, Any]:
    """The row the store wrote before step-up and device names (with its refresh fields)."""
    return {
        **row_before_issue_22(session),
        "refresh_digest": session.refresh_digest,
        "refresh_generation": session.refresh_generation if session.refresh_digest else None,
        "access_expires_at": session.access_expires_at,
        "refreshed_at": session.refreshed_at,
        "rotation_seal": session.rotation_seal,
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
    """Every session of ``old`` resolves unchanged, without a refresh token, authenticated
    at its login and without a device, and lists."""
    for s in old:
        for got in (await store.get(s.id), await store.get_by_token_digest(s.token_digest)):
            assert got == s  # the refresh fields too: none
            assert got is not None
            assert got.refresh_digest is None
            assert (got.authenticated_at, got.device) == (got.created_at, None)
    for user in {s.user_id for s in old}:
        mine = sorted((s for s in old if s.user_id == user), key=lambda s: s.created_at)
        assert await store.list_for_user(user) == mine[::-1]


async def assert_refresh_tokens_work(store: SQLAlchemySessionDatabase, user: UserId) -> Session:
    """A new session with a refresh token is created, refreshed and read back; return it."""
    refresher = TokenRefresher(store, access_token_lifetime=300, secret=SECRET)
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


async def assert_step_up_works(store: SQLAlchemySessionDatabase, old: list[Session]) -> Session:
    """A re-authentication of the first session of ``old`` (all of one user) moves it alone,
    and a new session keeps its authentication time and device; return the new one."""
    first, *siblings = old
    user = first.user_id
    assert all(s.user_id == user for s in siblings)
    at = utcnow()
    recorded = await store.record_authentication(first.id, at)
    assert recorded == first.replace(authenticated_at=at)
    assert await store.get(first.id) == recorded
    for s in siblings:
        assert await store.get(s.id) == s  # another device of the same user: not moved
    assert await store.record_authentication(uuid.uuid4(), at) is None
    new = Session(
        user_id=user,
        token=generate_token(),
        created_at=at - timedelta(minutes=1),
        authenticated_at=at - timedelta(seconds=5),
        device=DEVICE,
        user_agent="Firefox",
    )
    await store.create(new)
    assert await store.get_by_token_digest(new.token_digest) == new
    assert await store.get(new.id) == new
    listed = sorted([recorded, *siblings, new], key=lambda s: s.created_at, reverse=True)
    assert await store.list_for_user(user) == listed
    return new


def require_alembic() -> None:
    """Skip (or fail under CI) unless alembic is installed (it is not a dependency)."""
    if importlib.util.find_spec("alembic") is None:
        missing("alembic is not installed (the dev extra has it)", "pip install -e '.[dev]'")


def autogenerated(conn: Connection, table: Table) -> list[tuple[str, str]]:
    """What ``alembic revision --autogenerate`` finds between the database and ``table``'s
    definition, for that table only: (operation, column) of each difference."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    def only_this_table(name: str | None, type_: str, _parents: Any) -> bool:
        return type_ != "table" or name == table.name

    context = MigrationContext.configure(conn, opts={"include_name": only_this_table})
    return [_difference(d) for d in compare_metadata(context, table.metadata)]


def _difference(diff: Any) -> tuple[str, str]:
    if isinstance(diff, tuple) and diff[0] in ("add_column", "remove_column"):
        return diff[0], diff[3].name
    return "other", repr(diff)  # a changed type, an index...: shown whole


def run_migration(conn: Connection, migration: dict[str, Any], step: str) -> None:
    """Run ``migration``'s ``step`` ("upgrade" or "downgrade") on ``conn``, as alembic does."""
    from alembic.migration import MigrationContext
    from alembic.operations import Operations

    with Operations.context(MigrationContext.configure(conn)):
        migration[step]()


def new_refresh_session(user: UserId, **fields: Any) -> Session:
    """A session with a refresh token, as the previous version's login made it."""
    sid = uuid.uuid4()
    refresh = RefreshSecret(SECRET).mint(sid, 0)
    expires = utcnow() + timedelta(minutes=5)
    return Session(
        id=sid,
        user_id=user,
        token=generate_token(),
        refresh_token=refresh,
        access_expires_at=expires,
        **fields,
    )


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
    """A table from before issue 11 takes every upgrade, in order: opaque ids, refresh tokens,
    step-up and device names."""
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
    await upgrade(engine, server, name, STEP_UP)

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
    await assert_step_up_works(store, [s for s in old if s.user_id == users[1]])
    await store.aclose()


async def test_the_refresh_token_upgrade_keeps_every_session_and_the_previous_version_working(
    database: Database,
) -> None:
    """A table from before refresh tokens (two versions ago) takes the refresh-token section,
    where the version before it keeps working, then the step-up section: both in order."""
    server, engine, name = database
    table = table_before_issue_22(name)
    users: list[UserId] = [uuid.uuid4(), "auth0|5f7c8e", "42"]
    old = old_sessions(users)
    await create_old_table(engine, table, [row_before_issue_22(s) for s in old])

    await upgrade_twice(engine, server, name, REFRESH_TOKENS, "refresh_digest")
    async with engine.connect() as conn:
        upgraded = await conn.run_sync(column_layout, name)
    # Exactly the columns, types and nullability a table made by that version has.
    assert upgraded == declared_layout(table_before_issue_23(name), engine)

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

    await upgrade(engine, server, name, STEP_UP)  # then the next section
    async with engine.connect() as conn:
        upgraded = await conn.run_sync(column_layout, name)
    assert upgraded == declared_layout(session_table(MetaData(), name), engine)

    store = SQLAlchemySessionDatabase(engine, table=session_table(MetaData(), name))
    await store.create_table()  # as every start-up runs it: the table and its rows stay
    await assert_old_sessions_read_back(store, [*old, touched])
    await assert_refresh_tokens_work(store, users[0])
    await assert_step_up_works(store, [s for s in [*old, touched] if s.user_id == users[2]])
    await store.aclose()


async def test_the_step_up_upgrade_keeps_every_session_and_the_previous_version_working(
    database: Database,
) -> None:
    server, engine, name = database
    table = table_before_issue_23(name)
    users: list[UserId] = [uuid.uuid4(), "auth0|5f7c8e", "42"]
    old = old_sessions(users)
    refreshing = new_refresh_session("refreshing", user_agent="Chrome", ip_address="192.0.2.1")
    rows = [row_before_issue_23(s) for s in [*old, refreshing]]
    await create_old_table(engine, table, rows)

    await upgrade_twice(engine, server, name, STEP_UP, "authenticated_at")
    async with engine.connect() as conn:
        upgraded = await conn.run_sync(column_layout, name)
    # Exactly the columns, types and nullability a table made by today's version has.
    today = session_table(MetaData(), name)
    assert upgraded == declared_layout(today, engine)
    async with engine.connect() as conn:  # every row has NULL in the new columns
        nulls = select(*(today.c[f] for f in STEP_UP_FIELDS))
        assert {tuple(r) for r in (await conn.execute(nulls)).all()} == {(None,) * 5}

    # The previous version on the upgraded table (upgrade first, then deploy): it reads and
    # writes its own columns only.
    late = Session(user_id=users[1], token=generate_token(), user_agent="Safari")
    seen = utcnow() + timedelta(minutes=1)
    touched = late.replace(token="", last_seen_at=seen)
    async with engine.begin() as conn:
        await conn.execute(insert(table), [row_before_issue_23(late)])
        at_id = table.c.id == late.id
        await conn.execute(update(table).where(at_id).values(last_seen_at=seen, deadline=None))
        rows_now = (await conn.execute(select(table))).all()
    written = {(s.id, s.token_digest, str(s.user_id)) for s in [*old, refreshing, late]}
    assert {(r.id, r.token_digest, r.user_id) for r in rows_now} == written

    store = SQLAlchemySessionDatabase(engine, table=today)
    await store.create_table()  # as every start-up runs it: the table and its rows stay
    await assert_old_sessions_read_back(store, [*old, touched])
    # The previous version's refresh tokens keep working, and refreshing moves no
    # authentication time: still its login.
    assert await store.get(refreshing.id) == refreshing
    refresher = TokenRefresher(store, access_token_lifetime=300, secret=SECRET)
    refreshed = await refresher.refresh(refreshing.refresh_token)
    assert refreshed.refresh_generation == 1
    assert (refreshed.authenticated_at, refreshed.device) == (refreshing.created_at, None)
    assert await store.get(refreshing.id) == refreshed
    mine = [s for s in [*old, touched] if s.user_id == users[1]]
    await assert_step_up_works(store, mine)
    recorded = await store.get(mine[0].id)
    assert recorded is not None

    # Rolled back, the previous version's writes leave the new columns as they are.
    async with engine.begin() as conn:
        later = utcnow() + timedelta(minutes=2)
        at_id = table.c.id == mine[0].id
        done = await conn.execute(update(table).where(at_id).values(last_seen_at=later))
        assert done.rowcount == 1
    assert await store.get(mine[0].id) == recorded.replace(last_seen_at=later)
    await store.aclose()


async def test_the_documented_alembic_migration_adds_and_drops_the_columns(
    database: Database,
) -> None:
    """The refresh-token migration on a table from before it, then the step-up migration;
    and back down, in the reverse order."""
    require_alembic()
    _, engine, name = database
    table = table_before_issue_22(name)
    users: list[UserId] = [uuid.uuid4(), "auth0|5f7c8e"]
    old = old_sessions(users)
    await create_old_table(engine, table, [row_before_issue_22(s) for s in old])
    refresh_tokens = documented_migration(name, REFRESH_TOKENS)
    step_up = documented_migration(name, STEP_UP)
    previous = table_before_issue_23(name)
    today = session_table(MetaData(), name)

    async with engine.begin() as conn:
        # As the document says: autogenerate finds the same five columns, nothing else.
        found = await conn.run_sync(autogenerated, previous)
        assert sorted(found) == sorted(("add_column", f) for f in REFRESH_FIELDS)
        await conn.run_sync(run_migration, refresh_tokens, "upgrade")
        assert await conn.run_sync(column_layout, name) == declared_layout(previous, engine)
        assert await conn.run_sync(autogenerated, previous) == []
        await conn.run_sync(run_migration, step_up, "upgrade")
        assert await conn.run_sync(column_layout, name) == declared_layout(today, engine)
        assert await conn.run_sync(autogenerated, today) == []

    store = SQLAlchemySessionDatabase(engine, table=today)
    await assert_old_sessions_read_back(store, old)
    refreshed = await assert_refresh_tokens_work(store, users[0])
    await store.aclose()

    async with engine.begin() as conn:
        await conn.run_sync(run_migration, step_up, "downgrade")
        assert await conn.run_sync(column_layout, name) == declared_layout(previous, engine)
        await conn.run_sync(run_migration, refresh_tokens, "downgrade")
        assert await conn.run_sync(column_layout, name) == declared_layout(table, engine)
        indexes = await conn.run_sync(lambda c: inspect(c).get_indexes(name))
        assert {i["name"] for i in indexes} == {i.name for i in table.indexes}
        kept = (await conn.execute(select(table.c.id))).scalars()
        assert set(kept) == {s.id for s in [*old, refreshed]}


async def test_the_documented_step_up_alembic_migration_adds_and_drops_the_columns(
    database: Database,
) -> None:
    require_alembic()
    _, engine, name = database
    table = table_before_issue_23(name)
    users: list[UserId] = [uuid.uuid4(), "auth0|5f7c8e"]
    old = old_sessions(users)
    refreshing = new_refresh_session("refreshing")
    await create_old_table(engine, table, [row_before_issue_23(s) for s in [*old, refreshing]])
    migration = documented_migration(name, STEP_UP)
    today = session_table(MetaData(), name)

    async with engine.begin() as conn:
        # As the document says: autogenerate finds the same five columns, nothing else.
        found = await conn.run_sync(autogenerated, today)
        assert sorted(found) == sorted(("add_column", f) for f in STEP_UP_FIELDS)
        await conn.run_sync(run_migration, migration, "upgrade")
        assert await conn.run_sync(column_layout, name) == declared_layout(today, engine)
        assert await conn.run_sync(autogenerated, today) == []  # nothing left to migrate

    store = SQLAlchemySessionDatabase(engine, table=today)
    await assert_old_sessions_read_back(store, old)
    new = await assert_step_up_works(store, [s for s in old if s.user_id == users[0]])
    refresher = TokenRefresher(store, access_token_lifetime=300, secret=SECRET)
    refreshed = await refresher.refresh(refreshing.refresh_token)
    assert refreshed.authenticated_at == refreshing.created_at
    await store.aclose()

    async with engine.begin() as conn:
        await conn.run_sync(run_migration, migration, "downgrade")
        assert await conn.run_sync(column_layout, name) == declared_layout(table, engine)
        assert await conn.run_sync(autogenerated, table) == []  # the previous table exactly
        indexes = await conn.run_sync(lambda c: inspect(c).get_indexes(name))
        assert {i["name"] for i in indexes} == {i.name for i in table.indexes}
        kept = (await conn.execute(select(table.c.id))).scalars()
        assert set(kept) == {s.id for s in [*old, refreshing, new]}


async def test_the_documented_opaque_user_id_alembic_migration_keeps_every_user(
    database: Database,
) -> None:
    """The user-id migration on a table from before it (twice: the second run changes
    nothing), then the two later migrations: every session reads back with its UUID user."""
    require_alembic()
    server, engine, name = database
    table = table_before_issue_11(name)
    users = [uuid.uuid4() for _ in range(2)]
    old = old_sessions(users)
    await create_old_table(engine, table, [row_before_issue_11(s) for s in old])
    opaque_ids = documented_migration(name, OPAQUE_USER_IDS)

    async with engine.begin() as conn:
        for _ in range(2):
            await conn.run_sync(run_migration, opaque_ids, "upgrade")
        raw = select(type_coerce(table.c.user_id, String))
        # Every id in its canonical form now, on both servers.
        assert set((await conn.execute(raw)).scalars()) == {str(u) for u in users}
        if server == "PostgreSQL":  # and the column is text, as the next version declares it
            layout = await conn.run_sync(column_layout, name)
            assert layout == declared_layout(table_before_issue_22(name), engine)
        for later in (REFRESH_TOKENS, STEP_UP):
            await conn.run_sync(run_migration, documented_migration(name, later), "upgrade")

    store = SQLAlchemySessionDatabase(engine, table=session_table(MetaData(), name))
    await assert_old_sessions_read_back(store, old)
    for s in old:
        got = await store.get(s.id)
        assert got is not None
        assert type(got.user_id) is uuid.UUID
    await store.aclose()


async def redis_records_written_before(missing_keys: Sequence[str]) -> None:
    """Sessions whose Redis records lack ``missing_keys`` (as an earlier version wrote them)
    read back, and take a re-authentication."""
    require("Redis", REDIS_ADDRESS)
    store = RedisSessionDatabase(REDIS_URL, key_prefix=f"test:{unique_name('upgrade')}:")
    raw = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    users: list[UserId] = [uuid.uuid4(), "auth0|5f7c8e"]
    old = [*old_sessions(users), Session(user_id=users[0], token=generate_token())]
    try:
        for s in old:  # the id key and the index entries, exactly as an earlier version
            # With fields the earlier record lacks, so that it visibly reads back without them.
            await store.create(s.replace(authenticated_at=utcnow(), device=DEVICE))
        for s in old:  # and its record: the JSON without the fields
            key = f"{store.key_prefix}s2:{s.token_digest}"
            written = await raw.get(key)
            assert written is not None
            record = json.loads(written)
            assert set(missing_keys) <= record.keys()
            previous = {k: v for k, v in record.items() if k not in missing_keys}
            expires = await raw.pexpiretime(key)
            assert await raw.set(key, json.dumps(previous, separators=(",", ":")), keepttl=True)
            assert await raw.pexpiretime(key) == expires
        for s in old:
            for got in (await store.get_by_token_digest(s.token_digest), await store.get(s.id)):
                assert got == s  # the refresh fields too: none
                assert got is not None
                assert got.refresh_digest is None
                assert (got.authenticated_at, got.device) == (got.created_at, None)
        for user in users:
            mine = sorted((s for s in old if s.user_id == user), key=lambda s: s.created_at)
            assert await store.list_for_user(user) == mine[::-1]
        at = utcnow()
        assert await store.record_authentication(old[0].id, at) == old[0].replace(
            authenticated_at=at
        )
        seen = at + timedelta(seconds=1)
        assert await store.touch(old[0], seen) is not None  # from a read before the record
        current = old[0].replace(authenticated_at=at, last_seen_at=seen)
        assert await store.get_by_token_digest(old[0].token_digest) == current
        assert await store.get(old[1].id) == old[1]
    finally:
        await store.clear()
        await store.aclose()
        await raw.aclose()


@pytest.mark.redis
async def test_redis_sessions_written_before_refresh_tokens_read_back_without_one() -> None:
    """The document's claim: Redis needs no upgrade, records without the fields read back
    (two versions ago: without the refresh fields, nor those of step-up)."""
    await redis_records_written_before((*REFRESH_FIELDS, *STEP_UP_KEYS))


@pytest.mark.redis
async def test_redis_sessions_written_before_step_up_read_back_authenticated_at_login() -> None:
    """The document's claim: Redis needs no upgrade, records without ``authenticated_at``
    and ``device`` read back authenticated at their login, without a device."""
    await redis_records_written_before(STEP_UP_KEYS)
