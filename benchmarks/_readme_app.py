"""Server side of ``load_real_db.py``: one variant of the README's app, its connections counted.

uvicorn serves ``_readme_app:counted_app`` (``--factory``). ``ASGI_KIT_BENCH_APP`` names
the module ``load_real_db.py`` generated from README.md (on ``PYTHONPATH``). The factory
imports it unchanged, counts the DBAPI connections that its users' engine (``engine``)
and, when it has one, its SQL session store's engine (``session_store.engine``) open,
through SQLAlchemy's pool ``connect`` event, and adds ``GET /_bench/connections``
answering ``{"users": n, "sessions": m}`` (``m`` is null without a SQL session store) and
``POST /_bench/release``, which closes every connection the app holds, as its lifespan's
shutdown does (both reopen on demand): six apps' pools at once would exceed PostgreSQL's
default ``max_connections``, so only the server under load holds its connections.

The app itself is not touched otherwise: the route is one more entry in its router, and
the listeners run only when a pool opens a connection, never per request.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

from fastapi import FastAPI, Response
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

#: Environment variable naming the generated app module to serve.
APP_ENV = "ASGI_KIT_BENCH_APP"
#: The added routes: new connections so far, per engine; close every connection.
COUNTS_PATH = "/_bench/connections"
RELEASE_PATH = "/_bench/release"


class ConnectCounter:
    """Counts the connections an engine's pool opens (SQLAlchemy's ``connect`` event)."""

    def __init__(self, engine: object) -> None:
        self.count = 0
        #: False when there is no SQLAlchemy engine to watch (in-memory or Redis store).
        self.watching = isinstance(engine, AsyncEngine)
        if isinstance(engine, AsyncEngine):
            event.listen(engine.sync_engine, "connect", self._on_connect)

    def _on_connect(self, dbapi_connection: Any, connection_record: Any) -> None:
        self.count += 1

    def value(self) -> int | None:
        """Connections opened so far, or None when nothing is watched."""
        return self.count if self.watching else None


def counted_app() -> FastAPI:
    """The generated module's ``app``, with its engines counted and the counts route added."""
    module = importlib.import_module(os.environ[APP_ENV])
    app: FastAPI = module.app
    users = ConnectCounter(module.engine)
    # The README's SQL store exposes its engine; the in-memory and Redis stores have none.
    sessions = ConnectCounter(getattr(module.session_store, "engine", None))

    async def connections() -> dict[str, int | None]:
        return {"users": users.value(), "sessions": sessions.value()}

    async def release() -> Response:
        await module.session_store.aclose()
        await module.engine.dispose()
        return Response(status_code=204)

    app.add_api_route(COUNTS_PATH, connections, methods=["GET"], include_in_schema=False)
    app.add_api_route(RELEASE_PATH, release, methods=["POST"], include_in_schema=False)
    return app
