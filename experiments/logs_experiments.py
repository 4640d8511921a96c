"""From query logs alone: what an LLM's paraphrases are worth, how that grows with the LLM time spent, and which
guard against false negatives among the mined ones helps.

    .venv/bin/python experiments/logs_experiments.py --domain programming|medical [--part judge growth variants] [--seeds 1 2 3] [--sizes 250 1000 0] [--variants ...]

Reads the run of configs/DOMAIN-logs.yaml (run `cachetune pipeline --config configs/DOMAIN-logs.yaml --stage prepare
--stage generate` first): the logged queries (no labels), the 0.5B model's paraphrases of them (generate/pairs.jsonl,
in the seeded order generation took them). Scored on the same held-out human pairs and general sets as
experiments/experiments.py (support/measure.py), which the logs never contain.
- judge: the LLM judge's agreement with human labels on 200 labelled training pairs of the domain, per LLM.
- growth: the paraphrases of the first N queries (250, 1,000, all), negatives mined from the other logged queries,
  MNR on every weight for 3 epochs, the general guard on; three seeds per N.
- variants, at N = 250 (against growth at 250): mined negatives the LLM judge calls "same question" dropped;
  paraphrases the judge does not call the same question dropped; GISTEmbed (the base model as a guide) instead of
  MNR; the 0.5B model's paraphrases with the domain's current prompt (to measure a new prompt); the 1.5B model's
  paraphrases instead of the 0.5B's; the 0.5B model's paraphrases trained 1 epoch instead of 3, or with negatives
  mined further down the base model's ranking (false negatives are rarer there); the 1.5B model's paraphrases with
  its own look-alike questions (same topic, another question) as negatives beside mined ones, as the only negatives,
  or as labelled pairs (paraphrase: same, look-alike: different) for the labelled recipe v1 (OnlineContrastive,
  LoRA). At every logged query (against growth at all): the logged query nearest by TF-IDF as a second negative
  beside the mined one (a look-alike by words, as prepare builds CoNaLa's labelled negatives, here without labels), 1
  epoch instead of 3, or twice the learning rate. The judge is the 1.5B model, the one that agrees with human labels
  (the 0.5B judge is near chance); at ~0.75 s a pair on 2 cores, 250 queries' data is what fits.
Results accumulate in results/experiments_logs_DOMAIN.{json,md}.
"""

import argparse
import json
import random
import time
from pathlib import Path

import numpy as np
from common import RESULTS, machine, save
from measure import EXPERIMENTS, REPO, cell, domain_data, generated, score_model
from recipes import MAX_SEQ_LENGTH, V1_SETTINGS
from sklearn.feature_extraction.text import TfidfVectorizer

from cachetune.models import load_encoder
from cachetune.pipeline import Run
from cachetune.records import Pair, Query, Triplet, read_labelled_pairs, read_records, write_jsonl
from cachetune.replay import pair_scores
from cachetune.synth.generate import planned_queries
from cachetune.synth.journal import progress_path
from cachetune.synth.judge import judge
from cachetune.synth.mine import mine
from cachetune.synth.prompts import load_prompt
from cachetune.synth.settings import JudgeSettings, MineSettings
from cachetune.text import match_key
from cachetune.train.settings import TrainSettings
from cachetune.train.trainer import train
from cachetune.train.validation import vectors_of

SIZES = (250, 1000, 0)  # 0: every logged query
VARIANT_SIZE = 250
SMALL_MODEL, LARGER_MODEL = "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"
JUDGE_MODEL = LARGER_MODEL
RECIPE = {"loss": ["mnr"], "lora": False, "lr": 2e-5, "epochs": 3, "batch_size": 64}


