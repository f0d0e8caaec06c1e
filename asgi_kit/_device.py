"""The device fields of a session (user agent, client address): one normalisation for all.

Every ``Session`` is built through it, so every store keeps the same value and none is
handed something its column or driver refuses (a NUL byte, a 60-character "address").
"""

from __future__ import annotations

import ipaddress
import re

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
