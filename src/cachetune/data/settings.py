"""Settings of `cachetune prepare`: the one place each of them is declared (see cachetune.settings)."""

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, model_validator

from cachetune.records import OnError
from cachetune.settings import PathList, StageSettings

SPLITS = ("train", "val", "test")


def split_file(records: Literal["queries", "pairs"], split: str) -> str:
    """The file, inside prepare's output folder, that holds one split of its queries or pairs: `pairs.train.jsonl`."""
    return f"{records}.{split}.jsonl"


SourceName = Literal["conala", "medquad", "staqc", "cosqa", "mqp", "rqe", "meqsum", "stsb", "mrpc", "jsonl", "csv", "text", "hf"]


class PrepareSettings(StageSettings):
    """Clean, de-duplicate and split real queries (and labelled pairs) without leakage."""

    PIPELINE_FILLS: ClassVar[frozenset[str]] = frozenset({"output"})
    RUN_INPUTS: ClassVar[frozenset[str]] = frozenset({"exclude"})

    source: SourceName = Field(description="Dataset loader; jsonl/csv/text for your own logs, hf for `datasets`.")
    input: str = Field(description="File, folder, or (with source hf) a hub dataset id.")
    output: Path = Field(description="Folder for queries/pairs .{train,val,test}.jsonl and the report.")
    domain: str | None = Field(None, description="Domain of the queries; named sources know theirs.")
    min_chars: int = Field(10, ge=1, description="Drop texts shorter than this (after cleaning).")
    max_chars: int = Field(200, ge=1, description="Drop texts longer than this.")
    dedupe: Literal["exact", "near"] = Field("near", description="near: also drop MinHash near-duplicates.")
    near_threshold: float = Field(0.95, gt=0, le=1, description="Jaccard similarity of character 5-grams for near-duplicates.")
    val: float = Field(0.05, ge=0, le=1, description="Share of groups in the validation split.")
    test: float = Field(0.1, ge=0, le=1, description="Share of groups in the test split.")
    seed: int = Field(42, description="Seed of the sample and of the split.")
    max_queries: int | None = Field(None, ge=1, description="Keep a seeded sample of whole groups, at most N queries.")
    on_error: OnError = Field("fail", description="fail: stop at the first bad row; skip: set bad rows aside in OUTPUT/rejects.jsonl.")
    text_field: str | None = Field(None, description="Field holding the query (jsonl, csv, hf).")
    group_field: str | None = Field(None, description="Field whose equal values must stay in one split.")
    hf_split: str = Field("train", description="Split to read with source hf.")
    exclude: PathList = Field(
        (), description="Queries or pairs files (held-out sets) whose texts must not appear in the output; repeat for several."
    )

    @model_validator(mode="after")
    def _consistent(self) -> "PrepareSettings":
        if self.min_chars > self.max_chars:
            raise ValueError(f"min_chars ({self.min_chars}) is above max_chars ({self.max_chars})")
        if self.val + self.test > 1:
            raise ValueError(f"val + test is over 1: {self.val} + {self.test}")
        return self