class Logs:
    """The logs run: its queries, the generated pairs, and their order."""

    def __init__(self, domain: str) -> None:
        self.domain = domain
        self.run = Run(REPO / "configs" / f"{domain}-logs.yaml")
        self.folder = self.run.folder
        generate_settings = dict(self.run.stages)["generate"]
        self.corpus = tuple(self.folder / path for path in generate_settings.input)
        self.generate_settings = generate_settings.model_copy(update={"input": self.corpus})
        self.generated = self.folder / "generate" / "pairs.jsonl"
        self.mine_settings = dict(self.run.stages)["mine-logs"]  # negatives per pair, ranks and margin: as the config mines
        self.mined_ranks = (self.mine_settings.range_min, self.mine_settings.range_max)
        self.work = EXPERIMENTS / f"{domain}-logs"

    def order(self) -> list[str]:
        """Query texts in the order generation takes them (a seeded order; its first N are the sample of N)."""
        return [query.text for query in planned_queries(self.generate_settings)]

    def pairs_of_first(self, size: int | None, generated: Path | None = None) -> Path:
        """The generated pairs whose query is among the first `size` queries."""
        generated = generated or self.generated
        target = self.work / f"pairs-{size or 'all'}-{generated.parent.name}.jsonl"
        if not target.is_file():
            first = set(self.order()[:size])
            write_jsonl(target, [p for p in read_records(generated, Pair) if p.query1 in first])
        return target

    def mined(self, pairs: Path, ranks: tuple[int, int] | None = None) -> Path:
        """Negatives for each (query, paraphrase), mined from the other logged queries as the config's mine step does,
        or from the base model's ranks `ranks` instead of the config's."""
        ranks = ranks or self.mined_ranks
        target = pairs.with_name(pairs.stem + (".mined.jsonl" if ranks == self.mined_ranks else f".mined-{ranks[0]}-{ranks[1]}.jsonl"))
        if not target.is_file():
            settings = self.mine_settings.model_dump() | {"input": pairs, "corpus": self.corpus, "output": target}
            mine(MineSettings(**settings | {"range_min": ranks[0], "range_max": ranks[1]}))
        return target


def train_and_score(logs: Logs, data, name: str, train_file: Path, seed: int, **overrides) -> dict:
    folder = logs.work / name / f"seed{seed}"
    info_file = folder / "model" / "training_info.json"
    if not info_file.is_file():
        settings = TrainSettings(
            train_data=(train_file,),
            output=folder / "model",
            general_data=data.general_val,
            max_seq_length=MAX_SEQ_LENGTH[logs.domain],
            seed=seed,
            resume=True,  # an interrupted experiment continues from its last checkpoint
            **{**RECIPE, **overrides},
        )
        train(settings)
    info = json.loads(info_file.read_text())
    return {
        "triplets": info["train_data"][0]["rows"],
        "guard_scale": info["general_guard"]["chosen_scale"],
        "train_seconds": info["train_seconds"],
        "test": score_model(str(folder / "model"), data.tests, data.general_test),
    }


def judge_part(logs: Logs, data, results: dict) -> None:
    """The judge's agreement with human labels on 200 labelled training pairs (100 same, 100 different)."""
    pairs = read_records(data.train_pairs, Pair)
    rng = random.Random(0)
    sample = rng.sample([p for p in pairs if p.label == 1], 100) + rng.sample([p for p in pairs if p.label == 0], 100)
    source = logs.work / "judge-sample.jsonl"
    write_jsonl(source, sample)
    for model in ("qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"):
        if model in results["judge"]:
            continue
        output = logs.work / f"judge-{model}" / "verdicts.jsonl"
        report = judge(JudgeSettings(input=source, output=output, model=model, batch_size=16, resume=output.exists()))
        results["judge"][model] = {**report["agreement"], "wall_seconds": report["wall_seconds_this_run"]}


def growth_part(logs: Logs, data, results: dict, seeds: list[int], sizes: list[int | None]) -> None:
    for size in sizes:
        key = str(size or "all")
        mined = logs.mined(logs.pairs_of_first(size))
        for seed in seeds:
            runs = results["growth"].setdefault(key, {})
            if str(seed) not in runs:
                runs[str(seed)] = {"queries": size or len(logs.order()), **train_and_score(logs, data, f"growth-{key}", mined, seed)}
                checkpoint(logs, results)


def judged(source: Path, output: Path) -> dict:
    """The judge's report on `source`, its verdicts written to `output`; an interrupted run resumes. The output
    exists, partly written, while the judge runs: the report beside it is what marks it finished."""
    report_file = output.parent / "judge_report.json"
    if not report_file.is_file():
        judge(JudgeSettings(input=source, output=output, model=JUDGE_MODEL, batch_size=16, resume=progress_path(output).exists()))
    return json.loads(report_file.read_text())


def judged_negatives(logs: Logs, mined: Path, results: dict) -> Path:
    """The mined triplets less those whose negative the judge calls the same question."""
    filtered = logs.work / f"negatives-{VARIANT_SIZE}-judged" / "triplets.jsonl"
    report = judged(mined, filtered)
    results["judge_filter"] = {key: report[key] for key in ("items_judged", "verdicts", "triplets_dropped_as_false_negatives")}
    return filtered


