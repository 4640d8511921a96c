"""Prompts longer than the encoder reads: what each way of handling them costs the replay and what it lets through.

    .venv/bin/python benchmarks/long_prompts.py

For each shipped adapter (programming reads 64 tokens, medical 128) on its held-out test pairs (the data of
benchmarks/quality.py, from the prepare steps of configs/DOMAIN.yaml), four ways of deciding:
- `truncate`: the encoder's first tokens decide (cachetune before `long_prompts`);
- `exact` (the default): a prompt past the window, new or stored, is served an exact repeat only;
- `whole`: past the window, the text is encoded whole (max_seq_length 512, the model's maximum) and decides;
- `chunks`: past the window, the text is cut into window-sized chunks whose vectors are averaged, so its end
  counts as much as its start.
Two measures for each: (1) the populated-cache replay on the test pairs as they are (how many texts are past the
window is said), which the setting must not lower; (2) a shared-preamble set made from the same pairs: each pair's
two texts after one shared preamble longer than the window (eight other test texts of the domain, joined), once as
a same-intent pair (should be served) and once as a look-alike (label 0: must not be), decided at the adapter's
operating threshold (chosen on the domain's validation pairs as `cachetune evaluate` does) and as a replay.
Results: results/long_prompts.{json,md}.
"""

import random

import numpy as np
from common import REPO, machine, save, table
from measure import EXPERIMENTS

from cachetune.evaluate.pairs import OperatingPoints
from cachetune.models import load_model
from cachetune.pipeline import run_pipeline
from cachetune.records import Pair, read_records
from cachetune.replay import ReplaySet, pair_scores, replay_metrics
from cachetune.text import clean_text

TESTS = {"programming": ["prepare-conala"], "medical": ["prepare-mqp", "prepare-rqe-valid"]}
WAYS = ("truncate", "exact", "whole", "chunks")


class Encoders:
    """The adapter's vectors of a text under each way (see the module's docstring)."""

    def __init__(self, domain: str) -> None:
        self.model = load_model(domain, merge=True)
        self.window = self.model.max_seq_length
        self.tokenizer = self.model.tokenizer

    def tokens(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False, truncation=False, verbose=False)["input_ids"]

    def fits(self, text: str) -> bool:
        return len(self.tokens(text)) + 2 <= self.window

    def vectors(self, texts: list[str], way: str) -> dict[str, np.ndarray]:
        vectors = dict(zip(texts, self.model.encode(texts, batch_size=64, normalize_embeddings=True)))
        long = [text for text in texts if not self.fits(text)]
        if way == "whole" and long:
            self.model.max_seq_length = 512
            vectors |= dict(zip(long, self.model.encode(long, batch_size=16, normalize_embeddings=True)))
            self.model.max_seq_length = self.window
        elif way == "chunks":
            for text in long:
                ids = self.tokens(text)
                size = self.window - 2
                chunks = [self.tokenizer.decode(ids[start : start + size]) for start in range(0, len(ids), size)]
                mean = self.model.encode(chunks, normalize_embeddings=True).mean(axis=0)
                vectors[text] = mean / np.linalg.norm(mean)
        return vectors


class WholePromptsOnly:
    """The decision of `long_prompts: exact` for the replay: a candidate is served when both texts fit the window,
    or when it is the same text; the nearest candidate decides, as in a cache without `verify`."""

    top_k = 1

    def __init__(self, fits) -> None:
        self.fits = fits

    def best(self, prompt: str, candidates):
        from cachetune.decision import Verdict

        text, similarity = candidates[0]
        allowed = clean_text(text) == clean_text(prompt) or (self.fits(prompt) and self.fits(text))
        return Verdict(0, similarity, ()) if allowed else Verdict(None, None, ())


def preambled(pairs: list[Pair], texts: list[str], encoders: Encoders, seed: int) -> list[Pair]:
    """Each pair's texts after one shared preamble past the window: other test texts of the domain, joined."""
    rng = random.Random(seed)
    made = []
    for pair in pairs:
        others = [t for t in texts if t not in (pair.query1, pair.query2)]
        preamble = ""
        while encoders.fits(preamble):
            preamble += rng.choice(others).rstrip("?.!") + ". "
        made.append(pair.model_copy(update={"query1": preamble + pair.query1, "query2": preamble + pair.query2}))
    return made


