import json

import pytest

from cachetune.records import (
    InputError,
    Pair,
    Query,
    RejectLog,
    Triplet,
    atomic_write,
    read_records,
    rejects_path,
    write_jsonl,
)


def test_records_round_trip_with_schema_version(tmp_path):
    path = tmp_path / "t.jsonl"
    rows = [Triplet(anchor="sort a list", positive="order a list", hard_negative="sort a dict", domain="programming", source="test")]
    write_jsonl(path, rows)
    assert json.loads(path.read_text())["schema_version"] == 1
    assert read_records(path, Triplet) == rows


def test_malformed_line_names_file_and_line(tmp_path):
    path = tmp_path / "q.jsonl"
    good = json.dumps({"id": "a", "text": "how to sort", "domain": "d", "source": "s", "group": "g"})
    path.write_text(f"{good}\n{good}\n{{not json\n{good}\n")
    with pytest.raises(InputError, match=rf"^{path}:3: invalid JSON"):
        read_records(path, Query)


def test_skip_sets_bad_lines_aside_and_keeps_the_rest(tmp_path):
    path = tmp_path / "p.jsonl"
    rows = [
        {"query1": "a?", "query2": "b?", "label": 1, "domain": "d", "source": "s"},
        {"query1": "a?", "query2": "b?", "label": 2, "domain": "d", "source": "s"},
        {"query1": "a?", "label": 0, "domain": "d", "source": "s"},
        {"query1": "a?", "query2": "b?", "label": 0, "domain": "d", "source": "s", "colour": "red"},
        {"query1": "c?", "query2": "d?", "label": 0, "domain": "d", "source": "s"},
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    rejects = RejectLog()
    pairs = read_records(path, Pair, on_error="skip", rejects=rejects)
    assert [pair.query1 for pair in pairs] == ["a?", "c?"]
    reasons = [entry["reason"] for entry in rejects.entries]
    assert reasons == ["field 'label': Input should be 0 or 1", "missing field 'query2'", "unknown field 'colour'"]
    assert [entry["where"] for entry in rejects.entries] == [f"{path}:2", f"{path}:3", f"{path}:4"]


def test_empty_text_is_invalid(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text(json.dumps({"id": "a", "text": "", "domain": "d", "source": "s", "group": "g"}) + "\n")
    with pytest.raises(InputError, match=r":1: field 'text'"):
        read_records(path, Query)


def test_missing_file_is_a_record_error(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_records(tmp_path / "absent.jsonl", Query)


def test_failed_atomic_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "out.jsonl"
    path.write_text("old\n")
    with pytest.raises(RuntimeError):
        with atomic_write(path) as out:
            out.write("half")
            raise RuntimeError("interrupted")
    assert path.read_text() == "old\n"
    assert list(tmp_path.iterdir()) == [path]


def test_rejects_path_sits_beside_the_output(tmp_path):
    assert rejects_path(tmp_path / "triplets.jsonl") == tmp_path / "triplets.rejects.jsonl"
    assert rejects_path(tmp_path / "prepared") == tmp_path / "prepared" / "rejects.jsonl"


def test_labelled_pairs_come_from_pairs_and_triplets_each_once(tmp_path):
    from cachetune.records import Pair, Triplet, read_labelled_pairs, write_jsonl

    pairs, triplets = tmp_path / "pairs.jsonl", tmp_path / "triplets.jsonl"
    write_jsonl(pairs, [Pair(query1="a q", query2="a p", label=1, domain="d", source="s")])
    write_jsonl(triplets, [Triplet(anchor="a q", positive="a p", hard_negative="b q", domain="d", source="mined")])
    read = read_labelled_pairs([pairs, triplets])
    assert [(p.query1, p.query2, p.label) for p in read] == [("a q", "a p", 1), ("a q", "b q", 0)]
