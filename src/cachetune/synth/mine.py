"""`cachetune mine`: hard negatives for labelled pairs, found in a corpus of real queries by embedding similarity.

The options follow sentence-transformers' `mine_hard_negatives` (range_min, range_max, an absolute
margin, num_negatives, top sampling), which has no notion of groups; we add that: a candidate from the
anchor's or the positive's group (the same Stack Overflow question, the same source question) is
skipped, since it is likely the same intent. So are candidates ranked above `range_min` and candidates
scoring within `margin` of the positive: both are more often unlabelled paraphrases than negatives.
"""

from pathlib import Path

import numpy as np

from cachetune.errors import InputError
from cachetune.records import Query, Triplet, read_pairs_or_triplets, read_records, write_json, write_jsonl
from cachetune.synth.settings import MineSettings
from cachetune.text import match_key

CHUNK = 1024


def anchor_positive_pairs(kind: str, records: list) -> list[tuple[str, str, str]]:
    """(anchor, positive, domain) from label-1 pairs or from triplets, each pair once."""
    pairs = (
        [(r.query1, r.query2, r.domain) for r in records if r.label == 1]
        if kind == "pairs"
        else [(r.anchor, r.positive, r.domain) for r in records]
    )
    return list(dict.fromkeys(pairs))


def mine(settings: MineSettings) -> dict:
    """Mine negatives and write triplets (anchor, positive, mined negative).

    Returns:
        The report, also written beside the output as OUTPUT.report.json.

    Raises:
        InputError: unreadable input or corpus, no same-intent pair, or a corpus smaller than `range_min` + 1.
        ModelError: the ranking model cannot be loaded.
    """
    kind, records = read_pairs_or_triplets(settings.input)
    pairs = anchor_positive_pairs(kind, records)
    if not pairs:
        raise InputError(f"{settings.input}: no same-intent pairs to mine negatives for")
    corpus = list({match_key(q.text): q for path in settings.corpus for q in read_records(path, Query)}.values())
    if len(corpus) <= settings.range_min:
        names = ", ".join(map(str, settings.corpus))
        raise InputError(f"{names}: {len(corpus)} distinct queries, fewer than --range-min {settings.range_min} + 1")
    from cachetune.models import DEFAULT_BASE_MODEL, load_model

    model = load_model(settings.base_model)
    group_of = {match_key(q.text): q.group for q in corpus}
    texts = [q.text for q in corpus]
    encode = lambda items: model.encode(items, batch_size=settings.batch_size, normalize_embeddings=True, convert_to_numpy=True)  # noqa: E731
    corpus_vectors = encode(texts)
    anchor_vectors = encode([anchor for anchor, _, _ in pairs])
    positive_vectors = encode([positive for _, positive, _ in pairs])
    positive_scores = np.einsum("ij,ij->i", anchor_vectors, positive_vectors)

    triplets, without = [], 0
    model_name = settings.base_model or DEFAULT_BASE_MODEL
    source = f"mined:{Path(model_name).name if Path(model_name).exists() else model_name}"
    for start in range(0, len(pairs), CHUNK):
        scores = anchor_vectors[start : start + CHUNK] @ corpus_vectors.T
        top = np.argsort(-scores, axis=1)[:, : settings.range_max]
        for row, order in enumerate(top):
            number = start + row
            anchor, positive, domain = pairs[number]
            blocked = {match_key(anchor), match_key(positive)}
            groups = {group_of.get(key) for key in blocked} - {None}
            found = 0
            for rank, candidate in enumerate(order):
                if found == settings.num_negatives:
                    break
                key = match_key(texts[candidate])
                score = float(scores[row, candidate])
                if rank < settings.range_min or key in blocked or corpus[candidate].group in groups:
                    continue
                if score > positive_scores[number] - settings.margin:
                    continue
                triplets.append(
                    Triplet(
                        anchor=anchor,
                        positive=positive,
                        hard_negative=texts[candidate],
                        domain=domain,
                        similarity_score=round(score, 4),
                        source=source,
                    )
                )
                found += 1
            without += found == 0
    write_jsonl(settings.output, triplets)
    report = {
        "input": str(settings.input),
        "corpus": [str(path) for path in settings.corpus],
        "pairs": len(pairs),
        "corpus_queries": len(corpus),
        "triplets": len(triplets),
        "pairs_without_negative": without,
        "mean_negative_similarity": float(np.mean([t.similarity_score for t in triplets])) if triplets else None,
        "mean_positive_similarity": float(positive_scores.mean()),
        "settings": settings.record(),
    }
    write_json(Path(settings.output).with_name(Path(settings.output).stem + ".report.json"), report)
    return report
