"""The patched simplecache over memory:// and local files: dedupe, options, fsspec features."""

from __future__ import annotations

import gzip
import os
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import fsspec
import pytest
from cache_helpers import entries
from fsspec.implementations.cache_mapper import BasenameCacheMapper
from fsspec.implementations.cached import SimpleCacheFileSystem

from fsspec_patch import (
    CacheStats,
    CanonicalCacheMapper,
    CanonicalSimpleCacheFileSystem,
    cache_stats,
)

Opener = Callable[[str], IO[bytes]]


@pytest.fixture(params=["fsspec.open", "fs.open"])
def opener(request: pytest.FixtureRequest, cache_dir: str) -> Opener:
    """Open a memory:// URL through simplecache, at top level or on the filesystem."""
    if request.param == "fsspec.open":
        return lambda url: fsspec.open(f"simplecache::{url}", cache_storage=cache_dir).open()
    fs = fsspec.filesystem("simplecache", target_protocol="memory", cache_storage=cache_dir)
    return lambda url: fs.open(url)


def read(opener: Opener, url: str) -> bytes:
    """Open, read and close."""
    with opener(url) as f:
        return f.read()


def test_variants_reuse_one_entry(
    opener: Opener, memfs: Any, mem_root: str, cache_dir: str
) -> None:
    memfs.pipe(f"{mem_root}/d/f.csv", b"one")
    assert read(opener, f"memory://{mem_root}/d/f.csv") == b"one"
    memfs.pipe(f"{mem_root}/d/f.csv", b"changed remotely")  # served from the cache from now on
    for variant in (
        "d/f.csv?b=2&a=1",
        "d/f.csv?a=1&b=2",
        "d/./f.csv#frag",
        "x/../d/f.csv",
        "d/f.csv?X-Amz-Signature=abc&X-Amz-Date=20240101",
    ):
        assert read(opener, f"memory://{mem_root}/{variant}") == b"one"
    assert len(entries(cache_dir)) == 1
    stats = cache_stats(
        fsspec.filesystem("simplecache", target_protocol="memory", cache_storage=cache_dir)
    )
    assert stats == CacheStats(hits=5, misses=1, entries=1, bytes=3)


def test_instances_follow_logical_files_and_share_one_store(cache_dir: str, mem_root: str) -> None:
    def opened(url: str) -> Any:
        return fsspec.open(f"simplecache::memory://{mem_root}/{url}", cache_storage=cache_dir).fs

    fs = fsspec.filesystem("simplecache", target_protocol="memory", cache_storage=cache_dir)
    one = opened("e/f")
    assert opened("e/f?t=1#x") is one
    assert opened("e/./x/../f?X-Amz-Signature=s") is one
    others = [opened("e/f?version=1"), opened("e/f?version=2"), opened("e/g")]
    assert len({id(fs), id(one), *map(id, others)}) == 5
    assert opened("e/f?version=1&t=2") is others[0]
    # The instances are fsspec's own simplecache instances, in its own mapping.
    assert SimpleCacheFileSystem._cache is CanonicalSimpleCacheFileSystem._cache
    assert len(SimpleCacheFileSystem._cache) == 5
    # One directory, one store behind them all: entries, counts and limits are shared.
    assert {id(x._store.shared) for x in (fs, one, *others)} == {id(fs._store.shared)}


def test_int_options_from_strings_select_the_same_instance(cache_dir: str) -> None:
    def make(**options: Any) -> Any:
        return fsspec.filesystem(
            "simplecache", target_protocol="memory", cache_storage=cache_dir, **options
        )

    assert make(max_entries="10", max_bytes="2048") is make(max_entries=10, max_bytes=2048)
    assert make(key_cache_size="16") is make(key_cache_size=16)
    assert make(max_entries="10000") is make()


