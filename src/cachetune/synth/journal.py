"""Resumable append-only output: a kill at any moment loses at most the work in flight, duplicates nothing.

The rows of one unit of work (one query) are appended to OUTPUT and synced; then one line in
OUTPUT.progress.jsonl records the unit's id, its details and OUTPUT's size after it, and is synced
too. That line is the commit. On resume OUTPUT is cut back to the last committed size (dropping rows
written after the last commit) and a torn last progress line is dropped, so every unit ends up in the
output exactly once.
"""

import json
import os
from pathlib import Path

from cachetune.errors import InputError
from cachetune.records import Record, to_json_line


def progress_path(output: Path) -> Path:
    output = Path(output)
    return output.with_name(output.stem + ".progress.jsonl")


class Journal:
    @staticmethod
    def check(output: Path, resume: bool) -> None:
        """Refuse to start over work already there, before anything is loaded or written."""
        if not resume and (Path(output).exists() or progress_path(output).exists()):
            raise InputError(f"{output}: already exists; pass --resume to finish that run, or choose another --output")

    def __init__(self, output: Path, resume: bool) -> None:
        self.check(output, resume)
        self.output = Path(output)
        self.log = progress_path(self.output)
        self.entries = self._read_log() if resume and self.log.exists() else []
        committed = self.entries[-1]["offset"] if self.entries else 0
        size = self.output.stat().st_size if self.output.exists() else 0
        if size < committed:
            raise InputError(f"{self.output}: {size} bytes, but {self.log} records {committed} committed; the files do not belong together")
        self.output.parent.mkdir(parents=True, exist_ok=True)
        with self.output.open("ab") as out:
            out.truncate(committed)  # rows of a unit that was never committed
        self.done = {entry["id"] for entry in self.entries}
        self._out = self.output.open("ab")
        self._log = self.log.open("ab")

    def _read_log(self) -> list[dict]:
        entries, good_bytes = [], 0
        raw = self.log.read_bytes()
        lines = raw.split(b"\n")
        for number, line in enumerate(lines, start=1):
            if not line:
                continue
            try:
                entries.append(json.loads(line))
            except json.JSONDecodeError:
                if number == len(lines):  # the last line, cut short by a kill
                    break
                raise InputError(f"{self.log}:{number}: not a progress record; the file is damaged") from None
            good_bytes += len(line) + 1
        with self.log.open("ab") as log:
            log.truncate(good_bytes)
        return entries

    def commit(self, unit_id: str, rows: list[Record], **details) -> None:
        self._out.write("".join(to_json_line(row) for row in rows).encode("utf-8"))
        _sync(self._out)
        entry = {"id": unit_id, "rows": len(rows), "offset": self._out.tell(), **details}
        self._log.write((json.dumps(entry) + "\n").encode("utf-8"))
        _sync(self._log)
        self.entries.append(entry)
        self.done.add(unit_id)

    def close(self) -> None:
        self._out.close()
        self._log.close()


def _sync(handle) -> None:
    handle.flush()
    os.fsync(handle.fileno())
