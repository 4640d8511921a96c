"""Nearest-neighbour search over one partition's vectors: exact (numpy) or HNSW (usearch).

Vectors are L2-normalised, so the inner product is the cosine similarity. Exact search is a matrix
product, the fastest choice up to some ten thousand entries; past that an HNSW graph answers in well
under a millisecond at any size (benchmarks/results/cache_speed.md).
"""

import numpy as np

from cachetune.cache_config import HnswConfig


class ExactIndex:
    def __init__(self, dim: int) -> None:
        self._vectors = np.zeros((16, dim), dtype=np.float32)
        self._keys = np.zeros(16, dtype=np.int64)
        self._slot: dict[int, int] = {}

    def __len__(self) -> int:
        return len(self._slot)

    def add(self, key: int, vector: np.ndarray) -> None:
        size = len(self._slot)
        if size == len(self._keys):
            self._vectors = np.concatenate([self._vectors, np.zeros_like(self._vectors)])
            self._keys = np.concatenate([self._keys, np.zeros_like(self._keys)])
        self._vectors[size] = vector
        self._keys[size] = key
        self._slot[key] = size

    def remove(self, key: int) -> None:
        slot = self._slot.pop(key)
        last = len(self._slot)
        if slot != last:  # move the last row into the hole
            self._vectors[slot] = self._vectors[last]
            self._keys[slot] = self._keys[last]
            self._slot[int(self._keys[slot])] = slot

    def search(self, vector: np.ndarray, count: int) -> list[tuple[int, float]]:
        size = len(self._slot)
        if size == 0:
            return []
        scores = self._vectors[:size] @ vector
        count = min(count, size)
        top = np.argpartition(-scores, count - 1)[:count]
        top = top[np.argsort(-scores[top])]
        return [(int(self._keys[i]), float(scores[i])) for i in top]

    def vectors(self) -> tuple[np.ndarray, np.ndarray]:
        size = len(self._slot)
        return self._keys[:size].copy(), self._vectors[:size].copy()


class AnnIndex:
    """HNSW from usearch; `remove` is supported, so expiry and eviction work as with exact search. The vectors live
    in usearch's own storage (no second copy)."""

    def __init__(self, dim: int, hnsw: HnswConfig | None = None) -> None:
        from usearch.index import Index

        hnsw = hnsw or HnswConfig()

        self._index = Index(
            ndim=dim,
            metric="ip",
            dtype="f32",
            connectivity=hnsw.connectivity,
            expansion_add=hnsw.expansion_add,
            expansion_search=hnsw.expansion_search,
        )
        self._keys: set[int] = set()

    def __len__(self) -> int:
        return len(self._keys)

    def add(self, key: int, vector: np.ndarray) -> None:
        self._index.add(key, vector)
        self._keys.add(key)

    def add_many(self, keys: np.ndarray, vectors: np.ndarray) -> None:
        if len(keys):
            # one thread: usearch's concurrent inserts leave nodes no search reaches (unum-cloud/USearch#735)
            self._index.add(keys, vectors, threads=1)
            self._keys.update(keys.tolist())

    def remove(self, key: int) -> None:
        self._index.remove(key)
        self._keys.discard(key)

    def search(self, vector: np.ndarray, count: int) -> list[tuple[int, float]]:
        if not self._keys:
            return []
        matches = self._index.search(vector, min(count, len(self._keys)))
        return [(int(key), 1.0 - float(distance)) for key, distance in zip(matches.keys, matches.distances)]

    def vectors(self) -> tuple[np.ndarray, np.ndarray]:
        keys = np.fromiter(self._keys, dtype=np.int64, count=len(self._keys))
        vectors = np.stack(self._index.get(keys)).astype(np.float32) if len(keys) else np.zeros((0, self._index.ndim), np.float32)
        return keys, vectors