def accepted_paraphrases(logs: Logs, paraphrases: Path, results: dict) -> Path:
    """The paraphrases the judge calls the same question: a small model's "paraphrase" often asks another one."""
    verdicts = logs.work / f"paraphrases-{VARIANT_SIZE}-judged" / "pairs.jsonl"
    report = judged(paraphrases, verdicts)
    results["paraphrase_judge"] = {key: report[key] for key in ("items_judged", "verdicts", "wall_seconds_this_run")}
    accepted = logs.work / f"pairs-{VARIANT_SIZE}-accepted.jsonl"
    if not accepted.is_file():
        write_jsonl(
            accepted,
            [p.model_copy(update={"source": p.source.removeprefix("judge:")}) for p in read_records(verdicts, Pair) if p.label == 1],
        )
    return accepted


def llm_rows(logs: Logs, model: str, negatives: int, results: dict) -> Path:
    """`model`'s rows, with the domain's current prompt, for the first VARIANT_SIZE queries (resumed after an
    interruption), its report kept in results under the folder's name (model, prompt version, negatives or not)."""
    name = f"generate-{model.removeprefix('qwen2.5-coder-')}-{load_prompt(logs.domain).version}" + ("-negatives" if negatives else "")
    output = logs.work / name / ("triplets.jsonl" if negatives else "pairs.jsonl")
    queries = logs.work / f"queries-{VARIANT_SIZE}.jsonl"
    if not queries.is_file():
        first = set(logs.order()[:VARIANT_SIZE])
        write_jsonl(queries, [q for path in logs.corpus for q in read_records(path, Query) if q.text in first])
    report = generated(logs.domain, queries, output, model=model, negatives=negatives, batch_size=16)
    made = {
        key: report[key] for key in ("queries", "rows", "rejects", "generation_seconds", "queries_per_minute", "model", "prompt_versions")
    }
    results.setdefault("llm_generation", {})[name] = made
    return output


def llm_paraphrases(logs: Logs, model: str, results: dict) -> Path:
    """`model`'s paraphrases of the first queries, with the domain's current prompt."""
    return logs.pairs_of_first(VARIANT_SIZE, llm_rows(logs, model, 0, results))


def larger_model_lookalikes(logs: Logs, results: dict) -> Path:
    """The 1.5B model's paraphrases and look-alike questions (its negatives: same topic, another question, the kind
    of negative a medical cache must refuse) for the same first queries, beside negatives mined for each of its
    (query, paraphrase) pairs from the other logged queries."""
    written = llm_rows(logs, LARGER_MODEL, 2, results)
    combined = written.with_name("triplets-and-mined.jsonl")
    if not combined.is_file():
        triplets = read_records(written, Triplet)
        pairs = written.with_name("pairs.jsonl")
        unique = dict.fromkeys((t.anchor, t.positive, t.domain, t.source) for t in triplets)
        write_jsonl(pairs, [Pair(query1=a, query2=b, label=1, domain=d, source=s) for a, b, d, s in unique])
        write_jsonl(combined, triplets + read_records(logs.mined(pairs), Triplet))
    return combined


def larger_model_lookalike_pairs(logs: Logs, results: dict) -> Path:
    """The 1.5B model's rows as labelled pairs, the way the labelled recipe reads doctors' pairs: each (query,
    paraphrase) same, each (query, look-alike) different. No mined negatives: in the labelled experiments, negatives
    the base model mined lowered medical AP (mnr-lora 0.883 against the base's 0.898)."""
    written = llm_rows(logs, LARGER_MODEL, 2, results)
    pairs = written.with_name("labelled-pairs.jsonl")
    if not pairs.is_file():
        # every "same" pair first, then every "different" one: the order the recorded runs trained on
        write_jsonl(pairs, sorted(read_labelled_pairs([written]), key=lambda pair: -pair.label))
    return pairs


def base_filtered(pairs: Path) -> Path:
    """The pairs less the "same" ones the base model scores below the median of the "different" ones: a paraphrase
    the base finds less alike than a typical look-alike is, read side by side, mostly another question ("What are
    the sources of hypertension? Is post-streptococcal one?" -> "what causes high blood pressure")."""
    kept_file = pairs.with_name(pairs.stem + ".base-filtered.jsonl")
    if not kept_file.is_file():
        records = read_records(pairs, Pair)
        scores = pair_scores(records, vectors_of(load_encoder(None), [t for p in records for t in (p.query1, p.query2)]))
        bar = float(np.median([score for p, score in zip(records, scores) if p.label == 0]))
        write_jsonl(kept_file, [p for p, score in zip(records, scores) if p.label == 0 or score >= bar])
    return kept_file


