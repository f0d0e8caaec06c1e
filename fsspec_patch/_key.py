"""Canonical cache keys: one key for every URL variant of the same logical file."""

from __future__ import annotations

import re
from collections.abc import Iterable
from operator import itemgetter
from urllib.parse import quote_from_bytes, unquote_to_bytes

__all__ = [
    "DEFAULT_MAJOR_PARAMS",
    "SIGNING_PARAMS",
    "canonical_key",
    "normalise_major_params",
]

DEFAULT_MAJOR_PARAMS: tuple[str, ...] = ("dataset", "version")
"""Query parameters that select a different file, so they stay in the key."""

SIGNING_PARAMS: frozenset[str] = frozenset(
    {
        "x-amz-algorithm",
        "x-amz-credential",
        "x-amz-date",
        "x-amz-expires",
        "x-amz-security-token",
        "x-amz-signature",
        "x-amz-signedheaders",
        "x-goog-algorithm",
        "x-goog-credential",
        "x-goog-date",
        "x-goog-expires",
        "x-goog-signature",
        "x-goog-signedheaders",
        "sig",
    }
)
"""Parameters of pre-signed URLs: always minor, never in a key, a file name or a log."""

# Schemes whose host is a DNS name (case-insensitive) and whose default port is known.
# Other schemes (s3://Bucket, memory://Dir) keep their "host" untouched: it is a name.
_DEFAULT_PORTS = {"http": "80", "https": "443", "ws": "80", "wss": "443", "ftp": "21"}

_URL = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*)://([^/]*)(.*)\Z", re.DOTALL)
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
# Characters a path may hold as they are: unreserved, sub-delims, ":", "@", "/", brackets.
_SAFE = r"A-Za-z0-9\-._~!$&'()*+,;=:@/\[\]"
_PLAIN_HOST = re.compile(r"[a-z0-9.\-]*")
_NEEDS_FIX = re.compile(rf"[^{_SAFE}]")
_FIX = re.compile(rf"%[0-9A-Fa-f]{{2}}|[^{_SAFE}%]+|%")
_ESCAPE = re.compile(r"%[0-9a-f]{2}")


def normalise_major_params(params: str | Iterable[str] | None) -> tuple[str, ...]:
    """Return the sorted, lower-cased major parameter names (a str is comma-separated)."""
    if params is None:
        return DEFAULT_MAJOR_PARAMS
    names = params.split(",") if isinstance(params, str) else params
    cleaned = {name.strip().lower() for name in names} - {""}
    secret = cleaned & SIGNING_PARAMS
    if secret:
        raise ValueError(f"signing parameters cannot be major: {sorted(secret)}")
    return tuple(sorted(cleaned))


def canonical_key(url: str, major_params: str | Iterable[str] | None = None) -> str:
    """Return the cache key of ``url``: equal for URL variants of the same file.

    Rules, applied to each ``::``-separated part of a chained URL on its own:

    - the fragment (``#...``) is dropped;
    - scheme is lower-cased; for http, https, ws, wss and ftp the host is lower-cased
      (after percent-decoding), a Unicode host is written in its IDNA ``xn--`` form
      when that is unambiguous, and the default port (``:80``, ``:443``, ``:21``) or an
      empty port is dropped;
    - percent-encoding is normalised (RFC 3986 section 6.2.2): escapes of unreserved
      characters are decoded, other escapes upper-cased, and characters not allowed
      in a URI (spaces, unicode) are UTF-8 percent-encoded; ``%2F`` stays distinct
      from ``/`` in the path;
    - ``.`` and ``..`` segments are removed, never rising above the root;
    - query parameters other than the major ones (default ``version`` and
      ``dataset``, matched case-insensitively) are dropped; kept parameters are
      form-decoded (``+`` is a space, ``?a`` equals ``?a=``), re-encoded and sorted
      by name, repeated names keeping the order of their values.

    Examples:
        >>> canonical_key("HTTPS://Example.COM:443/a/./b/../c?b=2&version=3&a=1#top")
        'https://example.com/a/c?version=3'
    """
    majors = frozenset(normalise_major_params(major_params))
    return canonicalise(url, majors)


def canonicalise(url: str, majors: frozenset[str]) -> str:
    """Return the canonical key of ``url`` keeping the query names in ``majors``."""
    if "::" not in url:
        return _canonical_part(url, majors)
    return "::".join(_canonical_part(part, majors) for part in _split_chain(url))


