"""The Alembic migrations of docs/upgrading.md."""
