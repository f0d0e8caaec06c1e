"""CanonicalCacheMapper: file names, memo bound, stable identity."""

from __future__ import annotations

import pickle

import pytest
from fsspec.implementations.cache_mapper import BasenameCacheMapper, HashCacheMapper

from fsspec_patch import DEFAULT_KEY_CACHE_SIZE, CanonicalCacheMapper


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
