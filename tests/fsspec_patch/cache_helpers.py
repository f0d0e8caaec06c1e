"""What the fsspec_patch tests read back from a cache directory."""

from __future__ import annotations

import os
import random


def entries(directory: str) -> list[str]:
    """Return the sorted file names in a cache directory."""
    return sorted(os.listdir(directory)) if os.path.isdir(directory) else []


def variant(rnd: random.Random, path: str, i: int) -> str:
    """A random URL variant of ``path``: minor params in any order, fragment, dot segments."""
    params = [f"t={i}", f"cb={rnd.random()}", "a=1", "b=2", f"X-Amz-Signature={i:x}"]
    rnd.shuffle(params)
    head, _, name = path.rpartition("/")
    dots = rnd.choice(["", "./", "x/../", "./y/./../"])
    url = f"{head}/{dots}{name}?{'&'.join(params[: rnd.randint(0, len(params))])}"
    return url + rnd.choice(["", "#frag", f"#{i}"])
