"""The store every model cache of :mod:`.runtime` is made of: built models kept for reuse, least recently used
dropped first, rebuilt when what they were built from changes."""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict

__all__ = ["ModelCache"]


class ModelCache:
    """A thread-safe store of built models with at most ``maxsize`` entries.

    Parameters
    ----------
    maxsize : int
        Entries kept; the least recently used is dropped beyond it.
    """

    def __init__(self, maxsize: int):
        self.maxsize = int(maxsize)
        self._items: OrderedDict = OrderedDict()  # key -> (version, value)
        self._lock = threading.RLock()  # re-entrant: a finalizer may drop an entry while this thread builds

    def get(self, key, build, *, version=None, owner=None):
        """The value stored under ``key``, or ``build()`` stored there when it is missing or has another version.

        Parameters
        ----------
        key : hashable
        build : callable
            Makes the value; called under the cache's lock, so each value is built once.
        version : hashable, optional
            What the stored value was built from (e.g. a fingerprint of weights); a different one rebuilds it.
        owner : object, optional
            The entry is dropped when ``owner`` is garbage-collected (it must support weak references; the
            value must not refer to it, or it would never be collected).
        """
        with self._lock:
            hit = self._items.get(key)
            if hit is not None and hit[0] == version:
                self._items.move_to_end(key)
                return hit[1]
            value = build()
            if hit is None and owner is not None:
                weakref.finalize(owner, self._drop, key)
            self._items[key] = (version, value)
            self._items.move_to_end(key)
            while len(self._items) > self.maxsize:
                self._items.popitem(last=False)
            return value

    def peek(self, key, *, version=None):
        """The value stored under ``key`` with ``version``, or None; never builds one."""
        with self._lock:
            hit = self._items.get(key)
            return hit[1] if hit is not None and hit[0] == version else None

    def _drop(self, key) -> None:
        with self._lock:
            self._items.pop(key, None)

    def clear(self) -> None:
        """Forget every entry."""
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)
