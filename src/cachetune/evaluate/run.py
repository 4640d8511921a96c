"""`cachetune evaluate`: a tuned model and its baseline side by side, on data neither was tuned on.

Every input is read and checked before a model is loaded. Each model encodes every distinct text
once; all metrics are computed from those vectors.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from cachetune.cache_config import CacheConfig, DomainConfig, MemoryStoreConfig
from cachetune.decision import Decider
from cachetune.errors import InputError
from cachetune.evaluate.conversations import conversation_metrics, conversation_pairs
from cachetune.evaluate.conversations import texts_of as chat_texts
from cachetune.evaluate.pairs import OperatingPoints, at_threshold, bootstrap, threshold_free
from cachetune.evaluate.report import write_report
from cachetune.evaluate.result import DataFileEntry, EvaluationReport, ModelEntry, PairsSection, ValDataEntry
from cachetune.evaluate.settings import EvaluateSettings
from cachetune.evaluate.speed import encode_speed
from cachetune.evaluate.traps import TrapPair, hand_traps, rule_traps, trap_suite_metrics
from cachetune.evaluate.triplets import triplet_metrics
from cachetune.metrics import check_labels
from cachetune.models import ModelSpec, load_encoder, resolve_base_model, resolve_model
from cachetune.records import Pair, read_pairs_or_triplets, read_records
from cachetune.replay import ReplaySet, pair_scores, replay_metrics, retrieval_recall_at_1

MODELS = ("tuned", "baseline")
DEFAULT_CHAT_THRESHOLD = 0.9  # the cache's default similarity_threshold, without validation data


@dataclass(frozen=True)
class EvalFile:
    path: Path
    kind: str
    records: list


def baseline_of(tuned: ModelSpec) -> ModelSpec:
    """An adapter is compared with the base it was trained on; anything else with the default base."""
    return ModelSpec.of_base(tuned.base if tuned.kind == "adapter" else resolve_base_model(None))


def read_inputs(settings: EvaluateSettings) -> tuple[list[EvalFile], list[Pair]]:
    files = []
    for path in settings.test_data:
        kind, records = read_pairs_or_triplets(path)
        if not records:
            raise InputError(f"{path}: no records")
        if kind == "pairs":
            check_labels(np.array([pair.label for pair in records]), str(path))
        files.append(EvalFile(Path(path), kind, records))
    val_pairs = read_records(settings.val_data, Pair) if settings.val_data else []
    if settings.val_data:
        check_labels(np.array([pair.label for pair in val_pairs]), str(settings.val_data))
    return files, val_pairs


def evaluate(settings: EvaluateSettings) -> EvaluationReport:
    """Evaluate `settings.model` and its baseline on the test data; write report.json, report.md and plots.

    Steps: read and check every input -> resolve both models -> encode every distinct text once per model ->
    operating thresholds on validation -> each section's metrics from those vectors -> write.

    Returns:
        The report, as written to the output folder (default reports/<model name>); `output` says where.

    Raises:
        InputError: a test or validation file that cannot be read, is empty, or has pairs of one class only.
        ModelError: either model cannot be loaded.
    """
    files, val_pairs = read_inputs(settings)
    output = settings.output or Path("reports") / Path(settings.model.rstrip("/")).name
    tuned = resolve_model(settings.model)
    specs = {"tuned": tuned, "baseline": resolve_model(settings.baseline) if settings.baseline else baseline_of(tuned)}
    names = {"tuned": settings.model, "baseline": settings.baseline or specs["baseline"].name}
    encoders = {name: load_encoder(spec) for name, spec in specs.items()}
    test_pairs = [pair for file in files if file.kind == "pairs" for pair in file.records]
    traps = {"hand": hand_traps({pair.domain for pair in test_pairs}), "rule": rule_traps(test_pairs, settings.seed)}
    chats = conversation_pairs({pair.domain for pair in test_pairs})
    texts = _distinct_texts(files, val_pairs, traps, chats)
    vector_of = {name: dict(zip(texts, _encode(encoder, texts))) for name, encoder in encoders.items()}
    operating = _operating_points(val_pairs, vector_of, settings.target_precision)
    report = EvaluationReport(
        output=str(output),
        models={name: ModelEntry(spec=names[name], **spec.size_on_disk()) for name, spec in specs.items()},
        test_data=[DataFileEntry(file=str(file.path), kind=file.kind, records=len(file.records)) for file in files],
        val_data=ValDataEntry(file=str(settings.val_data), pairs=len(val_pairs)) if settings.val_data else None,
        target_precision=settings.target_precision,
        operating_thresholds=operating,
        pairs=[_pairs_section(file, vector_of, operating, settings) for file in files if file.kind == "pairs"],
        triplets=[_triplets_section(file, vector_of) for file in files if file.kind == "triplets"],
        traps=_traps_section(traps, vector_of, operating, settings),
        conversations={name: _conversations(chats, vector_of[name], operating, name, settings) for name in MODELS},
    )
    if settings.write_cache_config is not None:
        domains = sorted({pair.domain for pair in test_pairs if pair.domain})
        written = write_cache_config(settings.write_cache_config, settings.model, domains, operating["tuned"], Path(output) / "report.html")
        report.cache_config = str(written)
    if settings.speed:
        report.speed = {name: encode_speed(encoder, texts[:200]) for name, encoder in encoders.items()}
    write_report(report, output)
    return report


def _distinct_texts(files: list[EvalFile], val_pairs: list[Pair], traps: dict[str, list[TrapPair]], chats: list) -> list[str]:
    """Every text any section scores, once: each model encodes each of them once."""
    texts = [text for file in files for record in file.records for text in _texts(record)]
    texts += [text for pair in val_pairs for text in (pair.query1, pair.query2)]
    texts += [text for rows in traps.values() for pair in rows for text in (pair.stored, pair.new)]
    return list(dict.fromkeys(texts + chat_texts(chats)))


def _operating_points(val_pairs: list[Pair], vector_of: dict, target: float) -> dict[str, OperatingPoints]:
    """Each model's thresholds, chosen on the validation pairs (none without them)."""
    if not val_pairs:
        return {}
    labels = np.array([pair.label for pair in val_pairs])
    return {name: OperatingPoints.choose(labels, pair_scores(val_pairs, vector_of[name]), target) for name in MODELS}


