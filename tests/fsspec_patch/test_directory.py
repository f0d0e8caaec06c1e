"""The shared directory index within one process: repairs, expiry, Windows rules, fork."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import fsspec
import pytest
from cache_helpers import entries
from fsspec.implementations.cache_mapper import BasenameCacheMapper

from fsspec_patch import CacheStats, cache_stats
from fsspec_patch._index import index_folder
from fsspec_patch._instances import InstanceCache


def make(cache_dir: str, **options: Any) -> Any:
    """A patched filesystem over memory:// on ``cache_dir``."""
    return fsspec.filesystem(
        "simplecache", target_protocol="memory", cache_storage=cache_dir, **options
    )


@pytest.fixture
def files(memfs: Any, mem_root: str) -> list[str]:
    """Four 10-byte files in memory."""
    paths = [f"{mem_root}/f{i}" for i in range(4)]
    memfs.pipe({path: b"%d" % i * 10 for i, path in enumerate(paths)})
    return paths


def test_an_entry_that_cannot_be_removed_stays_counted_and_goes_later(
    files: list[str], cache_dir: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Windows refuses to remove a file some process has open: simulated here.
    fs = make(cache_dir, max_entries=2)
    fs.cat(files[0])
    fs.cat(files[1])
    held = os.path.join(cache_dir, fs._mapper(files[0]))
    remove = os.remove

    def refuse(path: Any, *args: Any, **kwargs: Any) -> None:
        if os.fspath(path) == held:
            raise PermissionError(13, "in use", path)
        remove(path, *args, **kwargs)

    monkeypatch.setattr(os, "remove", refuse)
    assert fs.cat(files[2]) == b"2" * 10
    assert entries(cache_dir) == sorted([fs._mapper(files[0]), fs._mapper(files[2])])
    monkeypatch.setattr(os, "remove", remove)
    assert fs.cat(files[3]) == b"3" * 10  # f0 is still the least recently used: it goes
    assert entries(cache_dir) == sorted([fs._mapper(files[2]), fs._mapper(files[3])])
    assert cache_stats(fs).entries == 2


def test_a_download_whose_entry_is_held_open_serves_that_entry(
    files: list[str], cache_dir: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Windows: another process published this entry and has it open, so the move fails.
    fs = make(cache_dir)
    replace = os.replace

    def held_open(source: Any, target: Any) -> None:
        Path(target).write_bytes(b"published elsewhere")
        raise PermissionError(13, "in use", target)

    monkeypatch.setattr(os, "replace", held_open)
    assert fs.cat(files[0]) == b"published elsewhere"
    with pytest.raises(PermissionError), fs.open(files[1], "wb") as f:
        f.write(b"new")  # a write cannot replace it: it fails, leaving nothing behind
    monkeypatch.setattr(os, "replace", replace)
    assert not [name for name in entries(cache_dir) if name.startswith(".partial-")]


def test_eviction_forgets_entries_removed_by_hand(files: list[str], cache_dir: str) -> None:
    fs = make(cache_dir, max_entries=2)
    fs.cat(files[0])
    fs.cat(files[1])
    os.remove(os.path.join(cache_dir, fs._mapper(files[0])))
    fs.cat(files[2])  # room is made by forgetting the missing f0, not by evicting f1
    assert entries(cache_dir) == sorted([fs._mapper(files[1]), fs._mapper(files[2])])
    assert cache_stats(fs) == CacheStats(misses=3, entries=2, bytes=20)


def test_rescan_repairs_the_index(files: list[str], cache_dir: str) -> None:
    fs = make(cache_dir)
    fs.cat(files[0])
    fs.cat(files[1])
    os.remove(os.path.join(cache_dir, fs._mapper(files[0])))
    Path(cache_dir, "by-hand").write_bytes(b"12345")
    fs._store.shared.rescan()
    assert cache_stats(fs) == CacheStats(misses=2, entries=2, bytes=15)


def test_expiry_counts_from_the_last_use(files: list[str], cache_dir: str) -> None:
    fs = make(cache_dir)
    for path in files[:2]:
        fs.cat(path)
    old = time.time() - 120
    for path in files[:2]:
        os.utime(os.path.join(cache_dir, fs._mapper(path)), (old, old))
    fs.cat(files[1])  # a hit: used now
    fs.clear_expired_cache(60)
    assert entries(cache_dir) == [fs._mapper(files[1])]
    for wrong in (None, -1):
        with pytest.raises(ValueError, match="expiry_time"):
            fs.clear_expired_cache(wrong)


def test_clear_cache_keeps_temporary_files_of_running_downloads(
    files: list[str], cache_dir: str
) -> None:
    fs = make(cache_dir)
    fs.cat(files[0])
    running, left = Path(cache_dir, ".partial-running"), Path(cache_dir, ".partial-left")
    running.write_bytes(b"x")
    left.write_bytes(b"x")
    hours_ago = time.time() - 7200
    os.utime(left, (hours_ago, hours_ago))
    fs.clear_cache()
    assert entries(cache_dir) == [".partial-running"]
    assert cache_stats(fs).entries == 0


@pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX fork only")
@pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning")
def test_an_instance_made_before_a_fork_works_in_the_child(
    files: list[str], cache_dir: str
) -> None:
    # gunicorn --preload and multiprocessing's fork: the child gets its own connection.
    fs = make(cache_dir)
    fs.cat(files[0])
    context = multiprocessing.get_context("fork")
    results = context.Queue()

    def child() -> None:
        results.put((fs.cat(files[1]), fs.cat(files[0]), cache_stats(fs).entries))

    process = context.Process(target=child)
    process.start()
    found = results.get(timeout=120)
    process.join(120)
    results.close()
    results.join_thread()
    assert found == (b"1" * 10, b"0" * 10, 2)
    assert cache_stats(fs).entries == 2
    assert fs.cat(files[1]) == b"1" * 10  # the child's download, a hit here


def test_temporary_storage_is_one_directory_per_options_and_goes_at_exit() -> None:
    code = (
        "import fsspec, os\n"
        "fsspec.filesystem('memory').pipe({'/t/a': b'a', '/t/b': b'b'})\n"
        "one = fsspec.open('simplecache::memory:///t/a')\n"
        "two = fsspec.open('simplecache::memory:///t/b')\n"
        "assert one.fs is not two.fs and one.fs.storage == two.fs.storage\n"
        "assert one.open().read() + two.open().read() == b'ab'\n"
        "print(one.fs.storage[-1])"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert not os.path.exists(done.stdout.strip())


def test_instance_cache_is_a_bounded_lru() -> None:
    cache = InstanceCache(2)
    cache["a"], cache["b"] = 1, 2
    assert cache.get("a") == 1
    cache["c"] = 3  # b is the least recently used
    assert sorted(cache) == ["a", "c"]
    del cache["a"]
    assert cache.instances() == [3]
    cache.clear()
    assert len(cache) == 0


def test_an_unhashable_mapper_of_ones_own_still_works(files: list[str], cache_dir: str) -> None:
    class Unhashable(BasenameCacheMapper):  # type: ignore[misc]
        __hash__ = None  # type: ignore[assignment]

    fs = make(cache_dir, cache_mapper=Unhashable())
    assert fs.cat(files[0]) == b"0" * 10
    assert entries(cache_dir) == ["f0"]


def test_the_index_lives_outside_the_cache_directory(files: list[str], cache_dir: str) -> None:
    fs = make(cache_dir)
    fs.cat(files[0])
    assert entries(cache_dir) == [fs._mapper(files[0])]
    index = fs._store.shared.index
    assert index == index_folder(cache_dir + "/.")  # named by the real path
    assert "index.sqlite3" in os.listdir(index)
    assert os.path.commonpath([index, cache_dir]) != cache_dir


@pytest.mark.skipif(not hasattr(os, "getuid"), reason="POSIX owners")
def test_an_index_folder_of_another_user_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "getuid", lambda: os.stat(tmp_path).st_uid + 1)
    with pytest.raises(PermissionError, match="not a directory of this user"):
        index_folder(str(tmp_path))
