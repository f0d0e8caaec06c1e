"""Demo settings, read from environment variables with defaults that work out of the box."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

#: The repository root: ``python3 dev.py demo`` runs from here.
ROOT = Path(__file__).resolve().parents[2]
#: Where the demo keeps its SQLite file and its file cache (gitignored).
DATA_DIR = ROOT / "demo-data"
#: The sample folder served by ``/files`` unless ``FILES_ROOT`` says otherwise.
SAMPLE_FILES = Path(__file__).resolve().parent / "sample-files"


@dataclass(frozen=True)
class Settings:
    """Everything the demo can be configured with; ``Settings.from_env()`` reads it.

    | variable | default |
    |---|---|
    | ``SESSION_STORE_URL`` | ``sqlite:///<repo>/demo-data/sessions.sqlite3`` |
    | ``SESSION_LIFETIME`` | ``604800`` seconds (7 days) |
    | ``SESSION_TOUCH_INTERVAL`` | ``10`` seconds between ``last_seen_at`` writes |
    | ``FILES_ROOT`` | ``examples/demo/sample-files`` (a folder or an fsspec URL) |
    | ``FILES_CACHE_DIR`` | ``<repo>/demo-data/file-cache`` |
    | ``FILES_CACHE_MAX_ENTRIES`` | ``64`` |
    | ``FILES_CACHE_MAX_BYTES`` | ``16777216`` (16 MiB) |
    | ``HOST``, ``PORT`` | ``127.0.0.1``, ``8000`` (as ``dev.py``; shown in the banner) |
    """

    session_store_url: str = f"sqlite:///{DATA_DIR / 'sessions.sqlite3'}"
    session_lifetime: float = 7 * 24 * 3600
    touch_interval: float = 10
    files_root: str = str(SAMPLE_FILES)
    files_cache_dir: str = str(DATA_DIR / "file-cache")
    files_cache_max_entries: int = 64
    files_cache_max_bytes: int = 16 * 2**20
    host: str = "127.0.0.1"
    port: int = 8000

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read the settings from ``environ`` (default ``os.environ``); unset means default."""
        env = os.environ if environ is None else environ
        d = cls()
        return cls(
            session_store_url=env.get("SESSION_STORE_URL") or d.session_store_url,
            session_lifetime=float(env.get("SESSION_LIFETIME") or d.session_lifetime),
            touch_interval=float(env.get("SESSION_TOUCH_INTERVAL") or d.touch_interval),
            files_root=env.get("FILES_ROOT") or d.files_root,
            files_cache_dir=env.get("FILES_CACHE_DIR") or d.files_cache_dir,
            files_cache_max_entries=int(
                env.get("FILES_CACHE_MAX_ENTRIES") or d.files_cache_max_entries
            ),
            files_cache_max_bytes=int(env.get("FILES_CACHE_MAX_BYTES") or d.files_cache_max_bytes),
            host=env.get("HOST") or d.host,
            port=int(env.get("PORT") or d.port),
        )

    @property
    def url(self) -> str:
        """Where the demo answers, as printed in the start-up banner."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"


def redact(url: str) -> str:
    """``url`` with any password replaced by ``***``, safe to print."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def sqlite_path(url: str) -> Path | None:
    """The database file of a ``sqlite:///`` URL (None for other URLs or in-memory SQLite)."""
    scheme, _, rest = url.partition("://")
    if scheme.partition("+")[0].lower() != "sqlite" or not rest.startswith("/"):
        return None
    path = rest[1:].partition("?")[0]
    return Path(path) if path and path != ":memory:" else None