def test_major_params_and_paths_make_distinct_entries(
    memfs: Any, mem_root: str, cache_dir: str
) -> None:
    memfs.pipe(f"{mem_root}/f", b"base")
    memfs.pipe(f"{mem_root}/f?version=2", b"v2")
    memfs.pipe(f"{mem_root}/g", b"other")
    fs = fsspec.filesystem("simplecache", target_protocol="memory", cache_storage=cache_dir)
    assert fs.cat(f"memory://{mem_root}/f") == b"base"
    assert fs.cat(f"memory://{mem_root}/f?version=2") == b"v2"
    assert fs.cat(f"memory://{mem_root}/f?t=9&version=2") == b"v2"
    assert fs.cat(f"memory://{mem_root}/g") == b"other"
    assert len(entries(cache_dir)) == 3


def test_major_params_per_filesystem_and_globally(
    memfs: Any, mem_root: str, cache_dir: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    memfs.pipe(f"{mem_root}/f", b"base")
    memfs.pipe(f"{mem_root}/f?part=2", b"part 2")
    url = f"simplecache::memory://{mem_root}/f"
    with fsspec.open(url, cache_storage=cache_dir, major_params=["part"]) as f:
        assert f.read() == b"base"
    with fsspec.open(url + "?part=2", cache_storage=cache_dir, major_params="part") as f:
        assert f.read() == b"part 2"
    monkeypatch.setitem(fsspec.config.conf, "simplecache", {"major_params": "part,version"})
    fs = fsspec.filesystem("simplecache", target_protocol="memory", cache_storage=cache_dir)
    assert fs._mapper.major_params == ("part", "version")
    assert fs.cat(f"memory://{mem_root}/f?part=2") == b"part 2"


def test_a_miss_fetches_the_original_path(memfs: Any, mem_root: str, cache_dir: str) -> None:
    memfs.pipe(f"{mem_root}/f", b"data")
    fs = fsspec.filesystem("simplecache", target_protocol="memory", cache_storage=cache_dir)
    # The target has no file named "f?x=1": the query was not removed from the fetch.
    with pytest.raises(FileNotFoundError):
        fs.open(f"memory://{mem_root}/f?x=1")
    assert entries(cache_dir) == []
    assert cache_stats(fs).misses == 0


def test_local_files_dedupe(tmp_path: Path, cache_dir: str) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "f.bin").write_bytes(b"local")
    url = f"simplecache::file://{source}/../src/./f.bin"
    with fsspec.open(url, cache_storage=cache_dir) as f:
        assert f.read() == b"local"
    (source / "f.bin").write_bytes(b"changed")
    with fsspec.open(f"simplecache::file://{source}/f.bin#x", cache_storage=cache_dir) as f:
        assert f.read() == b"local"
    with fsspec.open(f"simplecache::{source}/f.bin", "rt", cache_storage=cache_dir) as f:
        assert f.read() == "local"
    assert len(entries(cache_dir)) == 1


def test_instances_are_shared_for_equal_options_in_any_order(mem_root: str) -> None:
    def make(**options: Any) -> Any:
        return fsspec.filesystem("simplecache", target_protocol="memory", **options)

    assert make(target_options={"a": 1, "b": {2, 3}}, max_entries=5) is make(
        max_entries=5, target_options={"b": {3, 2}, "a": 1}
    )
    assert make(cache_mapper=CanonicalCacheMapper()) is make(cache_mapper=CanonicalCacheMapper())
    assert make(same_names=True) is make(same_names=True)
    assert make(major_params=["version", "dataset"]) is make()
    assert make(target_options={}) is make()
    deep = {"a": {"b": {"c": {"d": {"e": {"f": 1}}}}}}
    assert make(target_options=deep) is make(target_options=deep)
    assert make(max_entries=5) is not make(max_entries=6)
    assert make(skip_instance_cache=True) is not make(skip_instance_cache=True)


