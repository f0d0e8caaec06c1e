"""The README's fsspec_patch example (``docs_src/readme/fsspec_cache.py``) against a real server."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from conftest import RecordingServer


def test_url_variants_are_one_download(http_server: RecordingServer) -> None:
    example = importlib.import_module("docs_src.readme.fsspec_cache")
    http_server.files["/data.csv"] = b"a,b\n1,2\n"
    url = http_server.url("/data.csv")
    assert example.read(url + "?t=1") == b"a,b\n1,2\n"
    assert example.read(url + "?t=2#top") == b"a,b\n1,2\n"
    assert example.read(url) == b"a,b\n1,2\n"
    assert http_server.hits("/data.csv") == 1
