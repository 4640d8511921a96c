"""What the quality benchmarks share: the data of a domain's experiments, and one way to score a model on it.

A model is scored the way a cache fails (cachetune.replay: populated-cache P-CHR AUC) beside pair AP, recall at
precision 0.95 and retrieval recall@1 on each held-out test file, and on general-domain pairs (STS-B: Spearman;
MRPC: AP). Every distinct text is encoded once per model.
"""

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from harness import REPO

from cachetune.data.prepare import prepare
from cachetune.data.settings import PrepareSettings
from cachetune.metrics import average_precision, recall_at_precision
from cachetune.models import load_encoder
from cachetune.pipeline import run_pipeline
from cachetune.records import Pair, Query, Triplet, read_records, write_jsonl
from cachetune.replay import ReplaySet, pair_scores, replay_metrics, retrieval_recall_at_1
from cachetune.synth.generate import generate
from cachetune.synth.journal import progress_path
from cachetune.synth.mine import mine
from cachetune.synth.settings import GenerateSettings, MineSettings
from cachetune.train.validation import GeneralValidation, vectors_of

EXPERIMENTS = REPO / "runs" / "experiments"
# The prepare steps of configs/DOMAIN.yaml that the experiments read beside the main dataset: another dataset's
# queries (validation negatives; for medical also training negatives) and a second labelled training set.
OTHER_DATASET = {"programming": "cosqa", "medical": "medquad"}
SECOND_PAIRS = {"medical": "rqe-train"}
MORE_SECOND_QUERIES = 3000  # the same step with more sampled questions: does more labelled data keep paying?
LLM_MAX_TOKENS = {"programming": 192, "medical": 256}  # as in configs/DOMAIN-logs.yaml
T_975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571}  # Student's t, two-sided 95%, by degrees of freedom


@dataclass(frozen=True)
class DomainData:
    train_pairs: Path  # the train split's labelled pairs
    mined: Path  # triplets: train same-intent pairs with negatives mined by the base model from other train groups
    val: Path  # validation pairs whose negatives are built unlike the training ones
    tests: dict[str, Path]  # held-out test pairs, never used to choose
    general_val: tuple[Path, ...]  # general pairs that guard training and selection
    general_preserve: Path  # general texts (STS-B train) a recipe may hold near the base model's vectors
    general_test: dict[str, Path]  # general pairs reported
    logs_corpus: tuple[Path, ...]  # unlabelled queries of another dataset of the domain
    second_pairs: Path | None  # labelled training pairs of a second dataset (SECOND_PAIRS), held-out texts excluded
    more_second_pairs: Path | None  # the same from MORE_SECOND_QUERIES sampled questions


def general_test_data(data_root: Path, folder: Path) -> dict[str, Path]:
    """STS-B test and MRPC test (reported, never guarded on), through `prepare`."""
    files = {}
    for name, source, file in (("STS-B test", "stsb", "stsb-sts-test.tsv"), ("MRPC test", "mrpc", "msr_paraphrase_test.txt")):
        target = folder / f"{source}-test" / "pairs.test.jsonl"
        if not target.is_file():
            prepare(
                PrepareSettings(source=source, input=str(data_root / "general" / file), output=target.parent, max_chars=400, val=0, test=1)
            )
        files[name] = target
    return files


def negatives_as_pairs(triplets: Path, source: str) -> list[Pair]:
    return [
        Pair(query1=t.anchor, query2=t.hard_negative, label=0, domain=t.domain, similarity_score=t.similarity_score, source=source)
        for t in read_records(triplets, Triplet)
    ]


def mixed_validation(domain: str, folder: Path, main: str, other_folder: Path) -> Path:
    """The validation pairs (made once): the main set's pairs, negatives mined from its own queries and from another
    dataset's, and for medical RQE's validation half."""
    source = OTHER_DATASET[domain]
    val = folder / "val-mixed.jsonl"
    if not val.is_file():
        val_pairs = read_records(folder / main / "pairs.val.jsonl", Pair)  # positives and prepare's lexical negatives
        corpus = (folder / main / "queries.val.jsonl", folder / main / "queries.train.jsonl")
        mine(
            MineSettings(
                input=folder / main / "pairs.val.jsonl", corpus=corpus, output=folder / "val-mined.jsonl", num_negatives=1, range_min=2
            )
        )
        mine(
            MineSettings(
                input=folder / main / "pairs.val.jsonl", corpus=(other_folder / "queries.train.jsonl",), output=folder / "val-other.jsonl",
                num_negatives=1, range_min=0, margin=0.0,
            )
        )  # fmt: skip
        extra = read_records(folder / "prepare-rqe-valid" / "pairs.val.jsonl", Pair) if domain == "medical" else []
        write_jsonl(
            val,
            val_pairs
            + negatives_as_pairs(folder / "val-mined.jsonl", "mined-negative")
            + negatives_as_pairs(folder / "val-other.jsonl", f"{source}-negative")
            + extra,
        )
    return val


