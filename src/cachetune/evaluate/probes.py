"""Look-alike probes: prompts that differ in one word and mean something else (probes.yaml)."""

from importlib import resources

import numpy as np
import yaml

from cachetune.errors import InputError


def load_probes(domain: str | None = None) -> list[tuple[str, str, str]]:
    """(domain, first, second) for every probe, or for one domain's probes."""
    data = yaml.safe_load(resources.files("cachetune.evaluate").joinpath("probes.yaml").read_text())
    probes = [(name, first, second) for name, pairs in data["probes"].items() for first, second in pairs]
    if domain is not None:
        probes = [probe for probe in probes if probe[0] == domain]
        if not probes:
            raise InputError(f"no probes for domain '{domain}'; probes.yaml has {sorted(data['probes'])}")
    return probes


def probe_false_hits(probes: list[tuple[str, str, str]], vector_of: dict[str, np.ndarray], threshold: float | None) -> dict:
    """How many probes a cache at `threshold` would wrongly serve, and the highest-scoring ones."""
    scored = sorted(
        ((float(vector_of[first] @ vector_of[second]), domain, first, second) for domain, first, second in probes), reverse=True
    )
    false_hits = [row for row in scored if threshold is not None and row[0] >= threshold]
    return {
        "probes": len(probes),
        "threshold": threshold,
        "false_hits": len(false_hits),
        "mean_similarity": float(np.mean([row[0] for row in scored])),
        "examples": [{"similarity": round(s, 4), "domain": d, "first": a, "second": b} for s, d, a, b in (false_hits or scored)[:5]],
    }
