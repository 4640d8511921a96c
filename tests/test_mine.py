import json

import numpy as np
import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from cachetune.cli import app
from cachetune.errors import InputError
from cachetune.models import load_model
from cachetune.records import Pair, Query, Triplet, read_records
from cachetune.synth.mine import MineSettings, mine
from cachetune.text import match_key


def test_mined_negatives_come_from_other_groups_and_stay_clear_of_the_positive(conala_prepared, tmp_path):
    output = tmp_path / "mined.jsonl"
    settings = MineSettings(
        input=conala_prepared / "pairs.train.jsonl",
        corpus=conala_prepared / "queries.train.jsonl",
        output=output,
        num_negatives=2,
        range_min=5,
        range_max=40,
        margin=0.1,
    )
    report = mine(settings)
    triplets = read_records(output, Triplet)
    assert report["triplets"] == len(triplets) > 100
    group_of = {match_key(q.text): q.group for q in read_records(conala_prepared / "queries.train.jsonl", Query)}
    per_pair = {}
    for t in triplets:
        assert group_of[match_key(t.hard_negative)] not in {group_of.get(match_key(t.anchor)), group_of.get(match_key(t.positive))}
        per_pair[(t.anchor, t.positive)] = per_pair.get((t.anchor, t.positive), 0) + 1
    assert max(per_pair.values()) <= 2
    model = load_model(None)
    sample = triplets[:40]
    encode = lambda texts: model.encode(texts, normalize_embeddings=True)  # noqa: E731
    anchors, positives, negatives = (encode([getattr(t, f) for t in sample]) for f in ("anchor", "positive", "hard_negative"))
    positive_scores = np.einsum("ij,ij->i", anchors, positives)
    negative_scores = np.einsum("ij,ij->i", anchors, negatives)
    assert np.allclose(negative_scores, [t.similarity_score for t in sample], atol=1e-3)
    assert (negative_scores <= positive_scores - 0.1 + 1e-4).all()
    assert json.loads((tmp_path / "mined.report.json").read_text())["pairs"] == len(
        {(p.query1, p.query2) for p in read_records(conala_prepared / "pairs.train.jsonl", Pair) if p.label == 1}
    )


def test_mine_rejects_inputs_it_cannot_use(conala_prepared, tmp_path):
    negatives_only = tmp_path / "negatives.jsonl"
    negatives_only.write_text(json.dumps({"query1": "a b c d", "query2": "e f g h", "label": 0, "domain": "d", "source": "s"}) + "\n")
    with pytest.raises(InputError, match="no same-intent pairs"):
        mine(MineSettings(input=negatives_only, corpus=conala_prepared / "queries.train.jsonl", output=tmp_path / "o.jsonl"))
    with pytest.raises(ValidationError, match=r"range_min \(50\) must be below range_max \(10\)"):
        MineSettings(
            input=negatives_only, corpus=conala_prepared / "queries.train.jsonl", output=tmp_path / "o.jsonl", range_min=50, range_max=10
        )


def test_negatives_from_labels_join_each_duplicate_with_the_look_alikes_of_its_first_text(conala_prepared, conala_triplets, tmp_path):
    pairs = read_records(conala_prepared / "pairs.train.jsonl", Pair)
    args = ["mine", "--input", str(conala_prepared / "pairs.train.jsonl"), "--output", str(tmp_path / "labelled.jsonl")]
    without_corpus = CliRunner().invoke(app, args)
    assert without_corpus.exit_code == 1 and "corpus: at least one queries file" in without_corpus.output
    done = CliRunner().invoke(app, [*args, "--negatives-from", "labels"])
    assert done.exit_code == 0, done.output
    report = json.loads((tmp_path / "labelled.report.json").read_text())
    triplets = read_records(tmp_path / "labelled.jsonl", Triplet)
    duplicates = {(p.query1, p.query2) for p in pairs if p.label == 1}
    look_alikes = {(p.query1, p.query2) for p in pairs if p.label == 0}
    assert all((t.anchor, t.positive) in duplicates and (t.anchor, t.hard_negative) in look_alikes for t in triplets)
    expected = sum(sum(1 for first, _ in look_alikes if first == anchor) for anchor, _ in duplicates)
    assert report["triplets"] == len(triplets) == len(set((t.anchor, t.positive, t.hard_negative) for t in triplets)) == expected > 100
    assert report["pairs_without_negative"] == len({pair for pair in duplicates if pair not in {(t.anchor, t.positive) for t in triplets}})
    with pytest.raises(InputError, match="needs labelled pairs, not triplets"):
        mine(MineSettings(input=conala_triplets, negatives_from="labels", output=tmp_path / "o.jsonl"))


def test_trap_negatives_are_look_alikes_of_the_anchor_labelled_with_their_kind(conala_prepared, tmp_path):
    from cachetune.facts import disagreements
    from cachetune.records import read_labelled_pairs

    output = tmp_path / "traps.jsonl"
    settings = MineSettings(
        input=conala_prepared / "pairs.train.jsonl", negatives_from="traps", corpus=conala_prepared / "queries.train.jsonl", output=output
    )
    report = mine(settings)
    triplets = read_records(output, Triplet)
    assert report["triplets"] == len(triplets) == sum(report["traps_by_kind"].values()) > 100
    assert set(report["traps_by_kind"]) == {"negation", "number", "entity", "scope"}
    guard_of = {"negation": {"negation", "operations"}, "number": {"numbers", "dates"}, "entity": {"names"}, "scope": {"scope"}}
    for triplet in triplets:
        kind = triplet.source.removeprefix("trap:")
        assert triplet.hard_negative != triplet.anchor and match_key(triplet.hard_negative) != match_key(triplet.positive)
        if kind != "scope":  # a scope trap may add a qualifier that is itself a name or a number
            assert guard_of[kind] & set(disagreements(triplet.anchor, triplet.hard_negative)), triplet
    assert mine(settings)["triplets"] == report["triplets"] and read_records(output, Triplet) == triplets  # seeded: the same again
    pairs = read_labelled_pairs([output])  # what a pair loss or the verifier reads: each trap a label-0 pair
    assert sum(pair.label == 0 for pair in pairs) == len({(t.anchor, t.hard_negative) for t in triplets})
