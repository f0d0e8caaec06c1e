"""A session's ``Device`` from its user agent and client hints, worked out once at login.

With ``ua-parser`` installed (the ``devices`` extra; ``regex`` is its Rust backend) names
come from uap-core's rules through ``ua_parser.parse``; without it, or if it fails, a few
built-in linear-time rules know the common browsers and systems. Either way any ``str``
gives a ``Device`` and nothing raises. The user agent is normalised first
(``user_agent_field``), so no parser ever sees more than ``MAX_USER_AGENT`` characters.

Names carry a major version only when the agent tells it truly: Windows NT 10.0 is both
Windows 10 and 11 and macOS 10.15 every later macOS (browsers froze them), Chrome's
"Android 10; K" any Android, and a ChromeOS number a build: these name no version unless
``Sec-CH-UA-Platform-Version`` tells it (Windows: major 13 and up is 11, 1-12 is 10, 0.x
leaves the agent's 7, 8 or 8.1; macOS, Android, iOS: its major).

Labels: ``"<browser> on <place>"``, the place being the system (macOS, Windows,
ChromeOS, Android, Linux...) or, on iOS, the device: "Safari on iPhone", "Chrome on
Android". A browser alone is its name; a system alone "Windows device" (or "iPad"); a bot
its name ("Googlebot", "curl"); nothing "Unknown device". Browsers' mobile variants share
the desktop name ("Chrome Mobile" is "Chrome").

Kinds, in order: ``bot`` (ua-parser's "Spider" device, a name ending in bot, crawler,
spider or slurp for the built-in rules, or the product token of an HTTP tool or library,
``curl/8.5.0``, ``python-requests/2.32``, ``okhttp/4.12``: no person's browser);
iOS is ``tablet`` on an iPad, else ``mobile``; ``Sec-CH-UA-Mobile: ?1`` is ``mobile``;
Android is ``mobile`` with the "Mobile" token and no hint, else ``tablet`` (so ``?0`` on
Android is a tablet); other phone systems ``mobile``; Windows, macOS, Linux, the BSDs and
ChromeOS ``desktop``; anything else ``unknown``. An iPad asking for desktop sites says
Macintosh and is named macOS: nothing in its request tells otherwise.

Client hints win over the user agent they correct: ``Sec-CH-UA-Platform`` (one of its
documented values, quoted or not; anything else is ignored) replaces the system unless it
only says "Linux" of a named distribution.

ua-parser builds its global parser on first use (about 0.1 s with the Rust backend): the
first login after a start pays it, unless the app touches ``ua_parser.parser`` at startup.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from ._device import Device, user_agent_field
from ._user_agent_rules import Found, builtin_found

if TYPE_CHECKING:
    from ua_parser import Result

logger = logging.getLogger("asgi_kit")

_DESKTOP_SYSTEMS = frozenset(
    {"Windows", "macOS", "ChromeOS", "Linux", "Ubuntu", "Kubuntu", "Lubuntu", "Debian"}
    | {"Fedora", "Red Hat", "CentOS", "Arch Linux", "Linux Mint", "Gentoo", "Slackware"}
    | {"openSUSE", "SUSE", "Mageia", "PCLinuxOS", "FreeBSD", "OpenBSD", "NetBSD", "BSD"}
    | {"Solaris"}
)
# Named Linux distributions (and the like) that a bare "Linux" hint does not replace.
_LINUXES = _DESKTOP_SYSTEMS - {"Windows", "macOS", "ChromeOS"}
_PHONE_SYSTEMS = frozenset(
    {"Windows Phone", "Windows Mobile", "KaiOS", "BlackBerry OS", "Firefox OS", "Symbian OS"}
    | {"Sailfish", "Nokia Series 40", "Bada"}
)
_APPLE_DEVICES = frozenset({"iPhone", "iPad", "iPod"})
# Sec-CH-UA-Platform's documented values, by lower case.
_HINT_PLATFORMS = {
    "windows": "Windows",
    "macos": "macOS",
    "linux": "Linux",
    "android": "Android",
    "ios": "iOS",
    "chrome os": "ChromeOS",
    "chromium os": "ChromeOS",
}
# uap-core's browser names where people know another ("Mobile Safari UI/WKWebView" is a web view
# or a home-screen web app: Safari's engine, and what the user knows).
_UAP_NAMES = {
    "Mobile Safari": "Safari",
    "Mobile Safari UI/WKWebView": "Safari",
    "Chrome Mobile": "Chrome",
    "Chrome Mobile iOS": "Chrome",
    "Chrome Mobile WebView": "Android WebView",
    "Firefox Mobile": "Firefox",
    "Firefox iOS": "Firefox",
    "Edge Mobile": "Edge",
    "Opera Mobile": "Opera",
    "IE": "Internet Explorer",
    "IE Mobile": "Internet Explorer",
    "Android": "Android Browser",
    "HeadlessChrome": "Headless Chrome",
    "Other": "",  # uap-core's "nothing found"
}
_UAP_SYSTEMS = {"Mac OS X": "macOS", "Mac OS": "macOS", "Chrome OS": "ChromeOS", "Other": ""}
_NAME = 30  # longest browser or system name in a label: two fit in MAX_DEVICE_FIELD

# Every pattern below is linear: literal anchors, bounded or single quantifiers, no nesting;
# most start with a literal, which ``re`` finds fast (a leading ``\b`` would cost 60 times).
# A product token ("name/version") starting the agent or following a space, "(" or ";".
_PRODUCT = re.compile(r"(?<![^\s(;])([A-Za-z][\w.-]{0,40})/(\d*)")
_TOOLS = frozenset(
    {"curl", "wget", "python-requests", "python-httpx", "python-urllib", "aiohttp", "okhttp"}
    | {"go-http-client", "apache-httpclient", "java", "libwww-perl", "postmanruntime"}
    | {"node-fetch", "axios", "httpie", "scrapy"}
)
_FROZEN_ANDROID = re.compile(r"Android 10; K\)")
_VERSION = re.compile(r"(\d{1,4})(?:\.(\d{1,4}))?(?:\.\d{1,8}){0,2}")


def describe_device(
    user_agent: str | None,
    *,
    platform: str | None = None,
    mobile: bool | None = None,
    platform_version: str | None = None,
) -> Device:
    """The ``Device`` a user agent and its client hints name (ua-parser when installed).

    Examples:
        >>> describe_device("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) "
        ...     "AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1")
        Device(browser='Safari 17', os='iOS 17', kind='mobile', label='Safari on iPhone')
    """
    return _describe(user_agent, platform, mobile, platform_version, _uap_found)


def device_of_headers(headers: Mapping[str, str]) -> Device | None:
    """The ``Device`` of a request's headers (``User-Agent``, ``Sec-CH-UA-*``); None if none."""
    agent, platform = headers.get("user-agent"), headers.get("sec-ch-ua-platform")
    if user_agent_field(agent) is None and _platform(platform) is None:
        return None
    mobile = {"?1": True, "?0": False}.get(headers.get("sec-ch-ua-mobile", "").strip())
    version = headers.get("sec-ch-ua-platform-version")
    return describe_device(agent, platform=platform, mobile=mobile, platform_version=version)


