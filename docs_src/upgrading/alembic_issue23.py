"""asgi-kit sessions: step-up and device names."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

TABLE = "asgi_kit_sessions"
NEW_COLUMNS = (
    "authenticated_at",
    "device_browser",
    "device_os",
    "device_kind",
    "device_label",
)


def upgrade() -> None:
    op.add_column(TABLE, sa.Column("authenticated_at", sa.DateTime(timezone=True)))
    op.add_column(TABLE, sa.Column("device_browser", sa.String(64)))
    op.add_column(TABLE, sa.Column("device_os", sa.String(64)))
    op.add_column(TABLE, sa.Column("device_kind", sa.String(16)))
    op.add_column(TABLE, sa.Column("device_label", sa.String(64)))


def downgrade() -> None:
    # Batch mode, so that this runs on SQLite before 3.35 (no DROP COLUMN) too: on SQLite it
    # copies the table without the columns; PostgreSQL drops them in place.
    with op.batch_alter_table(TABLE) as batch:
        for name in reversed(NEW_COLUMNS):
            batch.drop_column(name)
