"""Device names from user agents and client hints, through ua-parser and the built-in rules.

Every case runs on both paths: ``describe_device`` (ua-parser, installed with the ``devices``
extra) and ``_builtin_device`` (the rules used without it, or when it fails).
"""

from __future__ import annotations

import importlib.util
import logging
import threading
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.datastructures import Headers

import asgi_kit
from asgi_kit._device import DEVICE_KINDS, MAX_DEVICE_FIELD, MAX_USER_AGENT, Device
from asgi_kit._user_agents import _builtin_device, describe_device, device_of_headers

Describe = Callable[..., Device]
HAS_UA_PARSER = importlib.util.find_spec("ua_parser") is not None
UAP = pytest.param(
    describe_device,
    id="ua-parser",
    marks=pytest.mark.skipif(not HAS_UA_PARSER, reason="needs the devices extra"),
)
PATHS = [UAP, pytest.param(_builtin_device, id="built-in")]

FIREFOX_WINDOWS = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"
CHROME_MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
SAFARI_IPAD = (
    "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
# Chrome's reduced user agents: every Windows is "NT 10.0", every Android "10; K".
FROZEN_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)
FROZEN_ANDROID_PHONE = (
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36"
)
FROZEN_ANDROID_TABLET = FROZEN_ANDROID_PHONE.replace(" Mobile ", " ")
SAMSUNG = (
    "Mozilla/5.0 (Linux; Android 13; SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "SamsungBrowser/23.0 Chrome/115.0.0.0 Mobile Safari/537.36"
)
EDGE = FROZEN_WINDOWS + " Edg/131.0.2903.86"
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
GOOGLEBOT_PHONE = (
    "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/131.0.6778.204 Mobile Safari/537.36 "
    "(compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
)
BINGBOT = "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)"
YANDEXBOT = "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)"
LINUX_CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)

UNKNOWN = Device(None, None, "unknown", "Unknown device")


@pytest.mark.parametrize("describe", PATHS)
@pytest.mark.parametrize(
    ("agent", "expected"),
    [
        (FIREFOX_WINDOWS, Device("Firefox 133", "Windows", "desktop", "Firefox on Windows")),
        (CHROME_MAC, Device("Chrome 131", "macOS", "desktop", "Chrome on macOS")),
        (SAFARI_IPHONE, Device("Safari 17", "iOS 17", "mobile", "Safari on iPhone")),
        (SAFARI_IPAD, Device("Safari 17", "iOS 17", "tablet", "Safari on iPad")),
        (FROZEN_ANDROID_PHONE, Device("Chrome 131", "Android", "mobile", "Chrome on Android")),
        (FROZEN_ANDROID_TABLET, Device("Chrome 131", "Android", "tablet", "Chrome on Android")),
        (
            SAMSUNG,
            Device("Samsung Internet 23", "Android 13", "mobile", "Samsung Internet on Android"),
        ),
        (EDGE, Device("Edge 131", "Windows", "desktop", "Edge on Windows")),
        (LINUX_CHROME, Device("Chrome 131", "Linux", "desktop", "Chrome on Linux")),
        (
            "Mozilla/5.0 (Windows NT 6.1; Win64; x64; rv:115.0) Gecko/20100101 Firefox/115.0",
            Device("Firefox 115", "Windows 7", "desktop", "Firefox on Windows"),
        ),
        (
            "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 "
            "(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
            Device("Chrome 131", "ChromeOS", "desktop", "Chrome on ChromeOS"),
        ),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_13_6) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/13.1.2 Safari/605.1.15",
            Device("Safari 13", "macOS 10.13", "desktop", "Safari on macOS"),
        ),
        (
            "Mozilla/5.0 (Android 14; Mobile; rv:133.0) Gecko/133.0 Firefox/133.0",
            Device("Firefox 133", "Android 14", "mobile", "Firefox on Android"),
        ),
        ("Firefox/133.0", Device("Firefox 133", None, "unknown", "Firefox")),
        (
            LINUX_CHROME.replace("Chrome/", "HeadlessChrome/"),
            Device("Headless Chrome 131", "Linux", "desktop", "Headless Chrome on Linux"),
        ),
    ],
)
def test_browsers_are_named_as_people_know_them(
    describe: Describe, agent: str, expected: Device
) -> None:
    assert describe(agent) == expected


