"""``session_database_from_url``: pick a store from one configuration string."""

from __future__ import annotations

from .._errors import ConfigurationError
from .base import SessionDatabase
from .memory import InMemorySessionDatabase
from .optional import load_optional


def session_database_from_url(url: str) -> SessionDatabase:
    """Return the store a URL names, ready to use (create SQL tables with ``create_table``).

    ``memory://`` is the in-memory store; ``sqlite:///path.sqlite3`` and
    ``postgresql://user@host/db`` (or ``postgres://``) the SQL store; ``redis://host:6379/0``
    (or ``rediss://``) the Redis store. Anything else raises ``ConfigurationError``.

    Examples:
        >>> session_database_from_url("memory://")  # doctest: +ELLIPSIS
        <asgi_kit._stores.memory.InMemorySessionDatabase object at ...>
    """
    scheme = url.partition(":")[0].partition("+")[0].lower()
    if scheme == "memory":
        return InMemorySessionDatabase()
    if scheme in ("sqlite", "postgresql", "postgres"):
        extra = "sqlalchemy" if scheme == "sqlite" else "postgres"
        store: SessionDatabase = load_optional("SQLAlchemySessionDatabase", extra)(url)
        return store
    if scheme in ("redis", "rediss"):
        redis_store: SessionDatabase = load_optional("RedisSessionDatabase")(url)
        return redis_store
    raise ConfigurationError(
        f"unsupported session store URL scheme {scheme!r}: "
        "use memory://, sqlite:///..., postgresql://... or redis://..."
    )
