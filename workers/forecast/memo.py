"""A small bounded, thread-safe memo for results that depend only on finished runs.

A run is forecast after every batch, and its finished references rarely change between two
batches: refitting them jointly (and replaying them for the calibration) on every call would
cost several times the forecast itself. Entries are keyed by a digest of the data, so a
changed reference is a new key, never a stale hit.

A memo made with a Codec also shares its entries through a Store, where one is set
(share_through): a Celery worker's pool processes, and its other machines, then make each
entry once between them (workers.shared_memo) instead of once each.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

V = TypeVar("V")


class Store(Protocol):
    """Bytes by key, shared between processes; a store that fails answers nothing."""

    def get_many(self, keys: Sequence[bytes]) -> list[bytes | None]: ...

    def put(self, key: bytes, value: bytes) -> None: ...


@dataclass(frozen=True)
class Codec(Generic[V]):
    """How a memo's values travel through a Store; ``name`` keeps memos' keys apart."""

    name: str
    encode: Callable[[V], bytes]
    decode: Callable[[bytes], V]


_store: Store | None = None


def share_through(store: Store | None) -> None:
    """From now on, memos with a Codec share their entries through ``store`` (None: stop)."""
    global _store
    _store = store


class Memo(Generic[V]):
    """Least-recently-used cache of at most ``size`` values."""

    def __init__(self, size: int, codec: Codec[V] | None = None) -> None:
        self.size = size
        self.codec = codec
        self._items: OrderedDict[bytes, V] = OrderedDict()
        self._lock = threading.Lock()
        self.misses = 0

    def get(self, key: bytes, make: Callable[[], V]) -> V:
        """The value for ``key``, made (outside the lock: two threads may both make it) when
        absent here and from the shared store."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        if not self.absent([key]):  # brought in from the shared store
            with self._lock:
                if key in self._items:
                    return self._items[key]
        with self._lock:
            self.misses += 1
        value = make()
        self._keep(key, value)
        store = _store if self.codec is not None else None
        if store is not None:
            store.put(self._shared_key(key), self.codec.encode(value))
        return value

    def absent(self, keys: Sequence[bytes]) -> list[bytes]:
        """Those of ``keys`` neither here nor in the shared store; those found there are
        kept here (one round trip for them all)."""
        with self._lock:
            missing = [k for k in keys if k not in self._items]
        store = _store if self.codec is not None else None
        if not missing or store is None:
            return missing
        found = store.get_many([self._shared_key(k) for k in missing])
        for k, v in zip(missing, found, strict=True):
            if v is not None:
                self._keep(k, self.codec.decode(v))
        return [k for k, v in zip(missing, found, strict=True) if v is None]

    def _keep(self, key: bytes, value: V) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def _shared_key(self, key: bytes) -> bytes:
        return self.codec.name.encode() + b":" + key