@pytest.mark.parametrize("describe", PATHS)
@pytest.mark.parametrize(
    ("agent", "browser", "os", "label"),
    [
        (GOOGLEBOT, "Googlebot 2", None, "Googlebot"),
        (GOOGLEBOT_PHONE, "Googlebot 2", "Android 6", "Googlebot"),
        (BINGBOT, "bingbot 2", None, "bingbot"),
        (YANDEXBOT, "YandexBot 3", None, "YandexBot"),
        ("curl/8.5.0", "curl 8", None, "curl"),
        ("python-requests/2.32.3", "python-requests 2", None, "python-requests"),
        ("Wget/1.21.4", "Wget 1", None, "Wget"),
        ("okhttp/4.12.0", "okhttp 4", None, "okhttp"),
        ("Python/3.11 aiohttp/3.10.0", "aiohttp 3", None, "aiohttp"),
    ],
)
def test_bots_and_http_tools_are_bots_named_by_their_product(
    describe: Describe, agent: str, browser: str, os: str | None, label: str
) -> None:
    assert describe(agent) == Device(browser, os, "bot", label)


@pytest.mark.parametrize("describe", PATHS)
@pytest.mark.parametrize("agent", [None, "", "   ", "\x00\x01\x7f", "Mozilla/5.0", "asdf qwer"])
def test_nothing_known_is_an_unknown_device(describe: Describe, agent: str | None) -> None:
    assert describe(agent) == UNKNOWN


@pytest.mark.parametrize("describe", PATHS)
def test_a_system_alone_is_that_systems_device(describe: Describe) -> None:
    assert describe(None, platform="Windows") == Device(
        None, "Windows", "desktop", "Windows device"
    )
    assert describe("Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X)").kind == "tablet"
    assert describe(None, platform="iOS").label == "iOS device"


@pytest.mark.parametrize("describe", PATHS)
def test_the_platform_version_hint_names_the_windows_the_frozen_agent_hides(
    describe: Describe,
) -> None:
    hinted = describe(FROZEN_WINDOWS, platform="Windows", platform_version="15.0.0")
    assert hinted == Device("Chrome 131", "Windows 11", "desktop", "Chrome on Windows")
    assert describe(FROZEN_WINDOWS, platform="Windows", platform_version="10.0.0").os == (
        "Windows 10"
    )
    assert describe(FROZEN_WINDOWS).os == "Windows"  # NT 10.0 alone: 10 or 11
    windows_81 = "Mozilla/5.0 (Windows NT 6.3; Win64; x64; rv:115.0) Gecko/20100101 Firefox/115.0"
    # 0.x is Windows 7 to 8.1: the agent's own version stands.
    assert describe(windows_81, platform="Windows", platform_version="0.3.0").os == "Windows 8.1"


@pytest.mark.parametrize("describe", PATHS)
def test_the_mobile_hint_decides_phone_or_tablet_on_android(describe: Describe) -> None:
    assert describe(FROZEN_ANDROID_TABLET, mobile=True).kind == "mobile"
    assert describe(FROZEN_ANDROID_PHONE, mobile=False).kind == "tablet"
    phone = describe(
        FROZEN_ANDROID_PHONE, platform="Android", mobile=True, platform_version="14.0.0"
    )
    assert phone == Device("Chrome 131", "Android 14", "mobile", "Chrome on Android")
    # "Request desktop site" on an Android tablet: a Linux agent, the hints tell the truth.
    desktop_site = describe(LINUX_CHROME, platform='"Android"', mobile=False)
    assert desktop_site == Device("Chrome 131", "Android", "tablet", "Chrome on Android")


@pytest.mark.parametrize("describe", PATHS)
def test_the_macos_hint_names_the_version_the_agent_froze(describe: Describe) -> None:
    assert describe(CHROME_MAC).os == "macOS"
    assert describe(CHROME_MAC, platform="macOS", platform_version="14.5.0").os == "macOS 14"


@pytest.mark.skipif(not HAS_UA_PARSER, reason="needs the devices extra")
def test_a_bare_linux_hint_keeps_the_distribution_the_agent_names() -> None:
    ubuntu = "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
    assert describe_device(ubuntu, platform="Linux").label == "Firefox on Ubuntu"


GARBAGE_HINTS = ["", "Unknown", '"Unknown"', "Windows 11", '"Win', '"', '""', "\x00", "é" * 9000]
GARBAGE_VERSIONS = ["", "abc", "1e9", "-1", "99999.0.0", "1.2.3.4.5", '"15.0.0', "\x00" * 3]


@pytest.mark.parametrize("describe", PATHS)
@pytest.mark.parametrize("platform", GARBAGE_HINTS)
@pytest.mark.parametrize("version", GARBAGE_VERSIONS)
def test_garbage_hints_are_ignored(describe: Describe, platform: str, version: str) -> None:
    got = describe(FIREFOX_WINDOWS, platform=platform, platform_version=version)
    assert got == Device("Firefox 133", "Windows", "desktop", "Firefox on Windows")


