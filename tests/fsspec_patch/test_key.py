"""canonical_key: documented rules, edge cases and Hypothesis properties."""

from __future__ import annotations

import random
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fsspec_patch import DEFAULT_MAJOR_PARAMS, SIGNING_PARAMS, canonical_key

SAME = [
    ("https://h/f?a=1&b=2", "https://h/f?b=2&a=1"),
    ("https://h/f?version=1&dataset=x", "https://h/f?dataset=x&version=1"),
    ("https://h/f?version=", "https://h/f?version"),
    ("https://h/f?version=a+b", "https://h/f?version=a%20b"),
    ("https://h/f?version=a/b", "https://h/f?version=a%2Fb"),
    ("https://h/f?t=1700000000&cb=x", "https://h/f"),
    ("https://h/f#part", "https://h/f"),
    ("https://h/f?", "https://h/f"),
    ("https://h/f?&&version=1&", "https://h/f?version=1"),
    ("/a/%2fb", "/a/%2Fb"),
    ("http://[::1]:80/x", "http://[::1]/x"),
    ("http://[::1]/x", "HTTP://[::1]/x"),
    ("https://H.example.COM:443/x", "https://h.example.com/x"),
    ("http://h:80/x", "http://h/x"),
    ("http://h:/x", "http://h/x"),
    ("http://h:0080/x", "http://h/x"),
    ("ftp://h:21/x", "ftp://h/x"),
    ("http://h", "http://h/"),
    ("/../../a", "/a"),
    ("http://h/../a/./b/../c", "http://h/a/c"),
    ("/a/b/.", "/a/b/"),
    ("/a/b/..", "/a/"),
    ("/a/%2E%2E/b", "/b"),
    ("/caf\u00e9", "/caf%C3%A9"),
    ("/caf%c3%a9", "/caf%C3%A9"),
    ("/a b", "/a%20b"),
    ("/%7Euser/%41", "/~user/A"),
    ("zip://a.csv::https://H/x.zip?X-Amz-Signature=s", "zip://a.csv::https://h/x.zip"),
    ("https://h/f?versionId=123", "https://h/f"),
    ("http://%41.com/x", "http://a.com/x"),
    ("http://%41.COM/x", "http://A.com/x"),
    ("http://b\u00fccher.example/", "http://xn--bcher-kva.example/"),
    ("http://B%C3%9Ccher.example/", "http://XN--BCHER-KVA.example/"),
    ("https://\u2665.example/", "https://xn--g6h.example/"),
]

DIFFERENT = [
    ("/a%2Fb", "/a/b"),
    ("/a+b", "/a%2Bb"),
    ("https://h/f?version=a+b", "https://h/f?version=a%2Bb"),
    ("https://h/f?version=1&version=2", "https://h/f?version=2&version=1"),
    ("https://h/f?version=1", "https://h/f?version=2"),
    ("https://h/f?version=1", "https://h/f"),
    ("https://h/f?dataset=a", "https://h/f?version=a"),
    ("https://h/A", "https://h/a"),
    ("https://h/a/", "https://h/a"),
    ("https://h:80/x", "https://h/x"),
    ("http://h:8080/x", "http://h/x"),
    ("http://[::1]:8080/x", "http://[::1]/x"),
    ("s3://Bucket/k", "s3://bucket/k"),
    ("/a//b", "/a/b"),
    ("https://h/f?Version=1", "https://h/f?version=1"),
    # IDNA 2003 maps these to "strasse", IDNA 2008 and browsers keep them apart.
    ("http://stra\u00dfe.de/", "http://strasse.de/"),
    ("http://stra%C3%9Fe.de/", "http://strasse.de/"),
    ("http://a%2F\u00fc.de/", "http://a/\u00fc.de/"),
    ("s3://B\u00fccket/k", "s3://xn--bcket-kva/k"),
]


@pytest.mark.parametrize(("left", "right"), SAME)
def test_variants_share_a_key(left: str, right: str) -> None:
    assert canonical_key(left) == canonical_key(right)


