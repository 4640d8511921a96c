import json
from collections import defaultdict
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cachetune.cli import app
from cachetune.data.clean import near_duplicate_clusters
from cachetune.data.prepare import PrepareSettings, prepare
from cachetune.errors import InputError
from cachetune.records import Pair, Query, read_records
from cachetune.text import clean_text

runner = CliRunner()
SPLITS = ("train", "val", "test")


def read_split(folder: Path, kind: str, record_type):
    return {split: read_records(folder / f"{kind}.{split}.jsonl", record_type) for split in SPLITS}


def write_lines(path: Path, rows: list) -> Path:
    path.write_text("".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows))
    return path


def test_conala_is_deterministic_and_keeps_each_question_in_one_split(shared_data, tmp_path):
    conala = shared_data / "programming" / "conala-train.json"
    first, second = tmp_path / "a", tmp_path / "b"
    report = prepare(PrepareSettings(source="conala", input=str(conala), output=first, domain="programming"))
    prepare(PrepareSettings(source="conala", input=str(conala), output=second, domain="programming"))
    files = sorted(path.name for path in first.iterdir())
    assert files == sorted(path.name for path in second.iterdir())
    assert {"queries.test.jsonl", "pairs.train.jsonl", "prepare_report.json"} <= set(files)
    for name in files:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name

    question_ids = defaultdict(set)
    for row in json.loads(conala.read_text()):
        for text in (row["intent"], row["rewritten_intent"]):
            if text:
                question_ids[clean_text(text)].add(row["question_id"])
    seen_in = defaultdict(set)
    for split, queries in read_split(first, "queries", Query).items():
        assert queries, split
        for query in queries:
            for question_id in question_ids[query.text]:
                seen_in[question_id].add(split)
    for split, pairs in read_split(first, "pairs", Pair).items():
        for pair in pairs:
            for question_id in question_ids[pair.query1] | question_ids[pair.query2]:
                seen_in[question_id].add(split)
    assert len(seen_in) > 1500
    assert all(len(splits) == 1 for splits in seen_in.values())
    assert report["queries"]["dropped"]["exact_duplicate"] > 0
    assert sum(counts["queries"] for counts in report["splits"].values()) == report["queries"]["kept"]


def test_conala_negatives_come_from_other_questions(shared_data, tmp_path):
    conala = shared_data / "programming" / "conala-train.json"
    prepare(PrepareSettings(source="conala", input=str(conala), output=tmp_path))
    rewrites = defaultdict(set)
    for row in json.loads(conala.read_text()):
        if row["rewritten_intent"]:
            rewrites[clean_text(row["intent"])].add(clean_text(row["rewritten_intent"]))
    pairs = read_records(tmp_path / "pairs.test.jsonl", Pair)
    negatives = [pair for pair in pairs if pair.label == 0]
    assert len(negatives) > 100
    assert all(pair.source == "conala-rewrite-lexical-negative" for pair in negatives)
    assert not any(pair.query2 in rewrites[pair.query1] for pair in negatives)
    assert all(pair.query2 in rewrites[pair.query1] for pair in pairs if pair.label == 1)


def test_mqp_keeps_doctor_labels_and_source_questions_in_one_split(shared_data, tmp_path):
    report = prepare(PrepareSettings(source="mqp", input=str(shared_data / "medical" / "mqp-dev.jsonl"), output=tmp_path, max_chars=1000))
    splits_of = defaultdict(set)
    for split, pairs in read_split(tmp_path, "pairs", Pair).items():
        assert {pair.label for pair in pairs} == {0, 1}
        assert all(pair.source == "mqp" for pair in pairs)
        for pair in pairs:
            splits_of[pair.query1].add(split)
    assert all(len(splits) == 1 for splits in splits_of.values())
    assert report["pairs"]["lexical_negatives_added"] == 0


def test_rqe_leaves_out_random_negatives(shared_data, tmp_path):
    report = prepare(PrepareSettings(source="rqe", input=str(shared_data / "medical" / "rqe-train.jsonl"), output=tmp_path, max_chars=1000))
    assert report["rows_skipped"] == {"random_negative": 3933}
    assert report["pairs"]["lexical_negatives_added"] > 0


def test_near_duplicates_are_spelling_variants_not_look_alikes():
    keys = [
        "do you have information about ct scan",
        "what are the symptoms of type 1 diabetes",
        "do you have information about ct scans",
        "do you have information about factor vii assay",
        "do you have information about factor viii assay",
        "what are the symptoms of type 2 diabetes",
    ]
    labels = near_duplicate_clusters(keys, threshold=0.95)
    assert labels == [0, 1, 0, 3, 4, 5]


def test_groups_sharing_a_text_land_in_one_split(tmp_path):
    rows = []
    for number in range(30):
        rows += [
            {"text": f"How do I parse format number {number} in Python?", "group": f"a{number}"},
            {"text": f"What is the fastest way to copy list {number}?", "group": f"a{number}"},
            {"text": f"how do i parse format number {number} in python", "group": f"b{number}"},
            {"text": f"Why does import statement {number} fail on Windows?", "group": f"b{number}"},
        ]
    source = write_lines(tmp_path / "logs.jsonl", rows)
    report = prepare(
        PrepareSettings(
            source="jsonl",
            input=str(source),
            output=tmp_path / "out",
            domain="programming",
            text_field="text",
            group_field="group",
            dedupe="exact",
            val=0.2,
            test=0.2,
        )
    )
    assert report["queries"]["dropped"] == {"exact_duplicate": 30}
    split_of = {q.text: split for split, queries in read_split(tmp_path / "out", "queries", Query).items() for q in queries}
    assert len({split_of[f"What is the fastest way to copy list {n}?"] for n in range(30)}) == 3
    for number in range(30):
        assert (
            split_of[f"What is the fastest way to copy list {number}?"] == split_of[f"Why does import statement {number} fail on Windows?"]
        )


