from __future__ import annotations

import os

from sqlalchemy import String
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from asgi_kit import SQLAlchemySessionDatabase, session_table

DATABASE_URL = os.environ.get("DATABASE_URL", "sqlite+aiosqlite:///./app.sqlite3")


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)


# The sessions table in your metadata: created and migrated with your own tables.
sessions = session_table(Base.metadata)

engine = create_async_engine(DATABASE_URL)
store = SQLAlchemySessionDatabase(engine, table=sessions)
