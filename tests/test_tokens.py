"""Bearer header parsing (RFC 6750) and token helpers, with Hypothesis over raw bytes."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from asgi_kit import AnonymousReason, bearer_token, generate_token, is_b64token, www_authenticate

TOKEN = "abc-DEF_123.~+/=="


@pytest.mark.parametrize(
    ("value", "token", "error"),
    [
        (b"Bearer abc", "abc", None),
        (b"bearer abc", "abc", None),
        (b"BEARER abc", "abc", None),
        (b"bEaReR   abc", "abc", None),
        (b"  Bearer abc  ", "abc", None),
        (b"Bearer " + TOKEN.encode(), TOKEN, None),
        (b"Bearer", None, AnonymousReason.EMPTY),
        (b"Bearer   ", None, AnonymousReason.EMPTY),
        (b"", None, AnonymousReason.OTHER_SCHEME),
        (b"Basic YWxhZGRpbjpvcGVuc2VzYW1l", None, AnonymousReason.OTHER_SCHEME),
        (b"Bearerabc", None, AnonymousReason.OTHER_SCHEME),
        (b"Bearer\tabc", None, AnonymousReason.MALFORMED),
        (b"Bearer a b", None, AnonymousReason.MALFORMED),
        (b"Bearer abc\tdef", None, AnonymousReason.MALFORMED),
        (b"Bearer a=b", None, AnonymousReason.MALFORMED),
        (b"Bearer \xe9t\xe9", None, AnonymousReason.MALFORMED),
        (b"Bearer \xff\xfe", None, AnonymousReason.MALFORMED),
        (b"Bearer " + b"a" * 10_000, None, AnonymousReason.MALFORMED),
        (b"Bearer " + b"a" * 65_536, None, AnonymousReason.MALFORMED),
    ],
)
def test_parse(value: bytes, token: str | None, error: AnonymousReason | None) -> None:
    assert bearer_token([(b"authorization", value)]) == (token, error)


def test_no_header_and_other_headers() -> None:
    assert bearer_token([]) == (None, AnonymousReason.MISSING)
    assert bearer_token([(b"x-authorization", b"Bearer abc")]) == (None, AnonymousReason.MISSING)


def test_two_authorization_headers_are_refused_even_if_both_are_valid() -> None:
    headers = [(b"authorization", b"Bearer abc"), (b"authorization", b"Bearer abc")]
    assert bearer_token(headers) == (None, AnonymousReason.REPEATED)


def test_challenges() -> None:
    assert www_authenticate(None) == "Bearer"
    assert www_authenticate(AnonymousReason.MISSING) == "Bearer"
    assert www_authenticate(AnonymousReason.EMPTY) == "Bearer"
    assert www_authenticate(AnonymousReason.MALFORMED) == 'Bearer error="invalid_token"'
    assert www_authenticate(AnonymousReason.INVALID) == 'Bearer error="invalid_token"'


def test_generated_tokens_are_valid_and_distinct() -> None:
    tokens = {generate_token() for _ in range(100)}
    assert len(tokens) == 100
    assert all(is_b64token(t) and len(t) >= 43 for t in tokens)


@pytest.mark.parametrize("bad", ["", "a b", "é", "a" * 2049, "=abc", "a=b", "a\n"])
def test_is_b64token_rejects(bad: str) -> None:
    assert not is_b64token(bad)


@given(st.lists(st.tuples(st.binary(max_size=40), st.binary(max_size=300)), max_size=4))
def test_any_header_bytes_give_a_clear_outcome(headers: list[tuple[bytes, bytes]]) -> None:
    token, error = bearer_token(headers)
    assert (token is None) != (error is None)
    if token is not None:
        assert is_b64token(token)
        values = [v for n, v in headers if n == b"authorization"]
        assert len(values) == 1
        assert values[0].strip(b" \t").endswith(token.encode())


@given(st.from_regex(r"[A-Za-z0-9\-._~+/]{1,100}={0,2}", fullmatch=True), st.integers(1, 5))
def test_every_valid_token_round_trips(token: str, spaces: int) -> None:
    header = b"Bearer" + b" " * spaces + token.encode()
    assert bearer_token([(b"authorization", header)]) == (token, None)


B64_BYTES = st.binary(max_size=60) | st.text("ab=+/ \t-.~_9", max_size=60).map(str.encode)


@given(st.sampled_from([b"Bearer ", b"bearer ", b"BEARER ", b"Bearer  "]), B64_BYTES)
def test_fast_and_general_parsers_agree_with_the_grammar(prefix: bytes, rest: bytes) -> None:
    # An oracle written straight from RFC 6750 section 2.1 (plus surrounding white space).
    oracle = re.fullmatch(rb"(?i:bearer) +([A-Za-z0-9\-._~+/]+=*)[ \t]*", prefix + rest)
    token, _ = bearer_token([(b"authorization", prefix + rest)])
    expected = oracle.group(1).decode() if oracle else None
    assert token == expected