@pytest.mark.parametrize(("left", "right"), DIFFERENT)
def test_different_files_keep_different_keys(left: str, right: str) -> None:
    assert canonical_key(left) != canonical_key(right)


@pytest.mark.parametrize(
    ("url", "key"),
    [
        (
            "HTTPS://Example.COM:443/a/./b/../c?b=2&version=3&a=1#top",
            "https://example.com/a/c?version=3",
        ),
        ("https://h/f?version=b&dataset=z&version=a", "https://h/f?dataset=z&version=b&version=a"),
        ("https://h/f?version", "https://h/f?version="),
        ("https://h/f?version=a+b%2f", "https://h/f?version=a%20b%2F"),
        ("https://h/f?Version=1", "https://h/f?Version=1"),
        ("http://u:p%3a@H:8080/x", "http://u:p%3A@h:8080/x"),
        ("http://[::1]:0443/x", "http://[::1]:443/x"),
        ("http://[::1/x", "http://[::1/x"),
        ("http://h:port/x", "http://h:port/x"),
        ("s3://Bucket/key?versionId=7", "s3://Bucket/key"),
        ("memory://dir", "memory://dir"),
        ("bucket/a/../../b", "b"),
        ("%", "%25"),
        ("..", ""),
        ("", ""),
        ("/\ud800", "/%ED%A0%80"),
        ("a::b::c?version=1", "a::b::c?version=1"),
        ("simplecache::http://[::1]/x?sig=abc", "simplecache::http://[::1]/x"),
        ("http://%41%2D%62.COM/", "http://a-b.com/"),
        ("http://\u00fc.de./x", "http://xn--tda.de./x"),
        ("http://[FE80::1%25Eth0]/", "http://[fe80::1%25eth0]/"),
        # Labels IDNA cannot encode keep their percent-encoded form, and never raise.
        ("http://a..\u00fc/", "http://a..%C3%BC/"),
        ("http://" + "\u00fc" * 64 + ".de/", "http://" + "%C3%BC" * 64 + ".de/"),
        ("http://%FF.de/", "http://%FF.de/"),
        ("http://a%2f\u00fc.de/", "http://a%2F%C3%BC.de/"),
        ("http://stra\u00dfe.de/", "http://stra%C3%9Fe.de/"),
    ],
)
def test_documented_examples(url: str, key: str) -> None:
    assert canonical_key(url) == key


def test_signing_parameters_never_reach_the_key() -> None:
    url = "https://h/f?" + "&".join(
        f"{name.upper()}=secret{i}" for i, name in enumerate(sorted(SIGNING_PARAMS))
    )
    assert "secret" not in canonical_key(url + "&version=1")
    assert canonical_key(url) == "https://h/f"


def test_signing_parameters_cannot_be_made_major() -> None:
    with pytest.raises(ValueError, match="x-amz-signature"):
        canonical_key("https://h/f", major_params=["version", "X-Amz-Signature"])


def test_major_params_configurable_as_list_or_comma_string() -> None:
    url = "https://h/f?part=2&version=1"
    assert canonical_key(url) == "https://h/f?version=1"
    assert canonical_key(url, major_params=["PART"]) == "https://h/f?part=2"
    assert canonical_key(url, major_params=" part , version,") == url
    assert canonical_key(url, major_params=[]) == "https://h/f"
    assert DEFAULT_MAJOR_PARAMS == ("dataset", "version")


# --- Hypothesis properties -------------------------------------------------------------

SEGMENT = st.text(
    st.characters(exclude_characters="/?#%:[]", exclude_categories=("Cs",)),
    min_size=1,
    max_size=8,
).filter(lambda s: s not in {".", ".."})
NAME = st.text(string.ascii_lowercase + "_-", min_size=1, max_size=6)
VALUE = st.text(string.ascii_letters + string.digits + "-._~", max_size=6)
HOST = st.from_regex(r"[a-z][a-z0-9]{0,8}(\.[a-z]{2,4})?", fullmatch=True)
MINOR = NAME.filter(lambda n: n not in DEFAULT_MAJOR_PARAMS) | st.sampled_from(
    sorted(SIGNING_PARAMS)
)
MAJOR = st.sampled_from(DEFAULT_MAJOR_PARAMS)


