"""Targets that behave like s3fs and gcsfs: path-only get_file, options read from the URL."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import fsspec
import pytest
from cache_helpers import entries
from fsspec.implementations.memory import MemoryFileSystem

from fsspec_patch import CacheStats, CanonicalSimpleCacheFileSystem, cache_stats


class _MemoryTarget(MemoryFileSystem):
    """The shared in-memory store under another protocol name."""

    @classmethod
    def _strip_protocol(cls, path: Any) -> Any:
        return super()._strip_protocol(str(path).removeprefix(f"{cls.protocol}://"))


class PathOnlyFileSystem(_MemoryTarget):
    """A target whose ``get_file`` takes a local path only, as s3fs's and gcsfs's do."""

    protocol = "pathonly"
    broken: ClassVar[set[str]] = set()

    def get_file(self, rpath: str, lpath: Any, callback: Any = None, **kwargs: Any) -> None:
        if os.path.isdir(lpath):  # s3fs and gcsfs start so: TypeError for a file object
            return
        key = self._strip_protocol(rpath).partition("?")[0]  # as an object store does
        data = self.cat_file(key)
        with open(lpath, "wb") as out:
            if key in self.broken:
                out.write(data[: len(data) // 2])
                raise ConnectionResetError("closed half-way")
            out.write(data)


class VersionedFileSystem(_MemoryTarget):
    """An object store with versions: ``?versionId=`` counts only when ``version_aware``."""

    protocol = "versioned"

    def __init__(self, *args: Any, version_aware: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.version_aware = version_aware

    @staticmethod
    def _get_kwargs_from_urls(path: str) -> dict[str, Any]:
        # s3fs's rule: a versionId in the query makes the filesystem version-aware.
        return {"version_aware": True} if "versionId" in parse_qs(urlsplit(path).query) else {}

    def _open(self, path: str, mode: str = "rb", **kwargs: Any) -> Any:
        key, _, query = path.partition("?")
        version = parse_qs(query).get("versionId")
        if self.version_aware and version:
            key = f"{key}@{version[0]}"  # where the test keeps old versions
        return super()._open(key, mode, **kwargs)


class HostedFileSystem(VersionedFileSystem):
    """Versioned, and reading its host from the URL as sftp does: another host, another server."""

    protocol = "hosted"

    def __init__(self, *args: Any, host: str = "", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.host = host

    @classmethod
    def _strip_protocol(cls, path: Any) -> Any:
        return str(path).removeprefix(f"{cls.protocol}://")  # "host/path?query"

    @staticmethod
    def _get_kwargs_from_urls(path: str) -> dict[str, Any]:
        options = VersionedFileSystem._get_kwargs_from_urls(path)
        host = urlsplit(path).netloc
        return {**options, "host": host} if host else options


@pytest.fixture(autouse=True)
def _targets() -> Iterator[None]:
    for cls in (PathOnlyFileSystem, VersionedFileSystem, HostedFileSystem):
        fsspec.register_implementation(cls.protocol, cls, clobber=True)
    yield
    PathOnlyFileSystem.broken.clear()


def test_target_whose_get_file_takes_only_a_path(memfs: Any, mem_root: str, cache_dir: str) -> None:
    memfs.pipe(f"{mem_root}/f.csv", b"a,b\n")
    with pytest.raises(TypeError):
        PathOnlyFileSystem().get_file(f"{mem_root}/f.csv", io.BytesIO())
    with fsspec.open(f"simplecache::pathonly://{mem_root}/f.csv?t=1", cache_storage=cache_dir) as f:
        assert f.read() == b"a,b\n"
    fs = fsspec.filesystem("simplecache", target_protocol="pathonly", cache_storage=cache_dir)
    with fs.open(f"pathonly://{mem_root}/./f.csv#x") as f:
        assert f.read() == b"a,b\n"
    assert fs.cat(f"{mem_root}/g/../f.csv") == b"a,b\n"
    assert cache_stats(fs) == CacheStats(hits=2, misses=1, entries=1, bytes=4)
    assert [name for name in entries(cache_dir) if name.startswith(".")] == []


def test_path_target_failing_half_way_leaves_nothing_behind(
    memfs: Any, mem_root: str, cache_dir: str
) -> None:
    memfs.pipe(f"{mem_root}/big", bytes(range(256)) * 40)
    PathOnlyFileSystem.broken.add(f"{mem_root}/big")
    fs = fsspec.filesystem("simplecache", target_protocol="pathonly", cache_storage=cache_dir)
    with pytest.raises(ConnectionResetError):
        fs.cat(f"{mem_root}/big")
    assert entries(cache_dir) == []
    PathOnlyFileSystem.broken.clear()
    assert fs.cat(f"{mem_root}/big?retry=1") == bytes(range(256)) * 40
    assert cache_stats(fs) == CacheStats(misses=1, entries=1, bytes=10_240)


def test_opening_a_directory_raises_and_leaves_nothing(
    memfs: Any, mem_root: str, cache_dir: str
) -> None:
    memfs.pipe(f"{mem_root}/d/f", b"x")
    fs = fsspec.filesystem("simplecache", target_protocol="memory", cache_storage=cache_dir)
    with pytest.raises(IsADirectoryError):
        fs.open(f"{mem_root}/d")
    assert entries(cache_dir) == []


def test_version_query_shares_one_instance_and_one_entry(
    memfs: Any, mem_root: str, cache_dir: str
) -> None:
    memfs.pipe({f"{mem_root}/file1": b"latest", f"{mem_root}/file1@123": b"version 123"})
    url = f"simplecache::versioned://{mem_root}/file1"
    opened = [
        fsspec.open(u, cache_storage=cache_dir)
        for u in (f"{url}?versionId=123", url, f"{url}?versionId=456&t=1")
    ]
    assert len(CanonicalSimpleCacheFileSystem._cache) == 1
    assert all(of.fs is opened[0].fs for of in opened)
    assert opened[0].fs.fs.version_aware is False
    # The first fetch used the original URL with the options it implies: version 123.
    for of in opened:
        with of as f:
            assert f.read() == b"version 123"
    assert cache_stats(opened[0].fs) == CacheStats(hits=2, misses=1, entries=1, bytes=11)
    # Without a URL, the instance stands for the options alone; it shares the directory.
    same = fsspec.filesystem("simplecache", target_protocol="versioned", cache_storage=cache_dir)
    assert same is not opened[0].fs
    assert same._store.shared is opened[0].fs._store.shared
    assert same.fs.version_aware is False


def test_fs_open_fetches_the_version_like_fsspec_open(
    memfs: Any, mem_root: str, cache_dir: str
) -> None:
    memfs.pipe({f"{mem_root}/file1": b"latest", f"{mem_root}/file1@7": b"version 7"})
    fs = fsspec.filesystem("simplecache", target_protocol="versioned", cache_storage=cache_dir)
    assert fs.cat(f"versioned://{mem_root}/file1?versionId=7") == b"version 7"
    assert len(CanonicalSimpleCacheFileSystem._cache) == 1


def test_major_version_query_keeps_entries_and_instances_apart(
    memfs: Any, mem_root: str, cache_dir: str
) -> None:
    memfs.pipe({f"{mem_root}/f": b"latest", f"{mem_root}/f@1": b"one", f"{mem_root}/f@2": b"two"})
    found = {}
    for query in ("", "?versionId=1", "?versionId=2", "?t=0&versionId=1"):
        url = f"simplecache::versioned://{mem_root}/f{query}"
        with fsspec.open(url, cache_storage=cache_dir, major_params="versionId") as f:
            found[query] = f.read()
    assert found == {"": b"latest", "?versionId=1": b"one", "?versionId=2": b"two"} | {
        "?t=0&versionId=1": b"one"
    }
    assert len(CanonicalSimpleCacheFileSystem._cache) == 3  # one per version
    assert len(entries(cache_dir)) == 3


def test_options_chosen_by_the_user_or_the_host_still_select_instances(mem_root: str) -> None:
    def make(**options: Any) -> Any:
        return fsspec.filesystem("simplecache", target_protocol="versioned", **options)

    aware = make(target_options={"version_aware": True})
    assert aware is not make()
    assert aware.fs.version_aware is True
    one = fsspec.open(f"simplecache::hosted://one{mem_root}/f?versionId=1").fs
    assert fsspec.open(f"simplecache::hosted://one{mem_root}/f").fs is one
    other = fsspec.open(f"simplecache::hosted://two{mem_root}/f").fs
    assert other is not one
    assert (one.fs.host, other.fs.host) == ("one", "two")
