"""A small bounded, thread-safe memo for results that depend only on finished runs.

A run is forecast after every batch, and its finished references rarely change between two
batches: refitting them jointly (and replaying them for the calibration) on every call would
cost several times the forecast itself. Entries are keyed by a digest of the data, so a
changed reference is a new key, never a stale hit.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

V = TypeVar("V")


class Memo(Generic[V]):
    """Least-recently-used cache of at most ``size`` values."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[bytes, V] = OrderedDict()
        self._lock = threading.Lock()
        self.misses = 0

    def __contains__(self, key: bytes) -> bool:
        with self._lock:
            return key in self._items

    def get(self, key: bytes, make: Callable[[], V]) -> V:
        """The value for ``key``, made (outside the lock: two threads may both make it) when
        absent."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            self.misses += 1
        value = make()
        with self._lock:
            self._items[key] = value
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return value
