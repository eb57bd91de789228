"""A bounded, thread-safe map that drops the least recently used entries first.

Used for what is safe to remember because it is addressed by content: blob sizes and manifest
bodies by digest. `weigh` says what one entry costs against `limit` (1 each by default).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["LruCache"]

K = TypeVar("K")
V = TypeVar("V")


class LruCache(Generic[K, V]):
    def __init__(self, limit: int, weigh: Callable[[V], int] = lambda value: 1) -> None:
        self._entries: OrderedDict[K, V] = OrderedDict()
        self._limit = limit
        self._weigh = weigh
        self._weight = 0
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            value = self._entries.get(key)
            if value is not None:
                self._entries.move_to_end(key)
            return value

    def put(self, key: K, value: V) -> None:
        weight = self._weigh(value)
        if weight > self._limit:
            return
        with self._lock:
            self._forget(key)
            self._entries[key] = value
            self._weight += weight
            while self._weight > self._limit:
                _, dropped = self._entries.popitem(last=False)
                self._weight -= self._weigh(dropped)

    def forget(self, key: K) -> None:
        with self._lock:
            self._forget(key)

    def _forget(self, key: K) -> None:
        value = self._entries.pop(key, None)
        if value is not None:
            self._weight -= self._weigh(value)