def domain_data(domain: str) -> DomainData:
    """Prepare (once) everything a domain's experiments read, under runs/experiments/DOMAIN/data."""
    run, _ = run_pipeline(REPO / "configs" / f"{domain}.yaml", run_dir=EXPERIMENTS / domain / "data", stages=("prepare",))
    folder, data_root = run.folder, run.data_root
    general_val = tuple(folder / path for path in dict(run.stages)["train"].general_data)  # the config's guard
    general_test = general_test_data(data_root, EXPERIMENTS / "general")
    main = "prepare-conala" if domain == "programming" else "prepare-mqp"
    source = OTHER_DATASET[domain]
    other_folder = folder / f"prepare-{source}"
    train_corpus = [folder / main / "queries.train.jsonl"] + ([other_folder / "queries.train.jsonl"] if domain == "medical" else [])
    mined = folder / "mined-train.jsonl"
    if not mined.is_file():  # hard negatives for training: other training groups (and, for medical, MedQuAD)
        mine(
            MineSettings(input=folder / main / "pairs.train.jsonl", corpus=tuple(train_corpus), output=mined, num_negatives=2, range_min=3)
        )
    val = mixed_validation(domain, folder, main, other_folder)
    second_pairs = more_second_pairs = None
    if domain in SECOND_PAIRS:
        name = f"prepare-{SECOND_PAIRS[domain]}"
        second_pairs, more_name = folder / name / "pairs.train.jsonl", f"{name}-{MORE_SECOND_QUERIES}"
        step = dict(run.stages)[name].model_copy(update={"max_queries": MORE_SECOND_QUERIES, "output": folder / more_name})
        run.stage(more_name, step, prepare)
        more_second_pairs = folder / more_name / "pairs.train.jsonl"
    tests = (
        {"CoNaLa test": folder / main / "pairs.test.jsonl"}
        if domain == "programming"
        else {"mqp test": folder / main / "pairs.test.jsonl", "RQE-valid test half": folder / "prepare-rqe-valid" / "pairs.test.jsonl"}
    )
    return DomainData(
        folder / main / "pairs.train.jsonl",
        mined,
        val,
        tests,
        general_val,
        folder / "prepare-stsb-train" / "pairs.test.jsonl",
        general_test,
        (other_folder / "queries.train.jsonl",),
        second_pairs,
        more_second_pairs,
    )


def labelled_triplets(pairs: tuple[Path, ...], output: Path) -> Path:
    """Triplets whose hard negative is a labelled non-duplicate of the anchor (mqp's doctor-written look-alike, RQE's
    and prepare's negatives): `mine` with negatives_from labels on each file, written together once."""
    if not output.is_file():
        parts = [output.with_name(f"{output.stem}-{number}.jsonl") for number in range(len(pairs))]
        for path, part in zip(pairs, parts):
            mine(MineSettings(input=path, negatives_from="labels", output=part))
        write_jsonl(output, [triplet for part in parts for triplet in read_records(part, Triplet)])
    return output


def trap_triplets(pairs: Path, output: Path) -> Path:
    """Triplets whose hard negative is a rule-made trap of the anchor (`mine` with negatives_from traps), written once."""
    if not output.is_file():
        mine(MineSettings(input=pairs, negatives_from="traps", output=output))
    return output


def generated(domain: str, queries: Path, output: Path, **options) -> dict:
    """Three paraphrases per query (and `negatives` look-alikes) into `output`, unless the report beside it says that
    was done; an interrupted run resumes. Returns the report."""
    report_file = output.parent / "generate_report.json"
    if not report_file.is_file():
        max_tokens = LLM_MAX_TOKENS[domain] * (2 if options.get("negatives") else 1)
        generate(
            GenerateSettings(
                input=(queries,), output=output, paraphrases=3, max_tokens=max_tokens, resume=progress_path(output).exists(), **options
            )
        )
    return json.loads(report_file.read_text())