def test_explicit_target_instance_is_honoured(mem_root: str) -> None:
    memory_a = fsspec.filesystem("memory", skip_instance_cache=True)
    memory_b = fsspec.filesystem("memory", skip_instance_cache=True)
    one = fsspec.filesystem("simplecache", fs=memory_a)
    assert fsspec.filesystem("simplecache", fs=memory_a) is one
    assert fsspec.filesystem("simplecache", fs=memory_b) is not one
    assert one.fs is memory_a


def test_pickle_returns_the_shared_instance(cache_dir: str) -> None:
    fs = fsspec.filesystem(
        "simplecache",
        target_protocol="memory",
        cache_storage=cache_dir,
        cache_mapper=CanonicalCacheMapper("part"),
    )
    assert pickle.loads(pickle.dumps(fs)) is fs  # noqa: S301 (our own bytes)


def test_cat_leaves_no_metadata_behind(memfs: Any, mem_root: str, cache_dir: str) -> None:
    memfs.pipe(f"{mem_root}/f", b"x")
    fs = fsspec.filesystem("simplecache", target_protocol="memory", cache_storage=cache_dir)
    assert fs.cat(f"memory://{mem_root}/f") == b"x"
    for i in range(200):
        assert fs.cat(f"memory://{mem_root}/f?i={i}") == b"x"
    assert fs._metadata.cached_files == [{}]
    assert entries(cache_dir) == [fs._mapper(f"{mem_root}/f")]


def test_cat_forms(memfs: Any, mem_root: str, cache_dir: str) -> None:
    memfs.pipe({f"{mem_root}/d/a": b"A", f"{mem_root}/d/b": b"B"})
    fs = fsspec.filesystem("simplecache", target_protocol="memory", cache_storage=cache_dir)
    pair = [f"{mem_root}/d/a", f"{mem_root}/d/a?x=1"]
    assert fs.cat(pair) == {pair[0]: b"A", pair[1]: b"A"}
    assert fs.cat(f"memory://{mem_root}/d/*") == {f"{mem_root}/d/a": b"A", f"{mem_root}/d/b": b"B"}
    assert fs.cat(f"memory://{mem_root}/d", recursive=True, on_error="omit") == {
        f"{mem_root}/d/a": b"A",
        f"{mem_root}/d/b": b"B",
    }
    missing = [f"{mem_root}/d/a", f"{mem_root}/nope"]
    with pytest.raises(FileNotFoundError):
        fs.cat(missing)
    assert fs.cat(missing, on_error="omit") == {missing[0]: b"A"}
    returned = fs.cat(missing, on_error="return")
    assert isinstance(returned[missing[1]], FileNotFoundError)


def test_cat_file_ranges_and_async(memfs: Any, mem_root: str, cache_dir: str) -> None:
    import asyncio

    memfs.pipe(f"{mem_root}/f", b"0123456789")
    fs = fsspec.filesystem("simplecache", target_protocol="memory", cache_storage=cache_dir)
    assert fs.cat_file(f"{mem_root}/f", 2, 5) == b"234"
    path = f"memory://{mem_root}/f?sig=1"
    assert fs.cat_file(path, 2, 5) == b"234"
    assert fs.cat_file(path, -3) == b"789"
    assert fs.cat_file(path, None, -8) == b"01"
    assert fs.cat_file(path, 4) == b"456789"
    assert fs.cat_file(path, 8, 2) == b""
    assert fs.cat_ranges([path, path, f"{mem_root}/gone"], [0, 5, 0], [2, 7, 1])[:2] == [
        b"01",
        b"56",
    ]
    assert asyncio.run(fs._cat_file(path, 1, 3)) == b"12"
    assert asyncio.run(fs._cat_ranges([path], [0], [1])) == [b"0"]
    assert len(entries(cache_dir)) == 1


