"""asgi-kit sessions: user ids are opaque text."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

TABLE = "asgi_kit_sessions"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column(
            TABLE,
            "user_id",
            type_=sa.String(255),
            existing_type=sa.Uuid(),
            existing_nullable=False,
            postgresql_using="user_id::text",
        )
    else:  # SQLite: the declared type is not enforced; rewrite the stored UUIDs
        op.execute(
            "UPDATE asgi_kit_sessions"
            " SET user_id = substr(user_id, 1, 8) || '-' || substr(user_id, 9, 4) || '-'"
            " || substr(user_id, 13, 4) || '-' || substr(user_id, 17, 4) || '-'"
            " || substr(user_id, 21)"
            " WHERE length(user_id) = 32 AND user_id NOT GLOB '*[^0-9a-f]*'"
        )
