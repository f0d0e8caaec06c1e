from __future__ import annotations

import fsspec_patch

fsspec_patch.install()  # simplecache -> CanonicalSimpleCacheFileSystem (idempotent)
assert fsspec_patch.is_installed()  # which one is active
fsspec_patch.uninstall()  # simplecache -> fsspec's SimpleCacheFileSystem (idempotent)
assert not fsspec_patch.is_installed()