def test_headers_give_the_device_with_their_hints() -> None:
    raw = [
        (b"user-agent", FROZEN_WINDOWS.encode()),
        (b"sec-ch-ua-platform", b'"Windows"'),
        (b"sec-ch-ua-mobile", b"?0"),
        (b"sec-ch-ua-platform-version", b'"15.0.0"'),
    ]
    device = device_of_headers(Headers(raw=raw))
    assert device == Device("Chrome 131", "Windows 11", "desktop", "Chrome on Windows")
    phone = {"user-agent": FROZEN_ANDROID_TABLET, "sec-ch-ua-mobile": "?1"}
    assert device_of_headers(phone) == describe_device(FROZEN_ANDROID_TABLET, mobile=True)
    assert device_of_headers({"sec-ch-ua-platform": '"Android"', "sec-ch-ua-mobile": "?1"}) == (
        Device(None, "Android", "mobile", "Android device")
    )


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"user-agent": ""},
        {"user-agent": "\x00\x01"},
        {"sec-ch-ua-platform": "garbage"},
        {"sec-ch-ua-platform": '"Unknown"', "sec-ch-ua-mobile": "?1"},
    ],
)
def test_headers_without_an_agent_or_a_platform_give_no_device(headers: dict[str, str]) -> None:
    assert device_of_headers(headers) is None


def test_garbage_header_hints_are_ignored() -> None:
    headers = {
        "user-agent": FIREFOX_WINDOWS,
        "sec-ch-ua-platform": '"Win\x00dows',
        "sec-ch-ua-mobile": "?2",
        "sec-ch-ua-platform-version": '"15.x"',
    }
    assert device_of_headers(headers) == describe_device(FIREFOX_WINDOWS)