def test_compression_on_download(memfs: Any, mem_root: str, cache_dir: str) -> None:
    memfs.pipe(f"{mem_root}/f.gz", gzip.compress(b"plain text"))
    for codec in ("gzip", "infer"):
        fs = fsspec.filesystem(
            "simplecache",
            target_protocol="memory",
            compression=codec,
            cache_storage=f"{cache_dir}-{codec}",
        )
        assert fs.cat(f"memory://{mem_root}/f.gz") == b"plain text"
        assert fs.cat(f"memory://{mem_root}/f.gz?x=1") == b"plain text"


def test_same_names_and_own_mapper(memfs: Any, mem_root: str, tmp_path: Path) -> None:
    # The target knows the exact signed name, as a server would; it is fetched untouched.
    memfs.pipe(f"{mem_root}/dir/data.csv?X-Amz-Signature=s3cr3t", b"csv")
    url = f"simplecache::memory://{mem_root}/dir/data.csv?X-Amz-Signature=s3cr3t"
    with fsspec.open(url, same_names=True, cache_storage=str(tmp_path / "a")) as f:
        assert f.read() == b"csv"
    assert entries(str(tmp_path / "a")) == ["data.csv"]
    own = BasenameCacheMapper(directory_levels=1)
    with fsspec.open(url, cache_mapper=own, cache_storage=str(tmp_path / "b")) as f:
        assert f.read() == b"csv"
    assert entries(str(tmp_path / "b")) == ["dir_@_data.csv"]
    with pytest.raises(ValueError, match="same_names"):
        fsspec.filesystem(
            "simplecache", target_protocol="memory", same_names=True, cache_mapper=own
        )


def test_read_only_storage_is_used_and_never_written(
    memfs: Any, mem_root: str, tmp_path: Path
) -> None:
    memfs.pipe({f"{mem_root}/a": b"A", f"{mem_root}/b": b"B"})
    ro, rw = str(tmp_path / "ro"), str(tmp_path / "rw")
    seed = fsspec.filesystem("simplecache", target_protocol="memory", cache_storage=ro)
    assert seed.cat(f"{mem_root}/a") == b"A"
    memfs.pipe(f"{mem_root}/a", b"changed")
    fs = fsspec.filesystem("simplecache", target_protocol="memory", cache_storage=[ro, rw])
    assert fs.cat(f"{mem_root}/a?v=1") == b"A"
    assert fs.cat(f"{mem_root}/b") == b"B"
    assert len(entries(ro)) == 1
    assert len(entries(rw)) == 1
    assert cache_stats(fs) == CacheStats(hits=1, misses=1, entries=1, bytes=1)


def test_write_through_uploads_and_updates_the_entry(
    memfs: Any, mem_root: str, cache_dir: str
) -> None:
    memfs.pipe(f"{mem_root}/f", b"old")
    fs = fsspec.filesystem("simplecache", target_protocol="memory", cache_storage=cache_dir)
    assert fs.cat(f"{mem_root}/f") == b"old"
    writer = fs.open(f"memory://{mem_root}/f?x=1", "wb")
    writer.write(b"new")
    writer.close()
    memfs.pipe(f"{mem_root}/f?x=1", b"remote")
    writer.close()  # a second close uploads nothing
    assert memfs.cat(f"{mem_root}/f?x=1") == b"remote"
    memfs.pipe(f"{mem_root}/f?x=1", b"new")
    # The upload goes to the original path; the one cache entry now holds the new data.
    assert memfs.cat(f"{mem_root}/f?x=1") == b"new"
    assert fs.cat(f"{mem_root}/f") == b"new"
    with fs.open(f"{mem_root}/f", "ab") as f:
        f.write(b"+more")
    assert memfs.cat(f"{mem_root}/f") == b"new+more"
    with fs.open(f"{mem_root}/fresh", "ab") as f:
        f.write(b"appended")
    assert memfs.cat(f"{mem_root}/fresh") == b"appended"
    with fs.open(f"{mem_root}/f", "r+b") as f:
        f.write(b"N")
    assert memfs.cat(f"{mem_root}/f") == b"New+more"
    with pytest.raises(FileNotFoundError):
        fs.open(f"{mem_root}/absent", "r+b")
    fs.pipe(f"{mem_root}/piped", b"piped")
    assert memfs.cat(f"{mem_root}/piped") == b"piped"
    assert not [n for n in entries(cache_dir) if n.startswith(".partial")]
    assert cache_stats(fs).entries == 3


