import json

import pytest

from cachetune.errors import InputError
from cachetune.records import Triplet, read_records
from cachetune.synth.journal import Journal, progress_path


def rows(name: str, count: int) -> list[Triplet]:
    return [Triplet(anchor=name, positive=f"{name} p{i}", hard_negative=f"{name} n{i}", domain="d", source="s") for i in range(count)]


def test_commit_then_resume_continues_where_it_stopped(tmp_path):
    output = tmp_path / "triplets.jsonl"
    journal = Journal(output, resume=False)
    journal.commit("q1", rows("q1", 2), seconds=1.0)
    journal.commit("q2", [], seconds=1.0)
    journal.close()
    resumed = Journal(output, resume=True)
    assert resumed.done == {"q1", "q2"}
    resumed.commit("q3", rows("q3", 1))
    resumed.close()
    assert [t.anchor for t in read_records(output, Triplet)] == ["q1", "q1", "q3"]


def test_a_kill_mid_write_loses_only_the_unit_in_flight(tmp_path):
    output = tmp_path / "triplets.jsonl"
    journal = Journal(output, resume=False)
    journal.commit("q1", rows("q1", 2))
    journal.close()
    # What a kill leaves: rows of q2 written without their commit, the last one cut short, and half a log line.
    with output.open("a") as out:
        out.write(rows("q2", 1)[0].model_dump_json() + "\n" + '{"schema_version": 1, "anchor": "q2", "posi')
    with progress_path(output).open("a") as log:
        log.write('{"id": "q2", "rows": 2, "off')
    resumed = Journal(output, resume=True)
    assert resumed.done == {"q1"}
    resumed.commit("q2", rows("q2", 2))
    resumed.close()
    assert [t.anchor for t in read_records(output, Triplet)] == ["q1", "q1", "q2", "q2"]
    assert [json.loads(line)["id"] for line in progress_path(output).read_text().splitlines()] == ["q1", "q2"]


def test_existing_output_needs_resume_and_mismatched_files_are_refused(tmp_path):
    output = tmp_path / "triplets.jsonl"
    journal = Journal(output, resume=False)
    journal.commit("q1", rows("q1", 3))
    journal.close()
    with pytest.raises(InputError, match="already exists; pass --resume"):
        Journal(output, resume=False)
    output.write_text("")
    with pytest.raises(InputError, match="do not belong together"):
        Journal(output, resume=True)
