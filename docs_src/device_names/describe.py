from __future__ import annotations

from asgi_kit import describe_device, device_of_headers

# A user agent alone: what Firefox 133 on Windows sends.
firefox = describe_device(
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"
)
# Chromium's frozen user agent, corrected by its client hints: Windows 11, not "NT 10.0".
chrome = describe_device(
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    platform='"Windows"',  # Sec-CH-UA-Platform
    mobile=False,  # Sec-CH-UA-Mobile: ?0
    platform_version='"15.0.0"',  # Sec-CH-UA-Platform-Version
)
# A request's headers, as they come (None when they name no device at all).
phone = device_of_headers(
    {
        "user-agent": "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
        "sec-ch-ua-platform": '"Android"',
        "sec-ch-ua-platform-version": '"14.0.0"',
    }
)
