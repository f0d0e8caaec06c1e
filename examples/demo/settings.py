"""Demo settings, read from environment variables with defaults that work out of the box."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

#: The repository root: ``python3 dev.py demo`` runs from here.
ROOT = Path(__file__).resolve().parents[2]
#: Where the demo keeps its SQLite file and its file cache (gitignored).
DATA_DIR = ROOT / "demo-data"
#: The sample folder served by ``/files`` unless ``FILES_ROOT`` says otherwise.
SAMPLE_FILES = Path(__file__).resolve().parent / "sample-files"
#: Where the refresh secret is kept when ``REFRESH_SECRET`` is not set.
SECRET_FILE = DATA_DIR / "refresh-secret"


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
    | ``ACCESS_TOKEN_LIFETIME`` | ``300`` seconds an access token lasts (the page refreshes it) |
    | ``REFRESH_REUSE_INTERVAL`` | ``10`` seconds a rotated-out refresh token still gets the |
    | | current tokens (two tabs at once); later it ends the session |
    | ``REFRESH_SECRET`` | unset: a random secret, made at the first start-up and kept in |
    | | ``REFRESH_SECRET_FILE`` so that refresh tokens outlive a restart; at least 32 bytes |
    | ``REFRESH_SECRET_FILE`` | ``<repo>/demo-data/refresh-secret`` (mode 0600) |
    | ``REVOKE_ALL_MAX_AGE`` | ``300`` seconds after a sign-in (or a password typed again) |
    | | within which logging devices out needs no password (RFC 9470 step-up) |
    | ``HOST``, ``PORT`` | ``127.0.0.1``, ``8000`` (as ``dev.py``; shown in the banner) |
    """

    session_store_url: str = f"sqlite:///{DATA_DIR / 'sessions.sqlite3'}"
    session_lifetime: float = 7 * 24 * 3600
    touch_interval: float = 10
    files_root: str = str(SAMPLE_FILES)
    files_cache_dir: str = str(DATA_DIR / "file-cache")
    files_cache_max_entries: int = 64
    files_cache_max_bytes: int = 16 * 2**20
    access_token_lifetime: float = 300
    refresh_reuse_interval: float = 10
    #: Empty: the secret kept in ``refresh_secret_file`` (see ``KeptSecret``).
    refresh_secret: str = field(default="", repr=False)
    refresh_secret_file: str = str(SECRET_FILE)
    revoke_all_max_age: float = 300
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
            access_token_lifetime=float(
                env.get("ACCESS_TOKEN_LIFETIME") or d.access_token_lifetime
            ),
            refresh_reuse_interval=float(
                env.get("REFRESH_REUSE_INTERVAL") or d.refresh_reuse_interval
            ),
            refresh_secret=env.get("REFRESH_SECRET") or d.refresh_secret,
            refresh_secret_file=env.get("REFRESH_SECRET_FILE") or d.refresh_secret_file,
            revoke_all_max_age=float(env.get("REVOKE_ALL_MAX_AGE") or d.revoke_all_max_age),
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


@dataclass(frozen=True)
class KeptSecret:
    """The refresh secret kept in a file, so that refresh tokens outlive a restart.

    ``KeptSecret.at(path)`` reads it, or makes a new random one when there is no file yet;
    ``save()`` writes that one (mode 0600) at start-up, so importing the app writes nothing.

    >>> kept = KeptSecret.at(SECRET_FILE)  # doctest: +SKIP
    >>> kept.save()  # doctest: +SKIP
    """

    path: Path
    value: str = field(repr=False)

    @classmethod
    def at(cls, path: Path) -> KeptSecret:
        """The secret kept in ``path``, or a new one to keep there (``ValueError`` if unusable)."""
        try:
            value = path.read_text(encoding="ascii").strip()
        except FileNotFoundError:
            return cls(path, secrets.token_urlsafe(48))
        except UnicodeDecodeError:
            value = ""
        if len(value) < 32:
            raise ValueError(f"{path} holds no refresh secret: delete it, and a new one is made")
        return cls(path, value)

    def save(self) -> None:
        """Write the secret to its file, readable by this user only, unless it is there."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            # Another process made one since ``at()``: two secrets would refuse each
            # other's tokens, so say so rather than go on with this one.
            if KeptSecret.at(self.path).value != self.value:
                raise RuntimeError(f"{self.path} changed since start-up: start again") from None
            return
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(self.value + "\n")