def _builtin_device(
    user_agent: str | None,
    *,
    platform: str | None = None,
    mobile: bool | None = None,
    platform_version: str | None = None,
) -> Device:
    """``describe_device`` by the built-in rules alone, as without ua-parser (tests, benchmarks)."""
    return _describe(user_agent, platform, mobile, platform_version, builtin_found)


def _describe(
    user_agent: str | None,
    platform: str | None,
    mobile: bool | None,
    platform_version: str | None,
    find: Callable[[str], Found],
) -> Device:
    agent = user_agent_field(user_agent) or ""
    found = _tool(agent) or (find(agent) if agent else Found())
    os, os_version = _system(found, agent, platform, platform_version)
    browser = found.browser and found.browser[:_NAME].strip()
    place = found.device if os == "iOS" and found.device else os
    if found.bot:
        label = browser or "Bot"
    elif browser and place:
        label = f"{browser} on {place}"
    elif place:
        label = place if place in _APPLE_DEVICES else f"{place} device"
    else:
        label = browser or "Unknown device"
    kind = _kind(found, agent, os, mobile)
    return Device(_named(browser, found.browser_major), _named(os, os_version), kind, label)


def _tool(agent: str) -> Found | None:
    """An HTTP tool or library named by its product token (``curl/8.5.0``), else None."""
    for product in _PRODUCT.finditer(agent):
        if product[1].lower() in _TOOLS:
            return Found(product[1], product[2] or None, bot=True)
    return None


