"""asgi-kit sessions: refresh tokens."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

TABLE = "asgi_kit_sessions"
NEW_COLUMNS = (
    "refresh_digest",
    "refresh_generation",
    "access_expires_at",
    "refreshed_at",
    "rotation_seal",
)


def upgrade() -> None:
    op.add_column(TABLE, sa.Column("refresh_digest", sa.String(64)))
    op.add_column(TABLE, sa.Column("refresh_generation", sa.Integer()))
    op.add_column(TABLE, sa.Column("access_expires_at", sa.DateTime(timezone=True)))
    op.add_column(TABLE, sa.Column("refreshed_at", sa.DateTime(timezone=True)))
    op.add_column(TABLE, sa.Column("rotation_seal", sa.String(255)))


def downgrade() -> None:
    # Batch mode, so that this runs on SQLite before 3.35 (no DROP COLUMN) too: on SQLite it
    # copies the table without the columns; PostgreSQL drops them in place.
    with op.batch_alter_table(TABLE) as batch:
        for name in reversed(NEW_COLUMNS):
            batch.drop_column(name)