@st.composite
def urls(draw: st.DrawFn) -> tuple[str, list[str], list[tuple[str, str]]]:
    """A base URL (with or without scheme and host), its path segments and major params."""
    segments = draw(st.lists(SEGMENT, min_size=1, max_size=4))
    base = draw(st.sampled_from(["https://", "http://", ""]))
    prefix = base + draw(HOST) if base else ""
    majors = draw(st.lists(st.tuples(MAJOR, VALUE), max_size=3))
    return prefix, segments, majors


def _render(prefix: str, segments: list[str], params: list[tuple[str, str]]) -> str:
    query = "&".join(f"{n}={v}" for n, v in params)
    return f"{prefix}/{'/'.join(segments)}" + (f"?{query}" if query else "")


@settings(max_examples=300)
@given(st.text())
def test_idempotent_on_any_text(url: str) -> None:
    key = canonical_key(url)
    assert canonical_key(key) == key


@settings(max_examples=200)
@given(urls())
def test_idempotent_on_urls(parts: tuple[str, list[str], list[tuple[str, str]]]) -> None:
    key = canonical_key(_render(*parts))
    assert canonical_key(key) == key


@settings(max_examples=200)
@given(urls(), st.lists(st.tuples(MINOR, VALUE), max_size=4), st.randoms(use_true_random=False))
def test_invariant_under_order_minor_params_fragment_and_dots(
    parts: tuple[str, list[str], list[tuple[str, str]]],
    minors: list[tuple[str, str]],
    rnd: random.Random,
) -> None:
    prefix, segments, majors = parts
    original = canonical_key(_render(prefix, segments, majors))
    mixed = majors + minors
    rnd.shuffle(mixed)
    # Repeated names must keep the relative order of their values: reassign them in order.
    queues: dict[str, list[str]] = {}
    for name, value in majors:
        queues.setdefault(name, []).append(value)
    params = [(n, queues[n].pop(0)) if n in queues else (n, v) for n, v in mixed]
    dotted = [seg for s in segments for seg in ("x", "..", ".", s)]
    variant = _render(prefix, dotted, params) + "#fragment"
    assert canonical_key(variant) == original


@settings(max_examples=200)
@given(urls(), st.lists(SEGMENT, min_size=1, max_size=4))
def test_different_paths_give_different_keys(
    parts: tuple[str, list[str], list[tuple[str, str]]], other: list[str]
) -> None:
    prefix, segments, majors = parts
    if other != segments:
        assert canonical_key(_render(prefix, segments, majors)) != canonical_key(
            _render(prefix, other, majors)
        )


@settings(max_examples=200)
@given(urls(), MAJOR, VALUE, VALUE)
def test_different_major_values_give_different_keys(
    parts: tuple[str, list[str], list[tuple[str, str]]], name: str, one: str, two: str
) -> None:
    prefix, segments, _ = parts
    if one != two:
        assert canonical_key(_render(prefix, segments, [(name, one)])) != canonical_key(
            _render(prefix, segments, [(name, two)])
        )


HOST_PIECE = st.sampled_from(
    ["%2F", "%2f", "%41", "%C3%BC", "%FF", ".", "-", "xn--", "\u00df", "\u00dc", "\u2665", "A"]
) | st.characters(exclude_characters="/?#@:[]%", exclude_categories=("Cs",))


@settings(max_examples=300)
@given(st.lists(HOST_PIECE, max_size=12).map("".join))
def test_any_web_host_keys_without_error_and_stays_a_host(host: str) -> None:
    key = canonical_key(f"https://{host}/x")
    assert canonical_key(key) == key
    assert key.startswith("https://")
    assert key.endswith("/x")
    assert not set("/?#") & set(key[len("https://") : -len("/x")])
