"""Settings of `cachetune generate` and `cachetune mine`: the one place each is declared (see cachetune.settings)."""

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, model_validator

from cachetune.records import OnError
from cachetune.settings import PathList, StageSettings

BackendName = Literal["llama-cpp", "openai", "vllm"]


class GenerateSettings(StageSettings):
    """Paraphrases (and look-alike negatives) of real queries from an instruct LLM."""

    PIPELINE_FILLS: ClassVar[frozenset[str]] = frozenset({"output", "resume"})
    RUN_INPUTS: ClassVar[frozenset[str]] = frozenset({"input"})

    input: PathList = Field(
        min_length=1, description="queries.*.jsonl from `cachetune prepare`; repeat for several. Taken in a seeded order (see seed)."
    )
    output: Path = Field(
        description="JSONL to write: triplets (anchor, paraphrase, negative), or label-1 pairs with --negatives 0; "
        "its progress log and generate_report.json go beside it."
    )
    domain: str | None = Field(None, description="Prompt domain (programming, medical, else generic); default: each query's.")
    backend: BackendName = Field("llama-cpp", description="Where the LLM runs.")
    model: str | None = Field(
        None, description="llama-cpp: qwen2.5-coder-0.5b (default), qwen2.5-coder-1.5b or a .gguf; openai/vllm: the model name."
    )
    paraphrases: int = Field(3, ge=1, description="Paraphrases asked for per query.")
    negatives: int = Field(2, ge=0, description="Look-alike negatives asked for per query; 0: paraphrases only, written as pairs.")
    batch_size: int = Field(32, ge=1, description="Queries per backend call (llama-cpp: sequences decoded together).")
    threads: int | None = Field(None, ge=1, description="llama-cpp: CPU threads; default: every core.")
    tensor_parallel: int = Field(1, ge=1, description="vllm: GPUs per model.")
    base_url: str | None = Field(None, description="openai: the server, e.g. http://127.0.0.1:8000/v1.")
    api_key_env: str | None = Field(None, description="openai: environment variable that holds the API key.")
    concurrency: int = Field(8, ge=1, description="openai: requests in flight.")
    timeout: float = Field(120.0, gt=0, description="openai: seconds to wait for one answer.")
    retries: int = Field(4, ge=0, description="openai: retries of a failed request, with exponential backoff.")
    max_queries: int | None = Field(None, ge=1, description="Only N queries: a seeded sample, contained in any larger one.")
    resume: bool = Field(False, description="Finish an interrupted run: every query exactly once.")
    seed: int = Field(42, description="Seed of the query order and of sampling (each query's is derived from it and its id).")
    temperature: float = Field(0.7, ge=0, description="Sampling temperature; 0 decodes greedily.")
    max_tokens: int = Field(384, ge=16, description="Tokens the LLM may write per query.")
    parse_retries: int = Field(1, ge=0, description="An answer that is not the JSON asked for is asked again, with another seed.")
    on_error: OnError = Field("fail", description="fail: stop at a malformed query line; skip: set it aside and go on.")


class MineSettings(StageSettings):
    """Hard negatives for same-intent pairs, mined from real queries by embedding similarity (other groups only)."""

    PIPELINE_FILLS: ClassVar[frozenset[str]] = frozenset({"output", "base_model"})
    RUN_INPUTS: ClassVar[frozenset[str]] = frozenset({"input", "corpus"})

    input: Path = Field(description="Labelled pairs (label 1 used) or triplets (anchor and positive used).")
    corpus: PathList = Field(
        min_length=1, description="queries.*.jsonl: where negatives come from (with their groups); repeat for several."
    )
    output: Path = Field(description="Triplets JSONL; a .report.json goes beside it.")
    base_model: str | None = Field(None, description="Model that ranks candidates; default: packaged all-MiniLM-L6-v2.")
    num_negatives: int = Field(3, ge=1, description="Negatives per pair.")
    range_min: int = Field(10, ge=0, description="Skip the N most similar candidates (likely unlabelled paraphrases).")
    range_max: int = Field(50, ge=1, description="Look no further than rank N.")
    margin: float = Field(0.1, description="Skip candidates whose cosine to the anchor is within this of the positive's.")
    batch_size: int = Field(64, ge=1, description="Texts per encoding batch.")

    @model_validator(mode="after")
    def _range(self) -> "MineSettings":
        if self.range_min >= self.range_max:
            raise ValueError(f"range_min ({self.range_min}) must be below range_max ({self.range_max})")
        return self
