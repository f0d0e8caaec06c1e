"""The device fields of a session (user agent, client address, ``Device``): one normalisation.

Every ``Session`` is built through it, so every store keeps the same value and none is
handed something its column or driver refuses (a NUL byte, a 60-character "address").
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

#: Longest user agent kept with a session; the rest is cut off.
MAX_USER_AGENT = 512
# C0 and C1 control characters and DEL (Unicode category Cc).
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def user_agent_field(value: str | None) -> str | None:
    """``value`` without control characters, at most ``MAX_USER_AGENT`` characters; or None."""
    if not value:
        return None
    cleaned = _CONTROL.sub("", value)[:MAX_USER_AGENT].strip()
    return cleaned or None


def ip_address_field(value: str | None) -> str | None:
    """``value`` as a real IPv4 or IPv6 address in its compressed form, else None.

    Anything else (a host name, ``"testclient"``, a proxy's list, garbage) is dropped
    rather than stored: the field tells a user which device a session is, and a value
    no one can trust is worse than none. An IPv6 zone (``%eth0``) is dropped too, and an
    IPv4-mapped IPv6 address (``::ffff:192.0.2.1``, from a dual-stack socket) is the IPv4
    address it carries (Python versions write the mapped form differently).
    """
    if not value:
        return None
    try:
        address = ipaddress.ip_address(value.strip().partition("%")[0])
    except ValueError:
        return None
    mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
    return str(address if mapped is None else mapped)


DEVICE_KINDS = ("desktop", "mobile", "tablet", "bot", "unknown")
"""What ``Device.kind`` says: the kinds of device a user recognises, and ``"unknown"``."""
#: Longest ``Device`` field kept (a label is short by nature; a store's column is this wide).
MAX_DEVICE_FIELD = 64


@dataclass(frozen=True, slots=True)
class Device:
    """A session's device as people name it, worked out once from its user agent at login.

    ``browser`` and ``os`` carry a major version when known (``"Firefox 133"``,
    ``"Windows 11"``); ``kind`` is one of ``DEVICE_KINDS``; ``label`` is what a list of
    sessions shows (``"Firefox on Windows"``, ``"Googlebot"``, ``"Unknown device"``).
    Every field is cleaned of control characters and cut to ``MAX_DEVICE_FIELD``.

    Examples:
        >>> Device("Firefox 133", "Windows 11", "desktop", "Firefox on Windows").label
        'Firefox on Windows'
    """

    browser: str | None
    """The browser, with its major version when known (``"Firefox 133"``); None if unknown."""
    os: str | None
    """The operating system, with its version when known (``"Windows 11"``); None if unknown."""
    kind: str
    """One of ``DEVICE_KINDS``: ``desktop``, ``mobile``, ``tablet``, ``bot`` or ``unknown``."""
    label: str
    """What a list of sessions shows, e.g. ``"Firefox on Windows"``."""

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "browser", _device_field(self.browser))
        set_(self, "os", _device_field(self.os))
        kind = self.kind if self.kind in DEVICE_KINDS else "unknown"
        set_(self, "kind", kind)
        set_(self, "label", _device_field(self.label) or "Unknown device")


def _device_field(value: str | None) -> str | None:
    if not value:
        return None
    cleaned = _CONTROL.sub("", str(value))[:MAX_DEVICE_FIELD].strip()
    return cleaned or None


#: Devices already built, by their fields: stores read the same few over and over.
_STORED: dict[tuple[str | None, str | None, str, str], Device] = {}


def stored_device(
    browser: str | None, os: str | None, kind: str | None, label: str | None
) -> Device | None:
    """The ``Device`` a store kept as these fields (all None: none), built once per value.

    Stores call this for every session they read; a ``Device`` is immutable, so the first
    4,096 distinct ones are kept and handed out again (as ``from_microseconds`` does).
    """
    if label is None:
        return None
    key = (browser, os, kind or "unknown", label)
    device = _STORED.get(key)
    if device is None:
        device = Device(*key)
        if len(_STORED) < 4096:
            _STORED[key] = device
    return device
