"""What the fsspec_patch tests read back from a cache directory."""

from __future__ import annotations

import os
import random

# The cache directory's own index: a directory beside the entries, never one of them.
INDEX_DIR = ".simplecache-index"


def entries(directory: str) -> list[str]:
    """Return the sorted file names in a cache directory (its index left out)."""
    if not os.path.isdir(directory):
        return []
    return sorted(name for name in os.listdir(directory) if name != INDEX_DIR)


def variant(rnd: random.Random, path: str, i: int) -> str:
    """A random URL variant of ``path``: minor params in any order, fragment, dot segments."""
    params = [f"t={i}", f"cb={rnd.random()}", "a=1", "b=2", f"X-Amz-Signature={i:x}"]
    rnd.shuffle(params)
    head, _, name = path.rpartition("/")
    dots = rnd.choice(["", "./", "x/../", "./y/./../"])
    url = f"{head}/{dots}{name}?{'&'.join(params[: rnd.randint(0, len(params))])}"
    return url + rnd.choice(["", "#frag", f"#{i}"])
