"""A per-process, thread-safe LRU cache with expiry, for the search hot path's small caches.

`cachetools.TTLCache` does the LRU and the expiry; it is not thread-safe by itself, and gunicorn
threads share one, so every access holds a lock (held for a dict operation, never during the
work whose result is cached: two threads missing at once both compute, the last write wins).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Any

import cachetools


class TTLCache:
    """At most `size` entries, each forgotten `ttl` seconds after it was put."""

    def __init__(self, size: int, ttl: float, *, timer: Callable[[], float] = time.monotonic):
        self._items: cachetools.TTLCache = cachetools.TTLCache(maxsize=size, ttl=ttl, timer=timer)
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Any | None:
        """The live value for `key` (it becomes the most recently used), or None."""
        with self._lock:
            return self._items.get(key)

    def put(self, key: Hashable, value: Any) -> None:
        with self._lock:
            self._items[key] = value

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)
