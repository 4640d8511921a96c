"""The benchmarks' harness (support/harness.py) and where their results go: benchmarks/results."""

import sys
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))  # servers, traffic, measure, harness

from harness import REPO, machine, mpnet_model, percentiles, table
from harness import save as save_in

RESULTS = Path(__file__).resolve().parent / "results"
save = partial(save_in, RESULTS)
__all__ = ["REPO", "RESULTS", "machine", "mpnet_model", "percentiles", "save", "table"]
