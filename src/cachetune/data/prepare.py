"""`cachetune prepare`: real queries in, clean de-duplicated group-aware splits out.

Order of work: read rows -> clean text and drop by length -> near-duplicate clusters -> join groups
that share a text into components -> keep the first query of each cluster -> (optionally) take a
seeded sample of components -> assign components to splits -> write queries, pairs and a report.
"""

import hashlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from cachetune.data.clean import length_problem, near_duplicate_clusters
from cachetune.data.negatives import lexical_negatives
from cachetune.data.settings import SPLITS, PrepareSettings, split_file
from cachetune.data.sources import SOURCES, SourceData, load_source
from cachetune.data.split import assign_splits, component_labels
from cachetune.errors import InputError
from cachetune.records import Pair, Query, RejectLog, record_texts, rejects_path, write_json, write_jsonl
from cachetune.text import clean_text, match_key, seeded_order


@dataclass(frozen=True)
class _Text:
    text: str
    key: str
    group: str


@dataclass(frozen=True)
class _Pair:
    first: _Text
    second: _Text
    label: int
    source: str
    score: float | None


def prepare(settings: PrepareSettings) -> dict:
    """Run the prepare stage: read, clean, de-duplicate, group, split, write (see the module's docstring).

    Returns:
        The report, also written to OUTPUT/prepare_report.json.

    Raises:
        InputError: a malformed row (with `on_error="fail"`), a missing file or field, or a source without a domain.
    """
    domain = settings.domain or SOURCES[settings.source].domain
    if not domain:
        raise InputError(f"--source {settings.source} needs --domain (e.g. programming, medical)")
    rejects = RejectLog()
    data = load_source(settings, rejects)
    query_drops, pair_drops = Counter(), Counter()
    held_out = {match_key(text) for path in settings.exclude for text in record_texts(path)}
    texts = _clean_queries(data, settings, query_drops, held_out)
    pairs = _clean_pairs(data, settings, pair_drops, held_out)
    keys = list(dict.fromkeys(text.key for text in texts))
    labels = near_duplicate_clusters(keys, settings.near_threshold) if settings.dedupe == "near" else range(len(keys))
    cluster_of = {key: keys[label] for key, label in zip(keys, labels)}
    component_of = _components(texts, pairs, cluster_of)
    kept = _dedupe(texts, cluster_of, query_drops)
    sizes = Counter(component_of[text.group] for text in kept)
    if settings.max_queries is not None:
        sizes = _sample(sizes, settings.max_queries, settings.seed)
        query_drops["over_max_queries"] = sum(component_of[t.group] not in sizes for t in kept)
        kept = [text for text in kept if component_of[text.group] in sizes]
    split_of = assign_splits(dict(sizes), settings.val, settings.test, settings.seed)
    splits = _Splits(settings, domain, component_of, split_of)
    report_splits = {split: splits.write(split, kept, pairs if data.pairs else None) for split in SPLITS}
    if data.pairs:
        pair_drops["over_max_queries"] = sum(component_of[p.first.group] not in split_of for p in pairs)
    report = {
        "source": settings.source,
        "input": settings.input,
        "domain": domain,
        "settings": {k: v for k, v in settings.record().items() if k not in ("source", "input", "output", "domain")},
        "rows_read": data.rows_read,
        "rows_skipped": dict(data.skipped),
        "rows_rejected": rejects.counts(),
        "queries": {"from_rows": len(data.queries), "dropped": _nonzero(query_drops), "kept": len(kept)},
        "near_duplicate_clusters": len({cluster for key, cluster in cluster_of.items() if key != cluster}),
        "components": len(sizes),
        "largest_component": max(sizes.values(), default=0),
        "splits": report_splits,
    }
    if data.pairs:
        report["pairs"] = {"from_rows": len(data.pairs), "dropped": _nonzero(pair_drops), "lexical_negatives_added": splits.negatives_added}
    if rejects:
        rejects.write(rejects_path(Path(settings.output)))
    write_json(Path(settings.output) / "prepare_report.json", report)
    return report


