"""What the fsspec_patch tests read back from a cache directory."""

from __future__ import annotations

import os

# The cache directory's own index: a directory beside the entries, never one of them.
INDEX_DIR = ".simplecache-index"


def entries(directory: str) -> list[str]:
    """Return the sorted file names in a cache directory (its index left out)."""
    if not os.path.isdir(directory):
        return []
    return sorted(name for name in os.listdir(directory) if name != INDEX_DIR)