def test_failed_upload_keeps_the_old_entry(tmp_path: Path, cache_dir: str) -> None:
    (tmp_path / "f").write_bytes(b"old")
    fs = fsspec.filesystem("simplecache", target_protocol="file", cache_storage=cache_dir)
    assert fs.cat(str(tmp_path / "f")) == b"old"
    f = fs.open(str(tmp_path / "missing-dir" / "g"), "wb")
    f.write(b"never uploaded")
    with pytest.raises(FileNotFoundError):
        f.close()
    assert len(entries(cache_dir)) == 1
    assert cache_stats(fs).entries == 1


def test_transactions_commit_and_roll_back(memfs: Any, mem_root: str, cache_dir: str) -> None:
    memfs.pipe(f"{mem_root}/f", b"old")
    fs = fsspec.filesystem("simplecache", target_protocol="memory", cache_storage=cache_dir)
    with fs.transaction:
        with fs.open(f"{mem_root}/t", "wb") as f:
            f.write(b"tx")
        assert not memfs.exists(f"{mem_root}/t")
        assert fs.cat(f"{mem_root}/t") == b"tx"  # read your own writes, as fsspec does
    assert memfs.cat(f"{mem_root}/t") == b"tx"
    with pytest.raises(RuntimeError), fs.transaction:  # noqa: PT012
        with fs.open(f"{mem_root}/f", "wb") as f:
            f.write(b"rolled back")
        unclosed = fs.open(f"{mem_root}/u", "wb")
        unclosed.write(b"never")
        raise RuntimeError
    assert memfs.cat(f"{mem_root}/f") == b"old"
    assert fs.cat(f"{mem_root}/f") == b"old"
    assert not memfs.exists(f"{mem_root}/u")
    assert not [n for n in entries(cache_dir) if n.startswith(".partial")]


def test_open_files_and_open_local(memfs: Any, mem_root: str, cache_dir: str) -> None:
    memfs.pipe({f"{mem_root}/a": b"A", f"{mem_root}/b": b"B"})
    urls = [f"simplecache::memory://{mem_root}/a", f"simplecache::memory://{mem_root}/b"]
    paths = fsspec.open_local(urls, cache_storage=cache_dir)
    assert [Path(p).read_bytes() for p in paths] == [b"A", b"B"]
    assert all(os.path.dirname(p) == cache_dir for p in paths)
    targets = [f"simplecache::memory://{mem_root}/w1", f"simplecache::memory://{mem_root}/w2"]
    with fsspec.open_files(targets, "wb", cache_storage=cache_dir) as files:
        for i, f in enumerate(files):
            f.write(b"w%d" % i)
    assert memfs.cat([f"{mem_root}/w1", f"{mem_root}/w2"]) == {
        f"{mem_root}/w1": b"w0",
        f"{mem_root}/w2": b"w1",
    }
    with fsspec.open_files(targets, "rb", cache_storage=cache_dir) as files:
        assert [f.read() for f in files] == [b"w0", b"w1"]


