"""The names whose drivers come with an extra: imported on first use, with a helpful error."""

from __future__ import annotations

from importlib import import_module
from typing import Any

#: name -> (module, the extra that installs its drivers).
OPTIONAL = {
    "SQLAlchemySessionDatabase": ("asgi_kit._stores.sql", "sqlalchemy"),
    "RedisSessionDatabase": ("asgi_kit._stores.redis", "redis"),
    "session_table": ("asgi_kit._stores.sql", "sqlalchemy"),
}


def load_optional(name: str, extra: str | None = None) -> Any:
    """Import ``name`` from its module; without its driver, an ``ImportError`` naming the extra.

    ``extra`` overrides the usual one (``postgres`` for a PostgreSQL URL, say).
    """
    module, default = OPTIONAL[name]
    try:
        return getattr(import_module(module), name)
    except ImportError as exc:
        wanted = extra or default
        raise ImportError(
            f"{name} needs an optional dependency: pip install 'asgi-kit[{wanted}]'"
        ) from exc