def test_max_queries_takes_whole_groups(shared_data, tmp_path):
    report = prepare(
        PrepareSettings(source="conala", input=str(shared_data / "programming" / "conala-train.json"), output=tmp_path, max_queries=300)
    )
    assert 250 < report["queries"]["kept"] <= 300
    assert report["queries"]["dropped"]["over_max_queries"] > 0
    assert sum(len(queries) for queries in read_split(tmp_path, "queries", Query).values()) == report["queries"]["kept"]


def test_cli_broken_jsonl_line_fails_then_skip_keeps_the_rest(tmp_path):
    rows = [{"query": f"how to sort a list by key number {n}"} for n in range(5)]
    rows[2] = '{"query": "how to sort a list by key number 2"'
    source = write_lines(tmp_path / "in.jsonl", rows)
    args = ["prepare", "--source", "jsonl", "--input", str(source), "--domain", "programming", "--text-field", "query"]
    failed = runner.invoke(app, [*args, "--output", str(tmp_path / "fail")])
    assert failed.exit_code == 1
    assert f"{source}:3: invalid JSON" in failed.stderr
    assert not (tmp_path / "fail" / "queries.train.jsonl").exists()

    skipped = runner.invoke(app, [*args, "--output", str(tmp_path / "skip"), "--on-error", "skip"])
    assert skipped.exit_code == 0, skipped.output
    kept = [q.text for queries in read_split(tmp_path / "skip", "queries", Query).values() for q in queries]
    assert sorted(kept) == [f"how to sort a list by key number {n}" for n in (0, 1, 3, 4)]
    rejects = [json.loads(line) for line in (tmp_path / "skip" / "rejects.jsonl").read_text().splitlines()]
    assert [reject["where"] for reject in rejects] == [f"{source}:3"]
    report = json.loads((tmp_path / "skip" / "prepare_report.json").read_text())
    assert report["rows_rejected"] == {"invalid JSON": 1}


def test_csv_missing_field_names_the_line(tmp_path):
    source = tmp_path / "logs.csv"
    source.write_text("prompt,user\nhow do I sort a dict by value,1\nhow do I reverse a string,2\n")
    with pytest.raises(InputError, match=rf"{source}:2: missing field 'query'"):
        prepare(PrepareSettings(source="csv", input=str(source), output=tmp_path / "out", domain="programming", text_field="query"))
    report = prepare(
        PrepareSettings(
            source="csv", input=str(source), output=tmp_path / "out", domain="programming", text_field="prompt", test=0.5, val=0
        )
    )
    assert report["queries"]["kept"] == 2


def test_hf_source_reads_local_files_and_folders(tmp_path):
    import datasets

    conala_like = write_lines(
        tmp_path / "conala.jsonl",
        [
            {"question_id": 1, "intent": "How to reverse a list in Python?", "rewritten_intent": "reverse list `x`", "snippet": "x[::-1]"},
            {
                "question_id": 2,
                "intent": "How to reverse a string in Python?",
                "rewritten_intent": "reverse string `s`",
                "snippet": "s[::-1]",
            },
            {"question_id": 3, "intent": "Sort a dictionary by its values", "rewritten_intent": None, "snippet": "sorted(d.items())"},
        ],
    )
    report = prepare(PrepareSettings(source="hf", input=str(conala_like), output=tmp_path / "conala", domain="programming", val=0, test=0))
    assert report["queries"]["kept"] == 5
    train_pairs = read_records(tmp_path / "conala" / "pairs.train.jsonl", Pair)
    assert {(p.query1, p.query2, p.label) for p in train_pairs if p.label == 1} == {
        ("How to reverse a list in Python?", "reverse list `x`", 1),
        ("How to reverse a string in Python?", "reverse string `s`", 1),
    }

    medquad_like = tmp_path / "medquad"
    datasets.Dataset.from_dict(
        {"qtype": ["symptoms", "treatment"], "Question": ["What are the symptoms of gout?", "How to treat gout ?"], "Answer": ["..", ".."]}
    ).save_to_disk(str(medquad_like))
    report = prepare(PrepareSettings(source="hf", input=str(medquad_like), output=tmp_path / "med", domain="medical", val=0, test=0))
    assert report["queries"]["kept"] == 2


def test_hf_source_unreachable_hub_is_a_clear_error(tmp_path):
    with pytest.raises(InputError, match="codeparrot/conala-mined-curated: could not load dataset"):
        prepare(PrepareSettings(source="hf", input="codeparrot/conala-mined-curated", output=tmp_path, domain="programming"))


def test_generic_source_needs_domain_and_field(tmp_path):
    source = write_lines(tmp_path / "q.jsonl", [{"q": "how to sort a list"}])
    with pytest.raises(InputError, match="needs --domain"):
        prepare(PrepareSettings(source="jsonl", input=str(source), output=tmp_path / "o", text_field="q"))
    with pytest.raises(InputError, match="needs --text-field"):
        prepare(PrepareSettings(source="jsonl", input=str(source), output=tmp_path / "o", domain="programming"))
