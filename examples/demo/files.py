"""``/files``: files from one configured fsspec location, through the patched simplecache.

Only paths made of plain name segments (letters, digits, ``.``, ``_``, ``-``; no segment
starting with a dot) are accepted, so ``..``, absolute paths, ``file:``/``http:`` URLs,
fsspec ``::`` chains and hidden files are refused before anything is opened: the
endpoint serves the configured root and nothing else, never an open proxy.

Cache-busting query parameters (``?t=...``, ``?_=...``, signatures) are folded away by
:func:`fsspec_patch.canonical_key`, which keeps only the parameters that select another
version of a file (``version``, ``dataset``); every variant therefore shares one entry of
the bounded cache, and ``/files-cache`` shows its entries, bytes, hits and misses.
"""

from __future__ import annotations

import mimetypes
import os
import re
from dataclasses import asdict
from functools import cached_property
from typing import Any

import anyio.to_thread
import fsspec  # type: ignore[import-untyped]
from fastapi import APIRouter, HTTPException, Request, Response
from fsspec.core import split_protocol  # type: ignore[import-untyped]
from pydantic import BaseModel

import fsspec_patch

_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_MAX_DEPTH = 8
_LOCAL = {None, "file", "local"}
# Served bytes are data, never a page of this origin: no scripts, no sniffing.
_FILE_HEADERS = {
    "Content-Security-Policy": "sandbox; default-src 'none'",
    "X-Content-Type-Options": "nosniff",
}


class CacheReport(BaseModel):
    """What ``GET /files-cache`` reports about the bounded cache."""

    entries: int
    bytes: int
    hits: int
    misses: int
    max_entries: int | None
    max_bytes: int | None


class FileInfo(BaseModel):
    """One file under the root, as ``GET /files`` lists it."""

    path: str
    size: int | None


def is_safe_path(path: str) -> bool:
    """Whether ``path`` is a relative path of plain name segments (see module docstring)."""
    segments = path.split("/")
    return (
        0 < len(path) <= 512
        and len(segments) <= _MAX_DEPTH
        and all(_SEGMENT.fullmatch(segment) for segment in segments)
    )


class FileCache:
    """The files under ``root`` (a local folder or an fsspec URL), read through simplecache.

    ``root`` may be ``/some/folder``, ``file:///some/folder``, ``memory://bucket`` or
    ``https://example.com/data``: the patched ``simplecache`` filesystem, bounded to
    ``max_entries`` files and ``max_bytes`` bytes in ``cache_dir``, sits in front of it.
    """

    def __init__(
        self, root: str, cache_dir: str, *, max_entries: int | None, max_bytes: int | None
    ) -> None:
        protocol, path = split_protocol(root)
        self.protocol = "file" if protocol in _LOCAL else str(protocol)
        if self.protocol == "file":
            self.base = os.path.realpath(path)
        else:
            self.base = root.rstrip("/")
        self.cache_dir = cache_dir
        self.max_entries = max_entries
        self.max_bytes = max_bytes

    @cached_property
    def fs(self) -> Any:
        """The patched simplecache filesystem (created, with its folder, on first use)."""
        return fsspec.filesystem(
            "simplecache",
            target_protocol=self.protocol,
            cache_storage=self.cache_dir,
            max_entries=self.max_entries,
            max_bytes=self.max_bytes,
        )

    def target(self, path: str, query: str) -> str | None:
        """The URL to open for ``path`` (already checked) and the request's query string.

        Only the query parameters that select another file survive (the cache key's
        major parameters); None when a local path would leave the root via a symlink.
        """
        key = fsspec_patch.canonical_key(f"{path}?{query}" if query else path)
        if self.protocol != "file":
            return f"{self.base}/{key}"
        full = os.path.join(self.base, path)
        if os.path.commonpath([self.base, os.path.realpath(full)]) != self.base:
            return None
        return os.path.join(self.base, key)

    def read(self, target: str) -> bytes:
        """The bytes of ``target``, from the cache or fetched into it (blocking)."""
        with self.fs.open(target, "rb") as f:
            data: bytes = f.read()
        return data

    def listing(self, limit: int = 200) -> list[FileInfo]:
        """The servable files under the root, sorted (blocking; empty if it cannot list)."""
        try:
            found = self.fs.fs.find(self.base, maxdepth=_MAX_DEPTH, detail=True)
        except Exception:  # a root that cannot be listed (plain HTTP): nothing to show
            return []
        prefix = self.base.rstrip("/") + "/"
        files = []
        for name, info in found.items():
            relative = name[len(prefix) :] if name.startswith(prefix) else ""
            if info.get("type") == "file" and is_safe_path(relative):
                files.append(FileInfo(path=relative, size=info.get("size")))
        return sorted(files, key=lambda f: f.path)[:limit]

    def report(self) -> CacheReport:
        """Entries, bytes, hits and misses of the cache, with its limits."""
        stats = asdict(fsspec_patch.cache_stats(self.fs))
        return CacheReport(**stats, max_entries=self.max_entries, max_bytes=self.max_bytes)


def media_type(path: str) -> str:
    """The content type to serve ``path`` with (text types in UTF-8)."""
    guessed = mimetypes.guess_type(path)[0] or "application/octet-stream"
    return f"{guessed}; charset=utf-8" if guessed.startswith("text/") else guessed


def files_router(cache: FileCache) -> APIRouter:
    """``GET /files``, ``GET /files/{path}`` and ``GET /files-cache``; public routes."""
    router = APIRouter(tags=["files"])

    @router.get("/files", summary="List the files that can be fetched")
    async def list_files() -> list[FileInfo]:
        return await anyio.to_thread.run_sync(cache.listing)

    @router.get(
        "/files/{path:path}",
        summary="Fetch a file through the bounded cache",
        response_class=Response,
        responses={
            400: {"description": "INVALID_FILE_PATH"},
            404: {"description": "FILE_NOT_FOUND"},
        },
    )
    async def get_file(path: str, request: Request) -> Response:
        if not is_safe_path(path):
            raise HTTPException(400, "INVALID_FILE_PATH")
        target = cache.target(path, request.url.query)
        if target is None:
            raise HTTPException(404, "FILE_NOT_FOUND")
        try:
            data = await anyio.to_thread.run_sync(cache.read, target)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError):
            raise HTTPException(404, "FILE_NOT_FOUND") from None
        except OSError:
            raise HTTPException(502, "FILES_UNAVAILABLE") from None
        return Response(data, media_type=media_type(path), headers=_FILE_HEADERS)

    @router.get("/files-cache", summary="Entries, bytes, hits and misses of the file cache")
    async def files_cache() -> CacheReport:
        return await anyio.to_thread.run_sync(cache.report)

    return router