def lexical_lookalikes_beside_mined(logs: Logs, pairs: Path) -> Path:
    """The mined triplets, and for each (query, paraphrase) a second triplet whose negative is the logged query
    nearest to the query by TF-IDF cosine that is neither the query nor one of its paraphrases."""
    combined = pairs.with_name(pairs.stem + ".mined-and-lexical.jsonl")
    if not combined.is_file():
        generated_pairs = list(dict.fromkeys((p.query1, p.query2, p.domain) for p in read_records(pairs, Pair) if p.label == 1))
        texts = list({match_key(q.text): q.text for path in logs.corpus for q in read_records(path, Query)}.values())
        own_texts: dict[str, set[str]] = {}
        for query, paraphrase, _ in generated_pairs:
            own_texts.setdefault(query, {match_key(query)}).add(match_key(paraphrase))
        vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True).fit(texts)
        queries = sorted(own_texts)
        scores = (vectorizer.transform(queries) @ vectorizer.transform(texts).T).toarray()
        nearest = {}
        for query, row in zip(queries, scores):
            nearest[query] = next((texts[i] for i in np.argsort(-row)[:10] if match_key(texts[i]) not in own_texts[query]), None)
        lexical = [
            Triplet(anchor=query, positive=paraphrase, hard_negative=nearest[query], domain=domain, source="lexical")
            for query, paraphrase, domain in generated_pairs
            if nearest[query]
        ]
        write_jsonl(combined, read_records(logs.mined(pairs), Triplet) + lexical)
    return combined


VARIANTS = (
    "judge-negatives",
    "judge-paraphrases",
    "gist",
    "prompt",
    "one-epoch",
    "distant-negatives",
    "larger-llm",
    "larger-llm-lookalikes",
    "lexical-negatives",
    "one-epoch-all",
    "double-lr-all",
    "larger-llm-lookalikes-only",
    "larger-llm-pairs-oc-lora",
    "larger-llm-pairs-oc-lora-base-filtered",
)


def llm_variants(logs: Logs, results: dict) -> dict:
    """The variants whose data an LLM (paraphrases, look-alikes) or its judge made: choice -> (name, training
    triplets, train overrides). The judge and GIST variants read the logs run's own paraphrases
    (generate/pairs.jsonl: the 0.5B model, the prompt of its generate_report.json)."""
    paraphrases = lambda: logs.pairs_of_first(VARIANT_SIZE)  # noqa: E731
    small_llm_paraphrases = lambda: llm_paraphrases(logs, SMALL_MODEL, results)  # noqa: E731
    version = load_prompt(logs.domain).version
    return {
        "judge-negatives": (
            f"judge-filtered negatives ({VARIANT_SIZE})",
            lambda: judged_negatives(logs, logs.mined(paraphrases()), results),
            {},
        ),
        "judge-paraphrases": (
            f"judge-accepted paraphrases ({VARIANT_SIZE})",
            lambda: logs.mined(accepted_paraphrases(logs, paraphrases(), results)),
            {},
        ),
        "gist": (f"GISTEmbed guide ({VARIANT_SIZE})", lambda: logs.mined(paraphrases()), {"loss": ["gist"]}),
        "prompt": (
            f"0.5B paraphrases, prompt {version} ({VARIANT_SIZE})",
            lambda: logs.mined(small_llm_paraphrases()),
            {},
        ),
        "larger-llm": (
            f"1.5B paraphrases, prompt {version} ({VARIANT_SIZE})",
            lambda: logs.mined(llm_paraphrases(logs, LARGER_MODEL, results)),
            {},
        ),
        "one-epoch": (
            f"0.5B paraphrases, prompt {version}, 1 epoch instead of 3 ({VARIANT_SIZE})",
            lambda: logs.mined(small_llm_paraphrases()),
            {"epochs": 1},
        ),
        "distant-negatives": (
            f"0.5B paraphrases, prompt {version}, negatives mined from ranks 30-100 instead of {'-'.join(map(str, logs.mined_ranks))} ({VARIANT_SIZE})",
            lambda: logs.mined(small_llm_paraphrases(), ranks=(30, 100)),
            {},
        ),
    }