class _Splits:
    """Writes each split's queries and pairs (with lexical negatives where a split has positives only)."""

    def __init__(self, settings: PrepareSettings, domain: str, component_of: dict, split_of: dict) -> None:
        self.settings, self.domain, self.component_of, self.split_of = settings, domain, component_of, split_of
        self.negatives_added = 0

    def write(self, split: str, kept: list[_Text], pairs: list[_Pair] | None) -> dict:
        """Write `split`'s files; returns its counts for the report."""
        output, source, component_of = Path(self.settings.output), self.settings.source, self.component_of
        queries = [
            Query(id=_query_id(source, t.key), text=t.text, domain=self.domain, source=source, group=component_of[t.group])
            for t in kept
            if self.split_of[component_of[t.group]] == split
        ]
        write_jsonl(output / split_file("queries", split), queries)
        if pairs is None:
            return {"queries": len(queries)}
        split_pairs = [p for p in pairs if self.split_of.get(component_of[p.first.group]) == split]
        records = [
            Pair(query1=p.first.text, query2=p.second.text, label=p.label, domain=self.domain, similarity_score=p.score, source=p.source)
            for p in split_pairs
        ]
        if records and all(record.label == 1 for record in records):
            negatives = lexical_negatives(records, [component_of[p.first.group] for p in split_pairs])
            self.negatives_added += len(negatives)
            records += negatives
        write_jsonl(output / split_file("pairs", split), records)
        return {"queries": len(queries), "pairs": len(records), "positive_pairs": sum(record.label for record in records)}


def _clean_queries(data: SourceData, settings: PrepareSettings, drops: Counter, held_out: set[str]) -> list[_Text]:
    texts = []
    for query in data.queries:
        text = clean_text(query.text)
        problem = length_problem(text, settings.min_chars, settings.max_chars)
        key = match_key(text)
        if not problem and key in held_out:
            problem = "held_out"  # in an excluded (evaluation) file
        if problem or not key:
            drops[problem or "no_words"] += 1
            continue
        texts.append(_Text(text, key, query.group))
    return texts


def _clean_pairs(data: SourceData, settings: PrepareSettings, drops: Counter, held_out: set[str]) -> list[_Pair]:
    pairs, seen = [], set()
    for pair in data.pairs:
        first, second = clean_text(pair.text1), clean_text(pair.text2)
        problem = length_problem(first, settings.min_chars, settings.max_chars) or length_problem(
            second, settings.min_chars, settings.max_chars
        )
        first_key, second_key = match_key(first), match_key(second)
        if not problem and first_key == second_key:
            problem = "same_text"
        if not problem and (first_key in held_out or second_key in held_out):
            problem = "held_out"
        if not problem and (first_key, second_key, pair.label) in seen:
            problem = "duplicate_pair"
        if problem:
            drops[problem] += 1
            continue
        seen.add((first_key, second_key, pair.label))
        pairs.append(_Pair(_Text(first, first_key, pair.group), _Text(second, second_key, pair.group), pair.label, pair.source, pair.score))
    return pairs


def _components(texts: list[_Text], pairs: list[_Pair], cluster_of: dict[str, str]) -> dict[str, str]:
    """Component name per group: groups sharing a text or a near-duplicate cluster are one component."""
    groups: dict[str, int] = {}
    first_group_of_cluster: dict[str, int] = {}
    rows, cols = [], []
    for text in texts + [side for pair in pairs for side in (pair.first, pair.second)]:
        node = groups.setdefault(text.group, len(groups))
        cluster = cluster_of.get(text.key, text.key)
        other = first_group_of_cluster.setdefault(cluster, node)
        if other != node:
            rows.append(other)
            cols.append(node)
    names = list(groups)
    labels = component_labels(len(names), rows, cols)
    return {name: names[label] for name, label in zip(names, labels)}


def _dedupe(texts: list[_Text], cluster_of: dict[str, str], drops: Counter) -> list[_Text]:
    kept, seen_keys, seen_clusters = [], set(), set()
    for text in texts:
        if text.key in seen_keys:
            drops["exact_duplicate"] += 1
        elif cluster_of[text.key] in seen_clusters:
            drops["near_duplicate"] += 1
        else:
            kept.append(text)
        seen_keys.add(text.key)
        seen_clusters.add(cluster_of[text.key])
    return kept


def _sample(sizes: Counter, max_queries: int, seed: int) -> Counter:
    """Whole components in seeded order, as many as fit in `max_queries` queries."""
    chosen, total = Counter(), 0
    for component in seeded_order(list(sizes), seed):
        if total + sizes[component] <= max_queries:
            chosen[component] = sizes[component]
            total += sizes[component]
    return chosen


def _query_id(source: str, key: str) -> str:
    return f"{source}-{hashlib.sha1(key.encode()).hexdigest()[:12]}"


def _nonzero(counts: Counter) -> dict[str, int]:
    return {reason: count for reason, count in sorted(counts.items()) if count}
