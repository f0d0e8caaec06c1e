"""The default temporary cache storage lives with its instances, as in fsspec."""

from __future__ import annotations

import gc
import os
import pickle
import subprocess
import sys
import textwrap
from typing import Any

import fsspec
from fsspec.implementations.cached import SimpleCacheFileSystem

from fsspec_patch import CanonicalSimpleCacheFileSystem


def _temporary(**options: Any) -> Any:
    return fsspec.filesystem("simplecache", target_protocol="memory", **options)


def test_a_cleared_instance_cache_starts_an_empty_temporary_directory(
    memfs: Any, mem_root: str
) -> None:
    memfs.pipe(f"{mem_root}/f", b"hello")
    fs = _temporary()
    assert fs.cat(f"{mem_root}/f") == b"hello"
    memfs.pipe(f"{mem_root}/f", b"HELLO!")
    # While an instance holds a copy it serves it, as fsspec's simplecache does.
    assert _temporary() is fs
    assert fs.cat(f"{mem_root}/f") == b"hello"
    SimpleCacheFileSystem.clear_instance_cache()  # fsspec's name for the same mapping
    fresh = _temporary()
    assert fresh is not fs
    assert fresh.storage[-1] != fs.storage[-1]
    assert os.listdir(fresh.storage[-1]) == []
    assert fresh.cat(f"{mem_root}/f") == b"HELLO!"
    # The old instance still works for whoever holds it, from its own directory.
    assert fs.cat(f"{mem_root}/f") == b"hello"


def test_instances_of_one_generation_share_a_directory(memfs: Any, mem_root: str) -> None:
    memfs.pipe({f"{mem_root}/a": b"a", f"{mem_root}/b": b"b"})
    one = fsspec.open(f"simplecache::memory://{mem_root}/a")
    two = fsspec.open(f"simplecache::memory://{mem_root}/b")
    assert one.fs is not two.fs
    assert one.fs.storage == two.fs.storage
    CanonicalSimpleCacheFileSystem.clear_instance_cache()
    three = fsspec.open(f"simplecache::memory://{mem_root}/a")
    assert three.fs.storage != one.fs.storage


def test_the_old_directory_goes_with_its_last_instance(memfs: Any, mem_root: str) -> None:
    memfs.pipe(f"{mem_root}/f", b"data")
    fs = _temporary()
    fs.cat(f"{mem_root}/f")
    old, index = fs.storage[-1], fs._store.shared.index
    CanonicalSimpleCacheFileSystem.clear_instance_cache()
    fresh = _temporary()
    fresh.cat(f"{mem_root}/f")
    gc.collect()
    assert os.path.isdir(old)  # still held by ``fs``
    del fs
    gc.collect()
    assert not os.path.exists(old)
    assert not os.path.exists(index)
    assert fresh.cat(f"{mem_root}/f") == b"data"
    assert os.listdir(fresh.storage[-1]) == [fresh._mapper(f"{mem_root}/f")]


def test_an_uncached_instance_has_its_own_directory_and_removes_it(
    memfs: Any, mem_root: str
) -> None:
    memfs.pipe(f"{mem_root}/f", b"data")
    one, two = _temporary(skip_instance_cache=True), _temporary(skip_instance_cache=True)
    assert one.storage[-1] != two.storage[-1]
    assert one.cat(f"{mem_root}/f") == b"data"
    folders = [one.storage[-1], one._store.shared.index]
    del one
    gc.collect()
    assert not any(os.path.exists(folder) for folder in folders)
    assert os.path.isdir(two.storage[-1])


def test_a_pickled_instance_asks_for_a_temporary_directory_again(mem_root: str) -> None:
    fs = _temporary()
    assert fs.storage_options.get("cache_storage", "TMP") == "TMP"
    assert pickle.loads(pickle.dumps(fs)) is fs  # noqa: S301 (our own bytes)
    CanonicalSimpleCacheFileSystem.clear_instance_cache()
    copy = pickle.loads(pickle.dumps(fs))  # noqa: S301 (our own bytes)
    assert copy is not fs
    assert copy.storage[-1] != fs.storage[-1]


def test_an_explicit_directory_is_shared_across_generations(
    memfs: Any, mem_root: str, cache_dir: str
) -> None:
    memfs.pipe(f"{mem_root}/f", b"old")
    assert _temporary(cache_storage=cache_dir).cat(f"{mem_root}/f") == b"old"
    memfs.pipe(f"{mem_root}/f", b"new")
    CanonicalSimpleCacheFileSystem.clear_instance_cache()
    fs = _temporary(cache_storage=cache_dir)
    assert fs.cat(f"{mem_root}/f") == b"old"  # explicit storage: shared and kept
    fs.pop_from_cache(f"{mem_root}/f")
    assert fs.cat(f"{mem_root}/f") == b"new"


def test_a_forked_child_never_removes_its_parents_directory() -> None:
    code = textwrap.dedent(
        """
        import gc, os, sys
        import fsspec
        fsspec.filesystem("memory").pipe("/fork/f", b"data")
        fs = fsspec.filesystem("simplecache", target_protocol="memory")
        assert fs.cat("/fork/f") == b"data"
        pid = os.fork()
        if pid == 0:
            child = fsspec.filesystem("simplecache", target_protocol="memory")
            assert child.storage != fs.storage and child.cat("/fork/f") == b"data"
            del fs, child
            gc.collect()
            sys.exit(0)  # runs the child's finalizers at exit
        _, status = os.waitpid(pid, 0)
        assert status == 0, status
        assert os.listdir(fs.storage[-1]) == [fs._mapper("/fork/f")]
        print(fs.storage[-1])
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert not os.path.exists(done.stdout.strip())  # the parent's own exit removed it