def lookalike_variants(logs: Logs, results: dict) -> dict:
    """The variants trained on the 1.5B model's look-alikes: choice -> (name, training triplets, train overrides)."""
    version = load_prompt(logs.domain).version
    v1_lora = {**V1_SETTINGS, "lora": True}  # RECIPE trains every weight; v1 is a LoRA recipe
    return {
        "larger-llm-lookalikes": (
            f"1.5B paraphrases with its look-alikes and mined negatives, prompt {version} ({VARIANT_SIZE})",
            lambda: larger_model_lookalikes(logs, results),
            {},
        ),
        "larger-llm-lookalikes-only": (
            f"1.5B paraphrases with its look-alikes as the only negatives, prompt {version} ({VARIANT_SIZE})",
            lambda: llm_rows(logs, LARGER_MODEL, 2, results),
            {},
        ),
        "larger-llm-pairs-oc-lora": (
            f"1.5B paraphrases (same) and look-alikes (different) as pairs, the labelled recipe v1 (OnlineContrastive, "
            f"LoRA r16), prompt {version} ({VARIANT_SIZE})",
            lambda: larger_model_lookalike_pairs(logs, results),
            v1_lora,
        ),
        "larger-llm-pairs-oc-lora-base-filtered": (
            f"1.5B paraphrases and look-alikes as pairs for v1 as above, less the paraphrases the base model scores below "
            f"the look-alikes' median, prompt {version} ({VARIANT_SIZE})",
            lambda: base_filtered(larger_model_lookalike_pairs(logs, results)),
            v1_lora,
        ),
    }


def logs_only_variants(logs: Logs) -> dict:
    """The variants trained on every logged query with no LLM: choice -> (name, training triplets, train overrides)."""
    every_query_mined = lambda: logs.mined(logs.pairs_of_first(None))  # noqa: E731
    every = len(logs.order())
    return {
        "lexical-negatives": (
            f"TF-IDF look-alike negatives beside the mined ones, every logged query ({every})",
            lambda: lexical_lookalikes_beside_mined(logs, logs.pairs_of_first(None)),
            {},
        ),
        "one-epoch-all": (
            f"1 epoch instead of 3, every logged query ({every})",
            every_query_mined,
            {"epochs": 1},
        ),
        "double-lr-all": (
            f"learning rate {2 * RECIPE['lr']:g} instead of {RECIPE['lr']:g}, every logged query ({every})",
            every_query_mined,
            {"lr": 2 * RECIPE["lr"]},
        ),
    }


def variants_part(logs: Logs, data, results: dict, seeds: list[int], chosen: list[str]) -> None:
    """Each chosen variant's LLM work is done (resumably) only when it is chosen."""
    variants = {**llm_variants(logs, results), **lookalike_variants(logs, results), **logs_only_variants(logs)}
    for choice in chosen:
        name, triplets, overrides = variants[choice]
        train_file = triplets()
        checkpoint(logs, results)
        for seed in seeds:
            runs = results["variants"].setdefault(name, {})
            if str(seed) not in runs:
                runs[str(seed)] = train_and_score(logs, data, f"variant-{choice}", train_file, seed, **overrides)
                checkpoint(logs, results)


def _judge_lines(results: dict) -> list[str]:
    if not results["judge"]:
        return []
    lines = ["## The LLM judge against human labels (200 labelled training pairs, half same)", ""]
    lines += ["| judge | accuracy | precision of 'same' | recall of 'same' | s |", "|---|---:|---:|---:|---:|"]
    for model, agreement in results["judge"].items():
        lines.append(
            f"| {model} | {agreement['accuracy']:.3f} | {agreement['precision_of_same'] or 0:.3f} | "
            f"{agreement['recall_of_same'] or 0:.3f} | {agreement['wall_seconds']:.0f} |"
        )
    return [*lines, ""]


def _row(label: str, runs: dict, domain_tests: list[str], general: list[str]) -> str:
    """One table row: a training set's runs over seeds, each test's replay AUC, AP and R@1, the general tests."""
    ordered = [runs[s] for s in sorted(runs)]
    cells = [label, ",".join(sorted(runs)), str(ordered[0].get("triplets", "-"))]
    for name in domain_tests:
        cells += [
            cell([r["test"][name][k] for r in ordered])
            for k in ("replay_auc", "ap", "recall_at_1")
            if ordered[0]["test"][name][k] is not None
        ]
    cells += [cell([r["test"][name] for r in ordered]) for name in general]
    cells.append(", ".join(f"{r['guard_scale']:g}" for r in ordered if r.get("guard_scale") is not None) or "-")
    return "| " + " | ".join(cells) + " |"


