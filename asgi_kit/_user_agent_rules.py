"""The built-in user-agent rules: what names a device when ``ua-parser`` is not installed.

A few regular expressions for the common browsers and systems and for bots, each linear
in the length of its input (literal anchors, bounded or single quantifiers, no nesting;
most start with a literal, which ``re`` finds fast: a leading ``\\b`` would cost 60
times), so no user agent can make them backtrack. ``asgi_kit._user_agents`` turns what
they find (a ``Found``) into a ``Device``, as it does ua-parser's results.
"""

from __future__ import annotations

import re
from typing import NamedTuple

# A bot word ending a name that starts a token: each token is tried once, from its start.
_BOT = re.compile(
    r"(?<![\w.-])([\w.-]{0,40}?(?:bot|crawler|spider|slurp))(?![a-z])(?:/(\d+))?", re.I
)
_BROWSERS = [  # the first match names the browser: Edge, Opera, Samsung... say Chrome too
    (re.compile(r"Edg(?:e|A|iOS)?/(\d+)"), "Edge"),
    (re.compile(r"SamsungBrowser/(\d+)"), "Samsung Internet"),
    (re.compile(r"(?:OPR|OPiOS)/(\d+)"), "Opera"),
    (re.compile(r"(?:Firefox|FxiOS)/(\d+)"), "Firefox"),
    (re.compile(r"HeadlessChrome/(\d+)"), "Headless Chrome"),
    (re.compile(r"(?:Chrome|CriOS)/(\d+)"), "Chrome"),
    (re.compile(r"Version/(\d+)[\d.]*(?: Mobile/\w+)? Safari/"), "Safari"),
    (re.compile(r"MSIE (\d+)"), "Internet Explorer"),
    (re.compile(r"Trident/[\d.]+; rv:(\d+)"), "Internet Explorer"),
]
_APPLE = re.compile(r"(iPhone|iPad|iPod)\b")
_IOS_VERSION = re.compile(r" OS (\d+)_")
_ANDROID = re.compile(r"Android(?:[ /](\d+))?")
_WINDOWS = re.compile(r"Windows NT (\d+\.\d+)")
_WINDOWS_NT = {"10.0": ("10", None), "6.3": ("8", "1"), "6.2": ("8", None), "6.1": ("7", None)}
_WINDOWS_NT |= {"6.0": ("Vista", None), "5.2": ("XP", None), "5.1": ("XP", None)}
_MAC = re.compile(r"Mac OS X(?: (\d+)[_.](\d+))?")
_SYSTEMS = [(re.compile(r"CrOS\b"), "ChromeOS"), (re.compile(r"(?:Linux|X11)\b"), "Linux")]


class Found(NamedTuple):
    """What a parser read in a user agent, in this module's names, before hints and rules."""

    browser: str | None = None  # a bot's or tool's name when ``bot``
    browser_major: str | None = None
    os: str | None = None
    os_major: str | None = None
    os_minor: str | None = None
    device: str | None = None  # "iPhone", "iPad" or "iPod"; else None
    bot: bool = False


def builtin_found(agent: str) -> Found:
    """The built-in rules: a bot word, then the first browser and system that match."""
    os: str | None = None
    major = minor = device = None
    if apple := _APPLE.search(agent):  # before macOS: iOS agents say "like Mac OS X"
        os, device = "iOS", apple[1]
        major = (m := _IOS_VERSION.search(agent)) and m[1]
    elif android := _ANDROID.search(agent):  # before Linux
        os, major = "Android", android[1]
    elif windows := _WINDOWS.search(agent):
        os, (major, minor) = "Windows", _WINDOWS_NT.get(windows[1], (None, None))
    elif mac := _MAC.search(agent):
        os, major, minor = "macOS", mac[1], mac[2]
    else:
        os = next((name for pattern, name in _SYSTEMS if pattern.search(agent)), None)
    if bot := _BOT.search(agent):
        return Found(bot[1], bot[2], os, major, minor, device, bot=True)
    for pattern, name in _BROWSERS:
        if browser := pattern.search(agent):
            return Found(name, browser[1], os, major, minor, device)
    return Found(None, None, os, major, minor, device)
