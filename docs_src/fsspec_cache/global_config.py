from __future__ import annotations

import fsspec

# Every simplecache instance made from now on: "part" selects another file too, and the
# cache directory may hold 4 GiB.
fsspec.config.conf["simplecache"] = {"major_params": ["version", "part"], "max_bytes": 2**32}