def _llm_notes(results: dict) -> list[str]:
    """What the LLM work behind the variants made and took, in sentences under the table."""
    lines = []
    if "paraphrase_judge" in results:
        summary = results["paraphrase_judge"]
        lines += [
            "",
            f"The {JUDGE_MODEL} judge on the paraphrases of {VARIANT_SIZE} queries: {summary['items_judged']} judged in "
            f"{summary['wall_seconds_this_run']:.0f} s; {summary['verdicts'].get('same', 0)} called the same question (kept), "
            f"{summary['verdicts'].get('different', 0)} not (dropped).",
        ]
    for folder, made in results.get("llm_generation", {}).items():
        lines += [
            "",
            f"The {made['model']} model with prompt {', '.join(made['prompt_versions'])} ({folder}) on the same {made['queries']} queries: {made['rows']} rows in "
            f"{made['generation_seconds']:.0f} s ({made['queries_per_minute']:.1f} queries/min); rejected: "
            + ", ".join(f"{count} {reason.replace('_', ' ')}" for reason, count in made["rejects"].items())
            + ".",
        ]
    if "judge_filter" in results:
        filtered = results["judge_filter"]
        lines += [
            "",
            f"The {JUDGE_MODEL} judge's filter at {VARIANT_SIZE} queries: {filtered['items_judged']} (query, negative) judged; "
            f"{filtered['verdicts'].get('same', 0)} called the same question, {filtered['verdicts'].get('different', 0)} not; "
            f"{filtered['triplets_dropped_as_false_negatives']} triplets dropped as false negatives.",
        ]
    return lines


def markdown(domain: str, results: dict) -> str:
    references = (
        json.loads((RESULTS / f"experiments_{domain}.json").read_text()) if (RESULTS / f"experiments_{domain}.json").is_file() else {}
    )
    first_run = next((run for runs in [*results["growth"].values(), *results["variants"].values()] for run in runs.values()), None)
    tests = list(first_run["test"]) if first_run else []
    domain_tests = [name for name in tests if not name.startswith(("STS-B", "MRPC"))]
    general = [name for name in tests if name.startswith(("STS-B", "MRPC"))]
    header = ["training data", "seeds", "triplets"]
    header += [f"{name} {metric}" for name in domain_tests for metric in ("replay AUC", "AP", "R@1")] + general + ["guard scale"]
    lines = [f"# From logs alone: {domain}", "", "Mean ± half-width of the 95% t interval over seeds; held-out human pairs never read.", ""]
    lines += _judge_lines(results)

    def row(label: str, runs: dict) -> str:
        return _row(label, runs, domain_tests, general)

    lines += ["## Growth with the LLM time spent, and variants", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, entry in references.get("reference", {}).items():
        lines.append(row(f"**{name}** (reference)", {"1": entry}))
    chosen = references.get("chosen")
    if chosen:
        lines.append(row(f"**labelled pairs: {chosen}** (experiments_{domain}.md)", references["recipes"][chosen]))
    for runs in results["growth"].values():
        lines.append(row(f"logs: paraphrases of {runs[next(iter(runs))]['queries']} queries", runs))
    lines += [row(f"variant: {name}", runs) for name, runs in results["variants"].items() if runs]
    lines += _llm_notes(results)
    return "\n".join(lines)


def checkpoint(logs: Logs, results: dict) -> None:
    save(f"experiments_logs_{logs.domain}", {**results, "machine": machine()}, markdown(logs.domain, results))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--domain", choices=["programming", "medical"], required=True)
    parser.add_argument("--part", nargs="+", choices=["judge", "growth", "variants"], default=["judge", "growth", "variants"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--sizes", nargs="+", type=int, default=SIZES, help="queries per growth step (0: all)")
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    args = parser.parse_args()
    sizes = [size or None for size in args.sizes]
    logs = Logs(args.domain)
    logs.work.mkdir(parents=True, exist_ok=True)
    data = domain_data(args.domain)
    path = RESULTS / f"experiments_logs_{args.domain}.json"
    results = json.loads(path.read_text()) if path.exists() else {"judge": {}, "growth": {}, "variants": {}}
    started = time.time()
    for part in args.part:
        {"judge": lambda: judge_part(logs, data, results), "growth": lambda: growth_part(logs, data, results, args.seeds, sizes),
         "variants": lambda: variants_part(logs, data, results, args.seeds, args.variants)}[part]()  # fmt: skip
        checkpoint(logs, results)
    print(f"done in {time.time() - started:.0f} s")


if __name__ == "__main__":
    main()
