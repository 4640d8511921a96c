"""Which entry goes when a namespace is full: least recently used, first in, or least frequently used.

Every operation is O(1): ordered dicts for LRU and FIFO, frequency buckets for LFU (ties go to the
entry used least recently within the lowest frequency).
"""

from collections import OrderedDict
from typing import Literal

Policy = Literal["lru", "fifo", "lfu"]


class EvictionOrder:
    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self._order: OrderedDict[int, None] = OrderedDict()  # lru, fifo
        self._frequency: dict[int, int] = {}  # lfu
        self._buckets: dict[int, OrderedDict[int, None]] = {}
        self._lowest = 0

    def added(self, key: int, uses: int = 0) -> None:
        if self.policy == "lfu":
            self._frequency[key] = uses
            self._buckets.setdefault(uses, OrderedDict())[key] = None
            self._lowest = min(self._lowest, uses) if len(self._frequency) > 1 else uses
        else:
            self._order[key] = None

    def used(self, key: int) -> None:
        if self.policy == "lru":
            self._order.move_to_end(key)
        elif self.policy == "lfu":
            uses = self._frequency[key]
            del self._buckets[uses][key]
            self._frequency[key] = uses + 1
            self._buckets.setdefault(uses + 1, OrderedDict())[key] = None

    def removed(self, key: int) -> None:
        if self.policy == "lfu":
            del self._buckets[self._frequency.pop(key)][key]
        else:
            del self._order[key]

    def victim(self) -> int:
        if self.policy != "lfu":
            return next(iter(self._order))
        while not self._buckets.get(self._lowest):
            self._lowest += 1
        return next(iter(self._buckets[self._lowest]))

    def keys(self) -> list[int]:
        """Every key, next victim first (what persistence saves to keep the order)."""
        if self.policy != "lfu":
            return list(self._order)
        return [key for uses in sorted(self._buckets) for key in self._buckets[uses]]
