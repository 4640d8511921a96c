"""Nearest-neighbour search over one partition's vectors: exact (numpy) or HNSW (usearch).

Vectors are L2-normalised, so the inner product is the cosine similarity. Exact search is a matrix
product, the fastest choice up to some ten thousand entries; past that an HNSW graph answers in well
under a millisecond at any size (benchmarks/results/cache_speed.md).
"""

import numpy as np


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
    """HNSW from usearch; `remove` is supported, so expiry and eviction work as with exact search."""

    def __init__(self, dim: int) -> None:
        from usearch.index import Index

        # expansion_search 256: recall@1 0.98 on 100K random unit vectors, the hardest case for a graph index
        self._index = Index(ndim=dim, metric="ip", dtype="f32", connectivity=16, expansion_add=64, expansion_search=256)
        self._vectors: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self._vectors)

    def add(self, key: int, vector: np.ndarray) -> None:
        self._index.add(key, vector)
        self._vectors[key] = vector

    def add_many(self, keys: np.ndarray, vectors: np.ndarray) -> None:
        if len(keys):
            self._index.add(keys, vectors)
            self._vectors.update(zip(keys.tolist(), vectors))

    def remove(self, key: int) -> None:
        self._index.remove(key)
        del self._vectors[key]

    def search(self, vector: np.ndarray, count: int) -> list[tuple[int, float]]:
        if not self._vectors:
            return []
        matches = self._index.search(vector, min(count, len(self._vectors)))
        return [(int(key), 1.0 - float(distance)) for key, distance in zip(matches.keys, matches.distances)]

    def vectors(self) -> tuple[np.ndarray, np.ndarray]:
        keys = np.fromiter(self._vectors, dtype=np.int64, count=len(self._vectors))
        vectors = np.stack(list(self._vectors.values())) if self._vectors else np.zeros((0, self._index.ndim), np.float32)
        return keys, vectors