@pytest.mark.skipif(not HAS_UA_PARSER, reason="needs the devices extra")
def test_a_failing_ua_parser_falls_back_without_logging_the_agent(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import ua_parser

    def broken(ua: str, domains: ua_parser.Domain, /) -> ua_parser.PartialResult:
        raise RuntimeError(f"broken on {ua}")

    # ``ua_parser.parser`` is the documented hook for a custom global parser.
    monkeypatch.setattr(ua_parser, "parser", ua_parser.Parser(broken))
    with caplog.at_level(logging.DEBUG, logger="asgi_kit"):
        assert describe_device(FIREFOX_WINDOWS) == _builtin_device(FIREFOX_WINDOWS)
    assert caplog.records, "the failure is logged (at DEBUG)"
    assert all(r.levelno <= logging.DEBUG for r in caplog.records)


def test_describe_device_and_device_of_headers_are_exported() -> None:
    assert asgi_kit.describe_device is describe_device
    assert asgi_kit.device_of_headers is device_of_headers
    assert {"describe_device", "device_of_headers"} <= set(asgi_kit.__all__)


# Hostile user agents. The uap-core ones come from its ReDoS regression list
# (tests/regexes.js, after CVE-2018-20164, CVE-2020-5243 and CVE-2021-21317).
HOSTILE = {
    "512 garbage": "".join(chr(33 + (i * 7919) % 94) for i in range(MAX_USER_AGENT)),
    "control characters": "Mozilla/5.0\x00\x1b[31m (X11;\r\n Linux)\x7f\x85 Firefox/1\x9f33.0",
    "emoji": "🦊 Mozilla/5.0 (📱; CPU iPhone OS 17_5 like Mac OS X) 😀" * 8,
    "only emoji": "😀" * 600,
    "many semicolons": ";" * 100_000,
    "many tokens": "Mozilla/5.0 (" + "a; " * 200,
    "digits and dots": "1." * 50_000,
    "digits": "9" * 100_000,
    "AppleWebKit repeated": "AppleWebKit/" * 10_000,
    "uap a": "a" + "a" * 3500 + "a",
    "uap SmartWatch": "SmartWatch" + " " * 3500 + "z",
    "uap HuaweiA": ";A Build HuaweiA" + "4" * 3500 + "z",
    "uap HbbTV LGE": "HbbTV/0.0.0 (;LGE;" + " " * 3500 + "z",
    "uap HbbTV semicolons": "HbbTV/1.1.1 (" + ";a;" * 10000 + "!",
    "uap AppleWebKit zeros": "AppleWebKit/1." + "0" * 10000 + "!",
    "uap AppleWebKit Safari": "AppleWebKit/1.1" + " Safari" * 10000 + "!",
    "uap Mozilla Mobile": "Mozilla" + "Mobile" * 10000 + "!",
    "uap Chrome zeros": "Chrome/1.1." + "0" * 10000 + "!",
    "uap iPod CPUOS": "iPod;" + "CPUOS 1_1" * 10000 + "!",
    "uap Darwin": " Darwin/91" + "0" * 10000 + "!",
    "uap CFNetwork": "CFNetwork/" + " Darwin/17.1" * 10000 + "!",
    "uap Windows Phone": "Windows Phone  ; " + "IEMobile/" * 10000 + "!",
    "uap LYF": "(Mobile; LYF/0/ ;" + ";" * 10000 + "◎",
    "uap Android Build": "Android 1; " + " Build" * 10000 + "!",
    "uap slashes": "foobar!/!./" + "/" * 40000 + "◎",
    "uap HTC spaces": "HTC/HTC " + " " * 20000 + "\n",
    "uap Google": "Google" * 5000 + "! _1SLQ_2",
    "uap Coolpad": ";" + "Coolpad_" * 10000 + "!",
    "bot words": "bot" * 10_000,
    "long token before Firefox": "x" * 600 + " Firefox/133.0",
    "longest allowed": ("Mozilla/5.0 (Windows NT 10.0) " + "Firefox/133.0 " * 100)[:MAX_USER_AGENT],
    "100 kB": "Mozilla/5.0 (X11; Linux x86_64) " * 3300,
}
# Far above any parse: it catches catastrophic backtracking (a parse that would not end
# in practice), not slowness. The suite has no timing thresholds.
HANG_GUARD_SECONDS = 30.0


def finished(call: Callable[[], Device]) -> Device:
    """``call()`` run in a daemon thread; fails the test if it is still running at the guard."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(call())
        except BaseException as error:  # handed back to the test, which re-raises it
            outcome.append(error)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(HANG_GUARD_SECONDS)
    assert not worker.is_alive(), f"still parsing after {HANG_GUARD_SECONDS} s: backtracking"
    if isinstance(outcome[0], BaseException):
        raise outcome[0]
    assert isinstance(outcome[0], Device)
    return outcome[0]


def assert_sane(device: Device) -> None:
    assert isinstance(device, Device)
    assert device.label
    assert device.kind in DEVICE_KINDS
    for field in (device.browser, device.os, device.label):
        assert field is None or 0 < len(field) <= MAX_DEVICE_FIELD


@pytest.mark.parametrize("describe", PATHS)
@pytest.mark.parametrize("agent", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_agents_get_a_device_and_never_hang(describe: Describe, agent: str) -> None:
    device = finished(lambda: describe(agent, platform=agent, platform_version=agent))
    assert_sane(device)
    assert device == describe(agent[: MAX_USER_AGENT * 2], platform=agent, platform_version=agent)


@pytest.mark.parametrize("describe", PATHS)
def test_only_the_first_max_user_agent_characters_are_read(describe: Describe) -> None:
    assert describe("x" * MAX_USER_AGENT + " Firefox/133.0") == UNKNOWN
    assert describe("x" * (MAX_USER_AGENT - 14) + " Firefox/133.0").browser == "Firefox 133"


TOKENS = [
    "Mozilla/5.0 ", "(", ")", "; ", "Windows NT 10.0", "Windows NT 6.3", "Macintosh",
    "Intel Mac OS X 10_15_7", "iPhone", "iPad", "CPU OS 17_5 like Mac OS X", "Android 10; K",
    "Android 14", "Linux", "X11", "CrOS", "Mobile", "Safari/604.1", "Version/17.5",
    "Chrome/131.0.0.0", "Edg/131", "Firefox/133.0", "SamsungBrowser/23", "Googlebot/2.1",
    "bot", "spider", "curl/8", "okhttp/4", "Trident/7.0; rv:11.0", "MSIE 9", " ", "/", "0",
]  # fmt: skip
AGENTS = st.one_of(
    st.text(max_size=700),
    st.lists(st.one_of(st.sampled_from(TOKENS), st.text(max_size=6)), max_size=40).map("".join),
)
HINT_TEXT = st.one_of(
    st.none(),
    st.text(max_size=30),
    st.sampled_from(['"Windows"', "macOS", '"Android"', "iOS", '"Chrome OS"', "Linux"]),
    st.sampled_from(['"15.0.0"', "10.0.0", "0.3.0", '"14.5.0"', "13", "10.15.7"]),
)


@pytest.mark.parametrize("describe", PATHS)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    agent=st.one_of(st.none(), AGENTS),
    platform=HINT_TEXT,
    mobile=st.sampled_from([None, True, False]),
    platform_version=HINT_TEXT,
)
def test_any_agent_and_hints_give_a_sane_device(
    describe: Describe,
    agent: str | None,
    platform: str | None,
    mobile: bool | None,
    platform_version: str | None,
) -> None:
    device = describe(agent, platform=platform, mobile=mobile, platform_version=platform_version)
    assert_sane(device)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    headers=st.dictionaries(
        st.sampled_from(
            ["user-agent", "sec-ch-ua-platform", "sec-ch-ua-mobile", "sec-ch-ua-platform-version"]
        ),
        st.one_of(AGENTS, st.sampled_from(["?1", "?0", '"Windows"', '"15.0.0"'])),
    )
)
def test_any_headers_give_a_sane_device_or_none(headers: dict[str, str]) -> None:
    device = device_of_headers(headers)
    if device is not None:
        assert_sane(device)
