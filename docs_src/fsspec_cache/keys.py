from __future__ import annotations

from fsspec_patch import canonical_key

key = canonical_key("HTTPS://Host:443/a/./b/../data.csv?b=2&a=1&t=9#x", major_params=("a", "b"))
assert key == "https://host/a/data.csv?a=1&b=2"
assert canonical_key("https://host/data.csv?t=1700000000#top") == "https://host/data.csv"
assert canonical_key("https://host/data.csv?version=2&t=1") == "https://host/data.csv?version=2"