def llm_paraphrase_triplets(domain: str, data: DomainData) -> Path:
    """The seed paper's synthetic data beside the labels: the 0.5B model's paraphrases of the training split's first
    texts (generated once, resumable), each (query, paraphrase) with negatives mined from the training queries as for
    `mined`. Only training texts are read."""
    folder = data.train_pairs.parents[1]
    queries, paraphrases, triplets = folder / "llm-queries.jsonl", folder / "generate-llm" / "pairs.jsonl", folder / "llm-mined.jsonl"
    if not triplets.is_file():
        firsts = {pair.query1 for pair in read_records(data.train_pairs, Pair)}
        write_jsonl(queries, [q for q in read_records(data.train_pairs.with_name("queries.train.jsonl"), Query) if q.text in firsts])
        generated(domain, queries, paraphrases, negatives=0, batch_size=32)
        corpus = (data.train_pairs.with_name("queries.train.jsonl"),)
        mine(MineSettings(input=paraphrases, corpus=corpus, output=triplets, num_negatives=2, range_min=3))
    return triplets


def score_model(spec, tests: dict[str, Path], general: dict[str, Path]) -> dict:
    """Replay AUC, AP, recall@P0.95 and retrieval recall@1 per test file; Spearman (STS-B) or AP (MRPC) per general file."""
    encoder = load_encoder(spec) if isinstance(spec, str | None) else spec
    sets = {name: read_records(path, Pair) for name, path in tests.items()}
    vector_of = vectors_of(encoder, [text for pairs in sets.values() for p in pairs for text in (p.query1, p.query2)])
    results = {}
    for name, pairs in sets.items():
        labels, scores = np.array([p.label for p in pairs]), pair_scores(pairs, vector_of)
        results[name] = {
            "replay_auc": replay_metrics(ReplaySet.from_pairs(pairs), vector_of)["auc"],
            "ap": average_precision(labels, scores),
            "recall_at_p95": recall_at_precision(labels, scores, 0.95)[0],
            "recall_at_1": retrieval_recall_at_1(pairs, vector_of),
        }
    general_scores = GeneralValidation(tuple(general.values()))(encoder)
    for name, value in zip(general, general_scores.values()):
        results[name] = value
    return results


def mean_interval(values: list[float]) -> tuple[float, float]:
    """Mean and half-width of its 95% t interval (0 for one value)."""
    mean = float(np.mean(values))
    if len(values) < 2:
        return mean, 0.0
    return mean, T_975[len(values) - 1] * float(np.std(values, ddof=1)) / math.sqrt(len(values))


def cell(values: list[float]) -> str:
    """A table cell: the mean, with the half-width of its 95% t interval over several values."""
    mean, half = mean_interval(values)
    return f"{mean:.3f} ± {half:.3f}" if len(values) > 1 else f"{mean:.3f}"


def real_texts(data: Path) -> list[str]:
    """Distinct real questions from ../shared/data: titles, web queries, consumer and NIH health questions."""
    texts = [json.loads(line)["question"] for line in (data / "medical" / "medquad-questions.jsonl").open()]
    texts += [json.loads(line)["title"] for line in (data / "programming" / "staqc-sql-titles.jsonl").open()]
    texts += [json.loads(line)["query"] for line in (data / "programming" / "cosqa-queries.jsonl").open()]
    for line in (data / "medical" / "rqe-train.jsonl").open():
        row = json.loads(line)
        texts += [row["chq"], row["faq"]]
    texts += [row["intent"] for row in json.loads((data / "programming" / "conala-train.json").read_text())]
    return list(dict.fromkeys(text.strip() for text in texts if text and 10 <= len(text.strip()) <= 300))


def http_workload(data: Path) -> dict[str, list[str]]:
    """The HTTP benchmark's prompts (support/traffic.py `http_benchmark`): stored, 1,000 real questions and 1,200 CoNaLa
    intents; checked, never stored, half those intents' rewrites by CoNaLa's annotators and half other real
    questions: 400 for one client, 2,000 for sixteen; and 20 others to warm up with."""
    rows = json.loads((data / "programming" / "conala-train.json").read_text())
    rewrites = [(r["intent"].strip(), r["rewritten_intent"].strip()) for r in rows if r.get("intent") and r.get("rewritten_intent")]
    rewrites = list({intent: new for intent, new in rewrites if intent.lower() != new.lower()}.items())[:1_200]
    taken = {text for pair in rewrites for text in pair}
    others = [text for text in real_texts(data) if text not in taken][:2_220]
    new = [text for pair in zip([new for _, new in rewrites], others[1_000:2_200]) for text in pair]  # alternating
    return {
        "stored": others[:1_000] + [intent for intent, _ in rewrites],
        "new_single": new[:400],
        "new_many": new[400:2_400],
        "warm_up": others[2_200:],
    }
