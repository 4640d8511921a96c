"""Cache replay: a stream of queries with known intents fed to an empty cache, as in production.

Each query looks up its nearest stored query; at similarity >= threshold it is a hit (correct when the
stored query has the same intent, a false hit otherwise), else it is stored. The stream is every
distinct text of the test data in a seeded order; texts joined by a label-1 pair or an
(anchor, positive) share an intent.
"""

import numpy as np

from cachetune.data.split import component_labels, seeded_order

CURVE_THRESHOLDS = tuple(round(t, 2) for t in np.arange(0.30, 1.0, 0.02))


def replay_stream(same_intent: list[tuple[str, str]], texts: list[str], seed: int) -> tuple[list[str], list[int]]:
    """Texts in seeded order and an intent id for each."""
    distinct = list(dict.fromkeys(texts))
    index = {text: number for number, text in enumerate(distinct)}
    intents = component_labels(len(distinct), [index[a] for a, _ in same_intent], [index[b] for _, b in same_intent])
    intent_of = dict(zip(distinct, intents))
    stream = seeded_order(distinct, seed)
    return stream, [intent_of[text] for text in stream]


def replay(vectors: np.ndarray, intents: list[int], thresholds: list[float]) -> list[dict]:
    """Outcome of the stream at each threshold; `vectors` are L2-normalised, in stream order."""
    similarity = vectors @ vectors.T
    intents = np.asarray(intents)
    repeats = len(intents) - len(np.unique(intents))
    results = []
    for threshold in thresholds:
        nearest = np.full(len(intents), -np.inf)
        nearest_index = np.full(len(intents), -1)
        hits = correct = 0
        for query in range(len(intents)):
            if nearest[query] >= threshold:
                hits += 1
                correct += int(intents[nearest_index[query]] == intents[query])
                continue
            closer = similarity[:, query] > nearest  # store it: later queries may now find it nearest
            nearest[closer] = similarity[closer, query]
            nearest_index[closer] = query
        results.append(
            {
                "threshold": round(float(threshold), 4),
                "hit_rate": hits / len(intents),
                "correct_hit_rate": correct / len(intents),
                "false_hit_rate": (hits - correct) / len(intents),
                "hit_precision": correct / hits if hits else 1.0,
                "repeat_rate": repeats / len(intents),
            }
        )
    return results