def _split_chain(url: str) -> list[str]:
    # "::" separates chained URLs, except inside an IPv6 literal such as [::1].
    parts: list[str] = []
    for piece in url.split("::"):
        if parts and parts[-1].count("[") > parts[-1].count("]"):
            parts[-1] += "::" + piece
        else:
            parts.append(piece)
    return parts


def _canonical_part(part: str, majors: frozenset[str]) -> str:
    part = part.partition("#")[0]
    part, has_query, query = part.partition("?")
    match = _URL.match(part)
    if match is None:
        base = _path(part)
    else:
        scheme = match[1].lower()
        path = _path(match[3]) or ("/" if scheme in _DEFAULT_PORTS else "")
        base = f"{scheme}://{_authority(scheme, match[2])}{path}"
    kept = _query(query, majors) if has_query else ""
    return f"{base}?{kept}" if kept else base


def _authority(scheme: str, authority: str) -> str:
    if _PLAIN_HOST.fullmatch(authority):
        return authority
    userinfo, at, hostport = authority.rpartition("@")
    if hostport.startswith("[") and "]" in hostport:
        end = hostport.index("]") + 1
        host, port = hostport[:end], hostport[end:]
    else:
        host, colon, port = hostport.partition(":")
        port = colon + port
    default_port = _DEFAULT_PORTS.get(scheme)
    host = _percent(host) if default_port is None else _dns_host(host)
    if port.startswith(":") and port[1:].isdigit() and port[1:].isascii():
        number = str(int(port[1:]))
        port = "" if number == default_port else ":" + number
    elif port == ":":
        port = ""
    return f"{_percent(userinfo)}{at}{host}{port}"


def _dns_host(host: str) -> str:
    # Decoded before lower-casing, so "%41" and "a" agree; escapes keep upper-case hex.
    text = _percent(host)
    if "%" not in text:
        return text.lower()
    text = _ESCAPE.sub(_upper, text.lower())
    return _punycode(text) or text


def _punycode(host: str) -> str | None:
    # A Unicode name and its "xn--" form name the same DNS host. The stdlib codec is
    # IDNA 2003, which maps some names ("ß" to "ss") where IDNA 2008 does not: only a
    # name that comes back unchanged is converted, and only to letters, digits, "-", ".".
    try:
        name = unquote_to_bytes(host).decode("utf-8").lower()
        ascii_name = name.encode("idna").decode("ascii")
        if ascii_name.encode("ascii").decode("idna") != name:
            return None
    except UnicodeError:
        return None
    return ascii_name if _PLAIN_HOST.fullmatch(ascii_name) else None


def _upper(match: re.Match[str]) -> str:
    return match[0].upper()


def _path(path: str) -> str:
    path = _percent(path)
    return _remove_dot_segments(path) if "/." in path or path[:1] == "." else path


def _percent(text: str) -> str:
    if "%" not in text and _NEEDS_FIX.search(text) is None:
        return text
    return _FIX.sub(_fix_one, text)


def _fix_one(match: re.Match[str]) -> str:
    text = match[0]
    if len(text) == 3 and text[0] == "%":
        char = chr(int(text[1:], 16))
        return char if char in _UNRESERVED else text.upper()
    return "".join(f"%{byte:02X}" for byte in text.encode("utf-8", "surrogatepass"))


def _remove_dot_segments(path: str) -> str:
    # RFC 3986 section 5.2.4 on whole segments; ".." at the root stays at the root.
    rooted = path.startswith("/")
    segments = path.split("/")[1:] if rooted else path.split("/")
    out: list[str] = []
    for segment in segments:
        if segment == "..":
            if out:
                out.pop()
        elif segment != ".":
            out.append(segment)
    if segments[-1] in (".", ".."):
        out.append("")
    return ("/" if rooted else "") + "/".join(out)


def _query(query: str, majors: frozenset[str]) -> str:
    kept: list[tuple[str, str]] = []
    for item in query.split("&"):
        name, _, value = item.partition("=")
        plain = (
            name
            if "%" not in name and "+" not in name
            else _form_decode(name).decode("utf-8", "surrogateescape")
        )
        if plain.lower() in majors:
            kept.append((_form_encode(name), _form_encode(value)))
    kept.sort(key=itemgetter(0))
    return "&".join(f"{name}={value}" for name, value in kept)


def _form_decode(text: str) -> bytes:
    return unquote_to_bytes(text.replace("+", " ").encode("utf-8", "surrogatepass"))


def _form_encode(text: str) -> str:
    return quote_from_bytes(_form_decode(text), "")
