"""`cachetune mine`: hard negatives for labelled pairs, found in a corpus of real queries by embedding similarity.

The options follow sentence-transformers' `mine_hard_negatives` (range_min, range_max, an absolute
margin, num_negatives, top sampling), which has no notion of groups; we add that: a candidate from the
anchor's or the positive's group (the same Stack Overflow question, the same source question) is
skipped, since it is likely the same intent. So are candidates ranked above `range_min` and candidates
scoring within `margin` of the positive: both are more often unlabelled paraphrases than negatives.

With `negatives_from: labels` nothing is mined: each same-intent pair is joined with every labelled non-duplicate
of the same first text (CoNaLa's lexical look-alikes from `prepare`, mqp's doctor-written ones), so a ranking loss
such as MNR can learn from the dataset's own look-alikes.

With `negatives_from: traps` nothing is mined either: each same-intent pair gets the anchor's counterfactual
look-alikes made by rule (`cachetune.synth.traps`: a negation flipped, a number changed, a name swapped, the scope
narrowed or widened), one triplet per kind, `source: trap:KIND`; the names and qualifiers swapped in come from
`corpus` (or, without one, from the input's own texts). A ranking loss reads them as hard negatives; a pair loss, or
the verifier, as label-0 pairs (`records.read_labelled_pairs`).
"""

import random
from collections import Counter
from pathlib import Path

import numpy as np

from cachetune.errors import InputError
from cachetune.records import Query, Triplet, read_pairs_or_triplets, read_records, write_json, write_jsonl
from cachetune.synth.settings import MineSettings
from cachetune.synth.traps import SOURCE_PREFIX, TrapPool, traps_of
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
    """Mine negatives (or take the labelled ones, or make traps by rule) and write triplets (anchor, positive, negative).

    Returns:
        The report, also written beside the output as OUTPUT.report.json.

    Raises:
        InputError: unreadable input or corpus, no same-intent pair, a corpus smaller than `range_min` + 1, or
            triplets as input with `negatives_from: labels`.
        ModelError: the ranking model cannot be loaded.
    """
    kind, records = read_pairs_or_triplets(settings.input)
    pairs = anchor_positive_pairs(kind, records)
    if not pairs:
        raise InputError(f"{settings.input}: no same-intent pairs to mine negatives for")
    if settings.negatives_from == "labels":
        if kind != "pairs":
            raise InputError(f"{settings.input}: negatives_from labels needs labelled pairs, not triplets")
        return finish(settings, labelled_negative_triplets(records), len(pairs))
    if settings.negatives_from == "traps":
        return _with_traps(settings, pairs)
    return _by_similarity(settings, pairs)


def _with_traps(settings: MineSettings, pairs: list[tuple[str, str, str]]) -> dict:
    """Each pair's counterfactual look-alikes made by rule, with names and qualifiers from the corpus (or the pairs)."""
    texts = [q.text for path in settings.corpus for q in read_records(path, Query)] or [t for a, p, _ in pairs for t in (a, p)]
    triplets = trap_triplets(pairs, TrapPool.from_texts(texts), settings.trap_kinds, settings.seed)
    kinds = Counter(t.source.removeprefix(SOURCE_PREFIX) for t in triplets)
    return finish(settings, triplets, len(pairs), traps_by_kind=dict(sorted(kinds.items())))


