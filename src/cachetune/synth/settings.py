"""Settings of `cachetune generate` and `cachetune mine`: the one place each is declared (see cachetune.settings)."""

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, model_validator

from cachetune.records import OnError
from cachetune.settings import PathList, StageSettings
from cachetune.synth.traps import TRAP_KINDS, TrapKind

BackendName = Literal["llama-cpp", "openai", "vllm"]


class LlmSettings(StageSettings):
    """Where the LLM runs and how it samples: shared by `generate` and `judge`."""

    backend: BackendName = Field("llama-cpp", description="Where the LLM runs.")
    model: str | None = Field(
        None, description="llama-cpp: qwen2.5-coder-0.5b (default), qwen2.5-coder-1.5b or a .gguf; openai/vllm: the model name."
    )
    batch_size: int = Field(32, ge=1, description="Requests per backend call (llama-cpp: sequences decoded together).")
    threads: int | None = Field(None, ge=1, description="llama-cpp: CPU threads; default: every core.")
    tensor_parallel: int = Field(1, ge=1, description="vllm: GPUs per model.")
    base_url: str | None = Field(None, description="openai: the server, e.g. http://127.0.0.1:8000/v1.")
    api_key_env: str | None = Field(None, description="openai: environment variable that holds the API key.")
    concurrency: int = Field(8, ge=1, description="openai: requests in flight.")
    timeout: float = Field(120.0, gt=0, description="openai: seconds to wait for one answer.")
    retries: int = Field(4, ge=0, description="openai: retries of a failed request, with exponential backoff.")
    seed: int = Field(42, description="Seed of the order of the work and of sampling (each request's is derived from it).")
    temperature: float = Field(0.7, ge=0, description="Sampling temperature; 0 decodes greedily.")
    max_tokens: int = Field(384, ge=16, description="Tokens the LLM may write per request.")


class GenerateSettings(LlmSettings):
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
    paraphrases: int = Field(3, ge=1, description="Paraphrases asked for per query.")
    negatives: int = Field(2, ge=0, description="Look-alike negatives asked for per query; 0: paraphrases only, written as pairs.")
    max_queries: int | None = Field(None, ge=1, description="Only N queries: a seeded sample, contained in any larger one.")
    resume: bool = Field(False, description="Finish an interrupted run: every query exactly once.")
    parse_retries: int = Field(1, ge=0, description="An answer that is not the JSON asked for is asked again, with another seed.")
    on_error: OnError = Field("fail", description="fail: stop at a malformed query line; skip: set it aside and go on.")


class JudgeSettings(LlmSettings):
    """The LLM as a judge of "same question?": drops mined negatives that ask the same thing as their anchor (false
    negatives), or, on labelled pairs, measures how often it agrees with the labels."""

    PIPELINE_FILLS: ClassVar[frozenset[str]] = frozenset({"output", "resume"})
    RUN_INPUTS: ClassVar[frozenset[str]] = frozenset({"input"})

    input: Path = Field(description="Triplets (their anchor and negative are judged) or labelled pairs (the judge is scored).")
    output: Path = Field(
        description="Triplets: those whose negative the judge calls a different question; pairs: each with the judge's "
        "verdict as label. Its progress log and judge_report.json go beside it."
    )
    max_items: int | None = Field(None, ge=1, description="Only N triplets or pairs: a seeded sample.")
    resume: bool = Field(False, description="Finish an interrupted run: every item exactly once.")
    temperature: float = Field(0.0, ge=0, description="Sampling temperature; 0 (the default here) decodes greedily.")
    max_tokens: int = Field(16, ge=8, description="Tokens the LLM may write per verdict.")


class MineSettings(StageSettings):
    """Hard negatives for same-intent pairs, mined from real queries by embedding similarity (other groups only), or
    taken from the input's own labelled non-duplicates."""

    PIPELINE_FILLS: ClassVar[frozenset[str]] = frozenset({"output", "base_model"})
    RUN_INPUTS: ClassVar[frozenset[str]] = frozenset({"input", "corpus"})

    input: Path = Field(description="Labelled pairs (label 1 used) or triplets (anchor and positive used).")
    negatives_from: Literal["corpus", "labels", "traps"] = Field(
        "corpus",
        description="corpus: mined by similarity from --corpus; labels: every label-0 pair of the input with the same "
        "first text (the dataset's own look-alikes), no model; traps: counterfactual look-alikes of each anchor made by "
        "rule (negation, number, entity, scope; names and qualifiers from --corpus or the input), no model.",
    )
    trap_kinds: tuple[TrapKind, ...] = Field(TRAP_KINDS, description="traps: the kinds of trap to make, at most one of each per anchor.")
    seed: int = Field(42, description="traps: seed of the rules' choices (which word, which new value).")
    corpus: PathList = Field((), description="queries.*.jsonl: where negatives come from (with their groups); repeat for several.")
    output: Path = Field(description="Triplets JSONL; a .report.json goes beside it.")
    base_model: str | None = Field(None, description="Model that ranks candidates; default: packaged all-MiniLM-L6-v2.")
    num_negatives: int = Field(3, ge=1, description="Negatives per pair.")
    range_min: int = Field(10, ge=0, description="Skip the N most similar candidates (likely unlabelled paraphrases).")
    range_max: int = Field(50, ge=1, description="Look no further than rank N.")
    margin: float = Field(0.1, description="Skip candidates whose cosine to the anchor is within this of the positive's.")
    batch_size: int = Field(64, ge=1, description="Texts per encoding batch.")

    @model_validator(mode="after")
    def _coherent(self) -> "MineSettings":
        if self.range_min >= self.range_max:
            raise ValueError(f"range_min ({self.range_min}) must be below range_max ({self.range_max})")
        if self.negatives_from == "traps" and not self.trap_kinds:
            raise ValueError("trap_kinds: at least one kind is needed with negatives_from traps")
        if self.negatives_from == "corpus" and not self.corpus:
            raise ValueError("corpus: at least one queries file is needed to mine from (or negatives_from: labels)")
        return self