def _triplets_section(file: EvalFile, vector_of: dict) -> dict:
    return {"file": str(file.path), **{name: triplet_metrics(file.records, vector_of[name]) for name in MODELS}}


def _conversations(chats: list, vector_of: dict, operating: dict, name: str, settings: EvaluateSettings) -> dict:
    return conversation_metrics(chats, vector_of, _threshold(operating, name) or DEFAULT_CHAT_THRESHOLD, settings.guards)


def write_cache_config(path: Path, model: str, domains: list[str], points: OperatingPoints, report: Path) -> Path:
    """A cache config (`cachetune serve --config PATH`) with the tuned model as one domain at its operating threshold,
    and a durable embedded store (a snapshot and log beside the config), validated by the cache's own config model
    before it is written.

    The domain is named after the test pairs' domain (one of them: "default"); a local model path is written absolute,
    so the file can be moved.
    """
    domain = domains[0] if len(domains) == 1 else "default"
    location = str(Path(model).resolve()) if Path(model).exists() else model
    path = Path(path)
    chosen = DomainConfig(
        embedding_model_path=location, similarity_threshold=round(points.threshold, 6), report=str(Path(report).resolve())
    )
    config = CacheConfig(domains={domain: chosen}, memory=MemoryStoreConfig(persist_path=f"{path.stem}-store.npz"))  # beside the config
    fields = {"domains": {domain: {"embedding_model_path", "similarity_threshold", "report"}}, "memory": {"persist_path"}}
    how = "the best-F0.5 threshold (no threshold met the target precision)" if points.fallback else "its target-precision threshold"
    header = (
        f"# Written by `cachetune evaluate`: the tuned model at {how}, chosen on {points.val_pairs} validation pairs.\n"
        f"# Serve it: cachetune serve --config {path.name} (entries are kept in {path.stem}-store.npz and its log beside it)\n"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + yaml.safe_dump({"semantic_cache": config.model_dump(mode="json", include=fields)}, sort_keys=False))
    return path


def _texts(record) -> tuple[str, ...]:
    return (record.query1, record.query2) if isinstance(record, Pair) else (record.anchor, record.positive, record.hard_negative)


def _encode(encoder, texts: list[str]) -> np.ndarray:
    return np.asarray(encoder.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True), dtype=np.float32)


def _threshold(operating: dict, name: str) -> float | None:
    """The operating threshold: the lowest meeting the target precision on validation, else the best F0.5."""
    return operating[name].threshold if name in operating else None


def _pairs_section(file: EvalFile, vector_of: dict, operating: dict, settings: EvaluateSettings) -> PairsSection:
    labels = np.array([pair.label for pair in file.records])
    scores = {name: pair_scores(file.records, vector_of[name]) for name in MODELS}
    section = {"file": str(file.path), "pairs": len(labels), "positives": int(labels.sum())}
    for name in MODELS:
        result = {
            **threshold_free(labels, scores[name]),
            "at_thresholds": [at_threshold(labels, scores[name], t) for t in settings.thresholds],
        }
        if name in operating:
            points = operating[name]
            result["at_operating_thresholds"] = {
                "best_f05": at_threshold(labels, scores[name], points.best_f05),
                "target_precision": at_threshold(labels, scores[name], points.target_precision)
                if points.target_precision is not None
                else None,
            }
        result["similarity"] = {
            "positives_mean": float(scores[name][labels == 1].mean()),
            "negatives_mean": float(scores[name][labels == 0].mean()),
        }
        section[name] = result
        result["retrieval_recall_at_1"] = retrieval_recall_at_1(file.records, vector_of[name])
        replay = ReplaySet.from_pairs(file.records, settings.seed)
        result["replay"] = replay_metrics(replay, vector_of[name], {"operating": _threshold(operating, name)})
        if settings.verify() is not None:
            decider = Decider(_threshold(operating, name) or 0.0, settings.verify())
            result["replay_with_guards"] = replay_metrics(replay, vector_of[name], {"operating": _threshold(operating, name)}, decider)
    section["scores"] = {name: scores[name].round(5).tolist() for name in MODELS}
    section["labels"] = labels.tolist()
    if settings.bootstrap:
        thresholds = {name: _threshold(operating, name) for name in MODELS}
        section["bootstrap"] = bootstrap(labels, scores, thresholds, settings.target_precision, settings.bootstrap, settings.seed)
    return PairsSection.model_validate(section)


def _traps_section(traps: dict[str, list[TrapPair]], vector_of: dict, operating: dict, settings: EvaluateSettings) -> dict:
    """Per trap set and model: the cosine's decision and, with --guards, the guarded one, at the operating threshold."""
    section = {"guards": list(settings.guards), "sets": {}}
    for set_name, pairs in traps.items():
        if not pairs:
            continue
        section["sets"][set_name] = {}
        for name in MODELS:
            threshold = _threshold(operating, name)
            decisions = {"cosine": trap_suite_metrics(pairs, vector_of[name], threshold, None)}
            if settings.verify() is not None:
                decider = Decider(threshold or 0.0, settings.verify())
                decisions["guards"] = trap_suite_metrics(pairs, vector_of[name], threshold, decider)
            section["sets"][set_name][name] = decisions
    return section