def _by_similarity(settings: MineSettings, pairs: list[tuple[str, str, str]]) -> dict:
    """Negatives mined from the corpus by the base model: for each anchor, its nearest corpus queries past
    `range_min`, outside its groups and below the positive's score by `margin`."""
    corpus = list({match_key(q.text): q for path in settings.corpus for q in read_records(path, Query)}.values())
    if len(corpus) <= settings.range_min:
        names = ", ".join(map(str, settings.corpus))
        raise InputError(f"{names}: {len(corpus)} distinct queries, fewer than --range-min {settings.range_min} + 1")
    from cachetune.models import DEFAULT_BASE_MODEL, load_model

    model = load_model(settings.base_model)
    encode = lambda items: model.encode(items, batch_size=settings.batch_size, normalize_embeddings=True, convert_to_numpy=True)  # noqa: E731
    corpus_vectors = encode([q.text for q in corpus])
    anchor_vectors = encode([anchor for anchor, _, _ in pairs])
    positive_scores = np.einsum("ij,ij->i", anchor_vectors, encode([positive for _, positive, _ in pairs]))
    model_name = settings.base_model or DEFAULT_BASE_MODEL
    source = f"mined:{Path(model_name).name if Path(model_name).exists() else model_name}"
    group_of = {match_key(q.text): q.group for q in corpus}
    triplets = []
    for start in range(0, len(pairs), CHUNK):
        scores = anchor_vectors[start : start + CHUNK] @ corpus_vectors.T
        for row, order in enumerate(np.argsort(-scores, axis=1)[:, : settings.range_max]):
            number = start + row
            ranked = [(int(candidate), float(scores[row, candidate])) for candidate in order]
            triplets += _negatives_of(pairs[number], ranked, float(positive_scores[number]), corpus, group_of, settings, source)
    mean_negative = float(np.mean([t.similarity_score for t in triplets])) if triplets else None
    return finish(
        settings, triplets, len(pairs), corpus_queries=len(corpus), mean_negative_similarity=mean_negative,
        mean_positive_similarity=float(positive_scores.mean()),
    )  # fmt: skip


def _negatives_of(
    pair: tuple[str, str, str],
    ranked: list[tuple[int, float]],
    positive_score: float,
    corpus: list[Query],
    group_of: dict[str, str],
    settings: MineSettings,
    source: str,
) -> list[Triplet]:
    """Up to `num_negatives` triplets for one pair from its ranked corpus candidates (index, score), best first;
    `group_of`: each corpus text's group (by `match_key`), so the pair's own groups are skipped."""
    anchor, positive, domain = pair
    blocked = {match_key(anchor), match_key(positive)}
    groups = {group_of.get(key) for key in blocked} - {None}
    triplets = []
    for rank, (candidate, score) in enumerate(ranked):
        if len(triplets) == settings.num_negatives:
            break
        text = corpus[candidate].text
        if rank < settings.range_min or match_key(text) in blocked or corpus[candidate].group in groups:
            continue
        if score > positive_score - settings.margin:
            continue
        triplets.append(
            Triplet(anchor=anchor, positive=positive, hard_negative=text, domain=domain, similarity_score=round(score, 4), source=source)
        )
    return triplets


def trap_triplets(pairs: list[tuple[str, str, str]], pool: TrapPool, kinds: tuple[str, ...], seed: int) -> list[Triplet]:
    """(anchor, positive, trap of the anchor) for each (anchor, positive, domain) and each kind whose rule applies."""
    rng = random.Random(seed)
    return [
        Triplet(anchor=anchor, positive=positive, hard_negative=trap, domain=domain, source=f"{SOURCE_PREFIX}{kind}")
        for anchor, positive, domain in pairs
        for kind, trap in traps_of(anchor, rng, pool, kinds)
        if match_key(trap) != match_key(positive)
    ]


def labelled_negative_triplets(pairs: list) -> list[Triplet]:
    """(first text, labelled duplicate, labelled non-duplicate of the same first text) for every such combination,
    by first text."""
    duplicates, negatives = {}, {}
    for pair in pairs:
        (duplicates if pair.label == 1 else negatives).setdefault(pair.query1, {}).setdefault(pair.query2, pair)
    return [
        Triplet(anchor=anchor, positive=positive, hard_negative=negative, domain=pair.domain, source=f"{pair.source}-labelled")
        for anchor, positives in duplicates.items()
        for positive, pair in positives.items()
        for negative in negatives.get(anchor, {})
    ]


def finish(settings: MineSettings, triplets: list[Triplet], pairs: int, **counts) -> dict:
    """Write the triplets, and the report beside them."""
    write_jsonl(settings.output, triplets)
    report = {
        "input": str(settings.input),
        "negatives_from": settings.negatives_from,
        "corpus": [str(path) for path in settings.corpus],
        "pairs": pairs,
        "triplets": len(triplets),
        "pairs_without_negative": pairs - len({(t.anchor, t.positive) for t in triplets}),
        **counts,
        "settings": settings.record(),
    }
    write_json(Path(settings.output).with_name(Path(settings.output).stem + ".report.json"), report)
    return report
