"""The LLM as a judge of "same question?", with the packaged 0.5B model: on labelled pairs it is scored, on
triplets it drops the negatives it calls the same question."""

import json

import pytest

from cachetune.errors import InputError
from cachetune.records import Pair, Triplet, read_records, write_jsonl
from cachetune.synth.journal import progress_path
from cachetune.synth.judge import judge as run_judge
from cachetune.synth.judge import load_judge_prompt, parse_verdict
from cachetune.synth.settings import JudgeSettings

pytestmark = pytest.mark.llm  # the packaged 0.5B GGUF judges

SAME = ("How do I reverse a list in Python?", "python reverse order of a list")
DIFFERENT = ("How do I sort a dict by value in Python?", "How do I sort a list of dicts by a key in Python?")


def test_verdicts_parse_only_the_asked_shape_and_the_prompt_ends_with_the_pair():
    assert parse_verdict('{"same": true}') is True and parse_verdict('{"same": false}') is False
    for garbage in ('{"same": "yes"}', "true", "", '{"other": true}'):
        assert parse_verdict(garbage) is None, garbage
    messages = load_judge_prompt().messages(*SAME)
    assert messages[0]["role"] == "system" and messages[-1]["content"].startswith("First question: How do I reverse a list")


def test_on_labelled_pairs_the_judge_is_scored_against_the_labels(conala_prepared, tmp_path):
    pairs = read_records(conala_prepared / "pairs.val.jsonl", Pair)
    sample = [p for p in pairs if p.label == 1][:3] + [p for p in pairs if p.label == 0][:3]
    source = tmp_path / "pairs.jsonl"
    write_jsonl(source, sample)
    report = run_judge(JudgeSettings(input=source, output=tmp_path / "judged.jsonl", batch_size=6))
    assert report["kind"] == "pairs" and report["items_judged"] == 6
    agreement = report["agreement"]
    verdicts = read_records(tmp_path / "judged.jsonl", Pair)
    scored = {(p.query1, p.query2): p.label for p in verdicts}
    labels = {(p.query1, p.query2): p.label for p in sample}
    assert agreement["pairs"] == len(scored) and agreement["accuracy"] == pytest.approx(
        sum(scored[key] == labels[key] for key in scored) / len(scored)
    )
    assert json.loads((tmp_path / "judge_report.json").read_text())["agreement"] == agreement


def test_on_triplets_it_keeps_only_negatives_it_calls_different(tmp_path):
    triplets = [
        Triplet(anchor=SAME[0], positive="reverse a python list", hard_negative=SAME[1], domain="programming", source="mined"),
        Triplet(anchor=SAME[0], positive="list reversal in python", hard_negative=SAME[1], domain="programming", source="mined"),
        Triplet(
            anchor=DIFFERENT[0], positive="sort dictionary by its values", hard_negative=DIFFERENT[1], domain="programming", source="mined"
        ),
    ]
    source = tmp_path / "triplets.jsonl"
    write_jsonl(source, triplets)
    settings = JudgeSettings(input=source, output=tmp_path / "kept.jsonl", batch_size=2)
    report = run_judge(settings)
    assert report["items_judged"] == 2  # two distinct (anchor, negative) questions, the first one in two triplets
    kept = read_records(tmp_path / "kept.jsonl", Triplet)
    assert report["rows_written"] == len(kept) and report["triplets_dropped_as_false_negatives"] == 3 - len(kept)
    entries = [json.loads(line) for line in progress_path(tmp_path / "kept.jsonl").read_text().splitlines()]
    for entry in entries:  # an item called the same question loses all its triplets; any other keeps them all
        assert entry["rows"] == (0 if entry["same"] is True else entry["records"])
    with pytest.raises(InputError, match="already exists; pass --resume"):
        run_judge(settings)
