"""Label-0 pairs for sources that only carry positives (CoNaLa rewrites, MeQSum summaries, RQE train).

Evaluation needs both classes. For each positive pair (q1, q2) we pair q1 with the second text of
another group's pair that is closest to q1 by TF-IDF cosine: a real, human-written question on a
similar subject that asks something else. TF-IDF rather than an embedding model so that the
negatives are not chosen to flatter or punish the models being compared. A few may be true
duplicates (Stack Overflow has them); the `source` field marks these rows so they can be told apart.
"""

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer

from cachetune.records import Pair
from cachetune.text import match_key

ROWS_PER_CHUNK = 1024


def lexical_negatives(pairs: list[Pair], groups: list[str]) -> list[Pair]:
    """One negative per positive pair, from a different group; `groups[i]` is the group of `pairs[i]`."""
    positives = [i for i, pair in enumerate(pairs) if pair.label == 1]
    if len({groups[i] for i in positives}) < 2:
        return []
    firsts = [pairs[i].query1 for i in positives]
    seconds = [pairs[i].query2 for i in positives]
    second_groups = np.array([groups[i] for i in positives])
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True).fit(firsts + seconds)
    first_vectors, second_vectors = vectorizer.transform(firsts), vectorizer.transform(seconds)
    negatives, seen = [], set()
    for start in range(0, len(positives), ROWS_PER_CHUNK):
        scores = (first_vectors[start : start + ROWS_PER_CHUNK] @ second_vectors.T).toarray()
        for offset, row in enumerate(scores):
            number = start + offset
            row[second_groups == second_groups[number]] = -1.0
            best = int(np.argmax(row))
            pair = pairs[positives[number]]
            key = (match_key(pair.query1), match_key(seconds[best]))
            if key in seen:
                continue
            seen.add(key)
            negatives.append(
                Pair(query1=pair.query1, query2=seconds[best], label=0, domain=pair.domain, source=f"{pair.source}-lexical-negative")
            )
    return negatives