def _named(name: str | None, version: str | None) -> str | None:
    return f"{name} {version}" if name and version else name


def _system(
    found: Found, agent: str, platform: str | None, platform_version: str | None
) -> tuple[str | None, str | None]:
    """The system's name and true major version: the user agent's, corrected by the hints."""
    os, major, minor = found.os and found.os[:_NAME].strip(), found.os_major, found.os_minor
    if os == "Windows":  # NT 10.0 is both 10 and 11
        version = None if major == "10" else f"{major}.{minor}" if major and minor else major
    elif os == "macOS" and major == "10":  # 10.15 is also every later macOS
        version = None if minor in (None, "15") else f"10.{minor}"
    elif os == "ChromeOS" or (os == "Android" and _FROZEN_ANDROID.search(agent)):
        version = None
    else:
        version = major
    hinted = _platform(platform)
    if hinted and hinted != os and not (hinted == "Linux" and os in _LINUXES):
        os, version = hinted, None
    if hint := _VERSION.fullmatch(_unquoted(platform_version or "")):
        hinted_major, hinted_minor = int(hint[1]), int(hint[2] or 0)
        if os == "Windows" and hinted_major:  # 0.x is Windows 7 to 8.1: the agent says which
            version = "11" if hinted_major >= 13 else "10"
        elif os == "macOS" and hinted_major >= 10:
            version = f"10.{hinted_minor}" if hinted_major == 10 else str(hinted_major)
        elif os in ("Android", "iOS") and hinted_major:
            version = str(hinted_major)
    return os, version


def _kind(found: Found, agent: str, os: str | None, mobile: bool | None) -> str:
    if found.bot:
        return "bot"
    if os == "iOS":
        return "tablet" if found.device == "iPad" else "mobile"
    if mobile:
        return "mobile"
    if os == "Android":
        return "mobile" if mobile is None and "Mobile" in agent else "tablet"
    if os in _PHONE_SYSTEMS:
        return "mobile"
    return "desktop" if os in _DESKTOP_SYSTEMS else "unknown"


def _unquoted(value: str) -> str:
    """A structured-field string's content (``"Windows"``), or the bare value."""
    value = value.strip()[:64]
    return value[1:-1].strip() if len(value) > 1 and value[0] == value[-1] == '"' else value


def _platform(value: str | None) -> str | None:
    return _HINT_PLATFORMS.get(_unquoted(value).lower()) if value else None


@functools.cache
def _ua_parser() -> Callable[[str], Result] | None:
    """ua-parser's ``parse`` (its global parser and cache), or None when not installed."""
    try:
        import ua_parser
    except ImportError:
        return None
    except Exception:  # a broken install (its Rust extension, say) is not installed
        logger.debug("ua-parser failed to import; the built-in rules name devices", exc_info=True)
        return None
    return ua_parser.parse


def _uap_found(agent: str) -> Found:
    parse = _ua_parser()
    if parse is None:
        return builtin_found(agent)
    try:
        result = parse(agent)
        browser, os, device = result.user_agent, result.os, result.device
        return Found(
            browser=_UAP_NAMES.get(browser.family, browser.family) if browser else None,
            browser_major=browser.major if browser else None,
            os=_UAP_SYSTEMS.get(os.family, os.family) if os else None,
            os_major=os.major if os else None,
            os_minor=os.minor if os else None,
            device=device.family if device and device.family in _APPLE_DEVICES else None,
            bot=device is not None and device.family == "Spider",
        )
    except Exception:  # never the login's problem: the built-in rules answer instead
        logger.debug("ua-parser failed on a user agent; using the built-in rules", exc_info=True)
        return builtin_found(agent)
