"""fsspec's default ``cache_storage="TMP"``: a temporary directory that lives with its instances.

In fsspec a temporary cache belongs to one instance and goes with it, so a new instance
(after ``clear_instance_cache()``, say) starts empty and fetches fresh bytes. The patched
class shares one instance per logical file, so a temporary directory here belongs to a
*generation* of one set of options: every instance of those options made between two
clears of the instance cache shares it, the next generation gets a new one, and a
directory is removed, with its index, once no instance holds it any more.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import weakref

from ._index import index_folder

__all__ = ["TemporaryStorage", "temporary_storage"]


class TemporaryStorage:
    """A private temporary cache directory, removed with its index when no one holds it.

    Instances hold it; when the last one is garbage-collected (or at exit) the directory
    and its index go. A forked child never removes its parent's directories.
    """

    def __init__(self) -> None:
        self.path = tempfile.mkdtemp(prefix="simplecache-")
        self._finalizer = weakref.finalize(
            self, _remove, self.path, index_folder(self.path), os.getpid()
        )


# The directory of each generation of options, for as long as an instance holds it.
_SHARED: weakref.WeakValueDictionary[tuple[int, str], TemporaryStorage] = (
    weakref.WeakValueDictionary()
)
_LOCK = threading.Lock()


def temporary_storage(generation: int, options: str) -> TemporaryStorage:
    """Return the temporary directory of ``options`` in instance-cache ``generation``.

    A new one when no instance of this generation and these options holds one any more.
    """
    key = (generation, options)
    with _LOCK:
        found = _SHARED.get(key)
        if found is None:
            found = _SHARED[key] = TemporaryStorage()
        return found


def _reset_after_fork() -> None:
    # Another thread of the parent may have held the lock at the fork.
    global _LOCK
    _LOCK = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


def _remove(path: str, index: str, owner: int) -> None:
    if os.getpid() == owner:
        shutil.rmtree(path, ignore_errors=True)
        shutil.rmtree(index, ignore_errors=True)
