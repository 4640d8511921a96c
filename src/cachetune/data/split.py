"""Group-aware, seeded train/val/test split.

Groups that share a text (exactly or as near-duplicates) are joined into components first; a
component is the unit that goes to one split, so nothing a test query says was seen in training.
"""

from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from cachetune.errors import InputError
from cachetune.text import seeded_order


def component_labels(size: int, rows: list[int], cols: list[int]) -> list[int]:
    """Connected components of an undirected graph on `size` nodes, each labelled by its smallest node."""
    graph = coo_matrix(([1] * len(rows), (rows, cols)), shape=(size, size))
    _, labels = connected_components(graph, directed=False)
    smallest: dict[int, int] = {}
    for node, label in enumerate(labels):
        smallest.setdefault(int(label), node)
    return [smallest[int(label)] for label in labels]


def assign_splits(component_sizes: dict[str, int], val: float, test: float, seed: int) -> dict[str, str]:
    """Split name per component: components in seeded order fill test, then val, then the rest is train."""
    if val < 0 or test < 0 or val + test > 1:
        raise InputError(f"--val {val} and --test {test} must be >= 0 and add up to at most 1")
    total = sum(component_sizes.values())
    targets = {"test": test * total, "val": val * total}
    filled = {"test": 0, "val": 0}
    assignment = {}
    for component in seeded_order(list(component_sizes), seed):
        split = next((name for name in ("test", "val") if filled[name] < targets[name]), "train")
        if split != "train":
            filled[split] += component_sizes[component]
        assignment[component] = split
    return assignment