def test_entry_and_byte_caps_evict_least_recently_used(
    memfs: Any, mem_root: str, cache_dir: str
) -> None:
    for i in range(6):
        memfs.pipe(f"{mem_root}/f{i}", bytes(10))
    fs = fsspec.filesystem(
        "simplecache",
        target_protocol="memory",
        cache_storage=cache_dir,
        max_entries=3,
        max_bytes="25",
    )
    for i in (0, 1):
        fs.cat(f"{mem_root}/f{i}")
    fs.cat(f"{mem_root}/f0?again")  # f0 is now the most recent; f1 goes first
    fs.cat(f"{mem_root}/f2")
    names = {fs._mapper(f"{mem_root}/f{i}"): i for i in range(6)}
    assert sorted(names[n] for n in entries(cache_dir)) == [0, 2]
    assert cache_stats(fs) == CacheStats(hits=1, misses=3, entries=2, bytes=20)
    big = fsspec.filesystem(
        "simplecache", target_protocol="memory", max_bytes=5, cache_storage=cache_dir + "-big"
    )
    assert big.cat(f"{mem_root}/f3") == bytes(10)  # over the cap alone: kept until the next
    assert big.cat(f"{mem_root}/f4") == bytes(10)
    assert cache_stats(big).entries == 1
    with pytest.raises(ValueError, match="limits"):
        fsspec.filesystem("simplecache", target_protocol="memory", max_entries=-1)
    unbounded = fsspec.filesystem(
        "simplecache",
        target_protocol="memory",
        max_entries=None,
        max_bytes=None,
        cache_storage=cache_dir + "-unbounded",
    )
    for i in range(6):
        unbounded.cat(f"{mem_root}/f{i}")
    assert cache_stats(unbounded).entries == 6


def test_existing_cache_directory_is_indexed_and_capped(
    memfs: Any, mem_root: str, cache_dir: str
) -> None:
    for i in range(4):
        memfs.pipe(f"{mem_root}/f{i}", b"abc")
    first = fsspec.filesystem("simplecache", target_protocol="memory", cache_storage=cache_dir)
    for i in range(4):
        first.cat(f"{mem_root}/f{i}")
    Path(cache_dir, ".partial-leftover").write_bytes(b"x")
    Path(cache_dir, "cache").write_text("{}")
    again = fsspec.filesystem(
        "simplecache", target_protocol="memory", cache_storage=cache_dir, max_entries=2
    )
    # The directory's counts are shared; the new limit applies to it at once.
    assert cache_stats(again) == CacheStats(misses=4, entries=2, bytes=6)
    assert again.cache_size() == 6


def test_pop_clear_and_expire(memfs: Any, mem_root: str, cache_dir: str) -> None:
    memfs.pipe({f"{mem_root}/a": b"A", f"{mem_root}/b": b"BB"})
    fs = fsspec.filesystem("simplecache", target_protocol="memory", cache_storage=cache_dir)
    fs.cat([f"{mem_root}/a", f"{mem_root}/b"])
    fs.pop_from_cache(f"memory://{mem_root}/a?x=1")
    assert cache_stats(fs).entries == 1
    assert len(entries(cache_dir)) == 1
    fs.clear_expired_cache(0)
    assert entries(cache_dir) == []
    assert cache_stats(fs).entries == 0
    fs.cat(f"{mem_root}/a")
    fs.clear_cache()
    assert entries(cache_dir) == []
    assert cache_stats(fs).bytes == 0
    assert fs.cat(f"{mem_root}/a") == b"A"
    assert cache_stats(fs).entries == 1


def test_cache_stats_of_all_shared_instances(memfs: Any, mem_root: str, tmp_path: Path) -> None:
    memfs.pipe(f"{mem_root}/a", b"A")
    for name in ("one", "two"):
        fs = fsspec.filesystem(
            "simplecache", target_protocol="memory", cache_storage=str(tmp_path / name)
        )
        fs.cat(f"{mem_root}/a")
        fs.cat(f"{mem_root}/a")
    assert cache_stats() == CacheStats(hits=2, misses=2, entries=2, bytes=2)
    with pytest.raises(TypeError, match="MemoryFileSystem"):
        cache_stats(memfs)


def test_strip_protocol_keeps_trailing_slashes_of_urls() -> None:
    strip = CanonicalSimpleCacheFileSystem._strip_protocol
    assert strip("simplecache::https://h/a?r=/b/") == "https://h/a?r=/b/"
    assert strip("simplecache://") == ""
    assert strip(Path("/x/y")) == "/x/y"
