"""What we keep of an LLM's answer: parse it, then drop each text that would teach the model wrong.

Each dropped text is counted under its reason, and the counts go into generate_report.json.
"""

import json
from collections import Counter
from dataclasses import dataclass, field

from cachetune.text import clean_text, content_words, match_key

MIN_MAX_CHARS = 200  # a generated text may be twice the query's length, and at least this long


@dataclass
class Kept:
    paraphrases: list[str] = field(default_factory=list)
    negatives: list[str] = field(default_factory=list)
    rejects: Counter = field(default_factory=Counter)


def parse_output(text: str) -> tuple[list, list] | None:
    """(paraphrases, negatives) from the model's JSON, or None when it is not that shape (no "negatives": none asked)."""
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, TypeError):
        return None
    if not isinstance(value, dict):
        return None
    paraphrases, negatives = value.get("paraphrases"), value.get("negatives", [])
    if not isinstance(paraphrases, list) or not isinstance(negatives, list):
        return None
    if not all(isinstance(item, str) for item in paraphrases + negatives):
        return None
    return paraphrases, negatives


def filter_texts(query: str, paraphrases: list[str], negatives: list[str]) -> Kept:
    kept = Kept()
    max_chars = max(MIN_MAX_CHARS, 2 * len(query))
    query_key, query_words = match_key(query), content_words(query)
    paraphrase_keys: set[str] = set()
    paraphrase_words: set[frozenset] = set()
    negative_words: set[frozenset] = set()
    for raw in paraphrases:
        text = clean_text(raw)
        reason = _length_reason(text, max_chars)
        key = match_key(text)
        if reason is None and key == query_key:
            reason = "paraphrase_equals_query"
        elif reason is None and key in paraphrase_keys:
            reason = "duplicate_paraphrase"
        if reason:
            kept.rejects[reason] += 1
            continue
        paraphrase_keys.add(key)
        paraphrase_words.add(content_words(text))
        kept.paraphrases.append(text)
    for raw in negatives:
        text = clean_text(raw)
        reason = _length_reason(text, max_chars)
        key, words = match_key(text), content_words(text)
        if reason is None and key == query_key:
            reason = "negative_equals_query"
        elif reason is None and words == query_words:
            reason = "negative_rewords_query"  # a near-duplicate of the anchor: a positive, not a negative
        elif reason is None and (key in paraphrase_keys or words in paraphrase_words):
            reason = "negative_equals_paraphrase"
        elif reason is None and words in negative_words:
            reason = "duplicate_negative"  # a rewording of a negative already kept
        if reason:
            kept.rejects[reason] += 1
            continue
        negative_words.add(words)
        kept.negatives.append(text)
    return kept


def _length_reason(text: str, max_chars: int) -> str | None:
    if not text:
        return "empty"
    if len(text) > max_chars:
        return "too_long"
    return None
