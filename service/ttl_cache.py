"""A tiny in-process cache whose entries expire after a few seconds.

Used on the hot path for things that never change once created (API keys,
namespace and retriever names), so that a steady stream of calls costs one
dict lookup instead of a store query each. Misses are never cached: a key or
retriever created a moment ago must work at once.
"""

from __future__ import annotations

import time
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TtlCache(Generic[K, V]):
    def __init__(self, ttl_seconds: float, max_entries: int = 10_000) -> None:
        self._ttl = ttl_seconds
        self._max_entries = max_entries
        self._entries: dict[K, tuple[float, V]] = {}

    def get(self, key: K) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, value = entry
        if expires < time.monotonic():
            del self._entries[key]
            return None
        return value

    def put(self, key: K, value: V) -> None:
        if self._ttl <= 0:
            return
        if len(self._entries) >= self._max_entries:
            # Rare (the working set is small); dropping everything keeps this O(1) and bounded.
            self._entries.clear()
        self._entries[key] = (time.monotonic() + self._ttl, value)