def decided(pairs: list[Pair], vector_of: dict, threshold: float, way: str, encoders: Encoders) -> dict:
    """Same-intent pairs served and look-alikes served (false hits) at `threshold`."""
    served = []
    for pair in pairs:
        similarity = float(vector_of[pair.query1] @ vector_of[pair.query2])
        allowed = (
            way != "exact"
            or clean_text(pair.query1) == clean_text(pair.query2)
            or (encoders.fits(pair.query1) and encoders.fits(pair.query2))
        )
        served.append(allowed and similarity >= threshold)
    served, labels = np.array(served), np.array([p.label for p in pairs])
    return {"same_intent_served": float(served[labels == 1].mean()), "look_alikes_served": float(served[labels == 0].mean())}


def measure(domain: str) -> dict:
    run, _ = run_pipeline(REPO / "configs" / f"{domain}.yaml", run_dir=EXPERIMENTS / domain / "data", stages=("prepare",))
    pairs = [p for step in TESTS[domain] for p in read_records(run.folder / step / "pairs.test.jsonl", Pair)]
    encoders = Encoders(domain)
    texts = list(dict.fromkeys(t for p in pairs for t in (p.query1, p.query2)))
    long_pairs = preambled(pairs, texts, encoders, seed=7)
    long_texts = list(dict.fromkeys(t for p in long_pairs for t in (p.query1, p.query2)))
    val = read_records(run.folder / TESTS[domain][0] / "pairs.val.jsonl", Pair)
    val_vectors = encoders.vectors(list(dict.fromkeys(t for p in val for t in (p.query1, p.query2))), "truncate")
    threshold = OperatingPoints.choose(np.array([p.label for p in val]), pair_scores(val, val_vectors), 0.95).threshold
    rows = {}
    for way in WAYS:
        vector_of = encoders.vectors(texts + long_texts, way)
        decider = WholePromptsOnly(encoders.fits) if way == "exact" else None
        rows[way] = {
            "replay_auc": replay_metrics(ReplaySet.from_pairs(pairs, 42), vector_of, decider=decider)["auc"],
            "preamble_replay_auc": replay_metrics(ReplaySet.from_pairs(long_pairs, 42), vector_of, decider=decider)["auc"],
            **decided(long_pairs, vector_of, threshold, way, encoders),
        }
    over = sum(not encoders.fits(t) for t in texts)
    return {
        "window": encoders.window,
        "pairs": len(pairs),
        "texts": len(texts),
        "texts_past_window": over,
        "threshold": threshold,
        "ways": rows,
    }


def main() -> None:
    results = {"machine": machine(), "domains": {domain: measure(domain) for domain in TESTS}}
    save("long_prompts", results, markdown(results))


def markdown(results: dict) -> str:
    lines = [
        "# Prompts past the encoder's window",
        "",
        f"Machine: {results['machine']['cpu_model']}. Command: `.venv/bin/python benchmarks/long_prompts.py`. Replay: the",
        "populated-cache P-CHR AUC of the test pairs as they are. Preamble set: each test pair after one shared preamble",
        "longer than the window; served shares at the threshold (same intent: should be; look-alikes: false hits).",
    ]
    for domain, result in results["domains"].items():
        lines += [
            "",
            f"## {domain} (window {result['window']} tokens; {result['texts_past_window']} of {result['texts']} test texts past it; "
            f"threshold {result['threshold']:.2f})",
            "",
        ]
        rows = [
            [way + (" (default)" if way == "exact" else ""), f"{r['replay_auc']:.3f}", f"{r['preamble_replay_auc']:.3f}",
             f"{r['same_intent_served']:.3f}", f"{r['look_alikes_served']:.3f}"]
            for way, r in result["ways"].items()
        ]  # fmt: skip
        lines += table(
            ["way", "test replay AUC", "preamble replay AUC", "preamble same-intent served", "preamble look-alikes served"], rows
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
