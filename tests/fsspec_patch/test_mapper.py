"""CanonicalCacheMapper: file names, memo bound, stable identity."""

from __future__ import annotations

import pickle
from typing import Any

import fsspec
import pytest
from cache_helpers import entries
from fsspec.implementations.cache_mapper import BasenameCacheMapper, HashCacheMapper

from fsspec_patch import DEFAULT_KEY_CACHE_SIZE, CacheStats, CanonicalCacheMapper, cache_stats


def test_variants_map_to_one_fixed_length_name() -> None:
    mapper = CanonicalCacheMapper()
    names = {mapper(u) for u in ("https://h/f?b=2&a=1", "https://H/./f?a=1#x", "https://h/f")}
    assert len(names) == 1
    (name,) = names
    assert len(name) == 64
    assert mapper("https://h/f?version=2") != name


def test_very_long_urls_hash_to_short_names_without_memoising() -> None:
    mapper = CanonicalCacheMapper()
    url = "https://h/" + "a" * 100_000 + "?version=1&pad=" + "b" * 100_000
    assert len(mapper(url)) == 64
    assert mapper(url) == mapper(url + "&more=1")
    assert mapper.memo_size() == 0


def test_memo_is_an_lru_of_bounded_size() -> None:
    mapper = CanonicalCacheMapper(key_cache_size=8)
    names = [mapper(f"/f?i={i}") for i in range(100)]
    assert len(set(names)) == 1
    assert mapper.memo_size() == 8


def test_memo_can_be_disabled() -> None:
    mapper = CanonicalCacheMapper(key_cache_size=0)
    assert mapper("/f?x=1") == mapper("/f")
    assert mapper.memo_size() == 0
    with pytest.raises(ValueError, match="key_cache_size"):
        CanonicalCacheMapper(key_cache_size=-1)


def test_inner_mapper_receives_the_canonical_key() -> None:
    mapper = CanonicalCacheMapper(inner=BasenameCacheMapper())
    assert mapper("https://h/dir/data.csv?X-Amz-Signature=s3cr3t#x") == "data.csv"
    assert mapper("https://h/dir/data.csv?version=2") == "data.csv?version=2"


@pytest.mark.parametrize(
    "url",
    [
        "https://h/dir/" + "a" * 252 + ".csv",  # 256 bytes: over NAME_MAX
        "https://h/dir/" + "%C3%A9" * 43,  # 258 bytes
        "https://h/dir/",
        "https://h",
        "https://h/dir/cache",
        "https://h/dir/.partial-x",
    ],
)
def test_inner_names_no_directory_can_hold_become_the_hash(url: str) -> None:
    mapper = CanonicalCacheMapper(inner=BasenameCacheMapper())
    assert mapper(url) == CanonicalCacheMapper()(url)
    assert len(mapper(url)) == 64


def test_same_names_with_a_basename_over_255_bytes(
    memfs: Any, mem_root: str, cache_dir: str
) -> None:
    fits, too_long = "b" * 251 + ".csv", "b" * 252 + ".csv"
    memfs.pipe({f"{mem_root}/{fits}": b"fits", f"{mem_root}/{too_long}": b"hashed"})
    for name, data in ((fits, b"fits"), (too_long, b"hashed")):
        url = f"simplecache::memory://{mem_root}/{name}"
        with fsspec.open(url, same_names=True, cache_storage=cache_dir) as f:
            assert f.read() == data
    fs = fsspec.filesystem(
        "simplecache", target_protocol="memory", same_names=True, cache_storage=cache_dir
    )
    assert fs.cat(f"{mem_root}/{too_long}?t=1") == b"hashed"
    hashed = CanonicalCacheMapper()(f"{mem_root}/{too_long}")
    assert entries(cache_dir) == sorted([fits, hashed])
    assert cache_stats(fs) == CacheStats(hits=1, misses=2, entries=2, bytes=10)


def test_key_method_uses_the_mappers_major_params() -> None:
    mapper = CanonicalCacheMapper(major_params="part")
    assert mapper.key("https://h/f?part=1&version=2") == "https://h/f?part=1"
    assert mapper.major_params == ("part",)


def test_identity_depends_on_settings_only() -> None:
    one = CanonicalCacheMapper(["version", "dataset"], 10, HashCacheMapper())
    two = CanonicalCacheMapper(("dataset", "VERSION"), 10, HashCacheMapper())
    assert one == two
    assert hash(one) == hash(two)
    assert repr(one) == repr(two)
    assert "0x" not in repr(one)
    assert one != CanonicalCacheMapper(["version"], 10, HashCacheMapper())
    assert one != CanonicalCacheMapper(["version", "dataset"], 11, HashCacheMapper())
    assert one != CanonicalCacheMapper(["version", "dataset"], 10)
    assert one != "CanonicalCacheMapper"
    assert repr(CanonicalCacheMapper()) == (
        "CanonicalCacheMapper(major_params=('dataset', 'version'), "
        f"key_cache_size={DEFAULT_KEY_CACHE_SIZE}, inner=None)"
    )


def test_pickles_with_its_settings() -> None:
    mapper = CanonicalCacheMapper("version", 5, BasenameCacheMapper(1))
    mapper("/a/b?version=1")
    copy = pickle.loads(pickle.dumps(mapper))  # noqa: S301 (our own bytes)
    assert copy == mapper
    assert copy("/a/b?version=1&x=2") == mapper("/a/b?version=1")
