"""Cache directories that change under the cache: deleted, read-only, or shared with others.

Whatever happens to the directory, a read gives the target's bytes or a clear error,
never bytes the target does not have, and nothing fails inside the index.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import fsspec
import pytest

from fsspec_patch import CanonicalCacheMapper, CanonicalSimpleCacheFileSystem, cache_stats


def _cache(cache_storage: str = "TMP") -> Any:
    return fsspec.filesystem("simplecache", target_protocol="memory", cache_storage=cache_storage)


def _files(directory: str) -> list[str]:
    return sorted(os.listdir(directory))


@contextlib.contextmanager
def _read_only(directory: str) -> Iterator[None]:
    """Make ``directory`` refuse new files, for root too (immutable) or by its mode."""
    if os.geteuid() != 0:
        os.chmod(directory, 0o555)  # noqa: S103 (read-only: the point of the test)
        try:
            yield
        finally:
            os.chmod(directory, 0o755)  # noqa: S103 (as tmp_path made it)
        return
    if shutil.which("chattr") is None:
        pytest.skip("running as root without chattr: no way to make a directory read-only")
    made = subprocess.run(["chattr", "+i", directory], check=False, capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"this file system cannot make a directory immutable: {made.stderr!r}")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", directory], check=True, capture_output=True)


@pytest.mark.parametrize("explicit", [True, False], ids=["explicit", "temporary"])
def test_a_deleted_directory_is_made_again_and_read_fresh(
    memfs: Any, mem_root: str, cache_dir: str, explicit: bool
) -> None:
    memfs.pipe({f"{mem_root}/a": b"old a", f"{mem_root}/b": b"old b"})
    fs = _cache(cache_dir if explicit else "TMP")
    assert fs.cat(f"{mem_root}/a") + fs.cat(f"{mem_root}/b") == b"old aold b"
    shutil.rmtree(fs.storage[-1])
    memfs.pipe({f"{mem_root}/a": b"new a!", f"{mem_root}/b": b"new b!"})
    assert fs.cat(f"{mem_root}/a") == b"new a!"
    # The index forgot the entries that went with the directory.
    assert (cache_stats(fs).entries, cache_stats(fs).bytes) == (1, 6)
    assert fs.cache_size() == 6
    shutil.rmtree(fs.storage[-1])
    with fs.open(f"{mem_root}/b", "ab") as f:
        f.write(b"+")
    assert memfs.cat(f"{mem_root}/b") == b"new b!+"
    assert fs.cat(f"{mem_root}/b") == b"new b!+"
    assert _files(fs.storage[-1]) == [fs._mapper(f"{mem_root}/b")]


def test_a_read_only_directory_serves_its_entries_and_refuses_new_ones(
    memfs: Any, mem_root: str, cache_dir: str
) -> None:
    memfs.pipe({f"{mem_root}/a": b"a", f"{mem_root}/b": b"b"})
    fs = _cache(cache_dir)
    assert fs.cat(f"{mem_root}/a") == b"a"
    with _read_only(cache_dir):
        CanonicalSimpleCacheFileSystem.clear_instance_cache()
        fs = _cache(cache_dir)  # a new instance on the read-only directory
        assert fs.cat(f"{mem_root}/a") == b"a"
        with pytest.raises(PermissionError, match="is not writable") as caught:
            fs.cat(f"{mem_root}/b")
        assert cache_dir in str(caught.value)
        with pytest.raises(PermissionError, match="is not writable"):
            fs.open(f"{mem_root}/c", "wb")
        assert not memfs.exists(f"{mem_root}/c")  # refused before anything was uploaded
        assert cache_stats(fs).entries == 1
    assert fs.cat(f"{mem_root}/b") == b"b"
    assert cache_stats(fs).entries == 2


def test_other_programs_files_are_never_served_and_never_break_the_index(
    memfs: Any, mem_root: str, cache_dir: str, tmp_path: Any
) -> None:
    memfs.pipe({f"{mem_root}/a": b"real a", f"{mem_root}/b": b"real b"})
    os.makedirs(cache_dir)
    secret = tmp_path / "secret"
    secret.write_bytes(b"not the target's bytes")
    os.symlink(secret, os.path.join(cache_dir, CanonicalCacheMapper()(f"{mem_root}/a")))
    os.mkfifo(os.path.join(cache_dir, "a-pipe"))
    os.mkdir(os.path.join(cache_dir, "a-folder"))
    with open(os.path.join(os.fsencode(cache_dir), b"\xff-not-utf-8"), "wb") as f:
        f.write(b"12345")
    with open(os.path.join(cache_dir, "notes.txt"), "wb") as f:
        f.write(b"1234567")
    fs = _cache(cache_dir)  # its scan meets every one of them
    assert cache_stats(fs).entries == 1  # notes.txt: the directory is the cache's
    # A link at an entry's name is not followed: the target's bytes replace it.
    assert fs.cat(f"{mem_root}/a") == b"real a"
    entry = os.path.join(cache_dir, fs._mapper(f"{mem_root}/a"))
    assert not os.path.islink(entry)
    with fs.open(f"{mem_root}/a") as f:  # a hit on the real entry now
        assert (f.name, f.read()) == (entry, b"real a")
    assert secret.read_bytes() == b"not the target's bytes"
    # A pipe at an entry's name is never waited on; a directory there is a clear error.
    os.mkfifo(os.path.join(cache_dir, fs._mapper(f"{mem_root}/b")))
    assert fs.cat(f"{mem_root}/b") == b"real b"
    os.remove(os.path.join(cache_dir, fs._mapper(f"{mem_root}/b")))
    os.mkdir(os.path.join(cache_dir, fs._mapper(f"{mem_root}/b")))
    with pytest.raises(IsADirectoryError, match="where the cache keeps an entry"):
        fs.cat(f"{mem_root}/b")
    with pytest.raises(IsADirectoryError, match="where the cache keeps an entry"):
        fs.open(f"{mem_root}/b", "ab")
    assert memfs.cat(f"{mem_root}/b") == b"real b"
    fs.clear_cache()
    assert _files(cache_dir) == sorted(
        ["\udcff-not-utf-8", "a-folder", "a-pipe", fs._mapper(f"{mem_root}/b")]
    )
