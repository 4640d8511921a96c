"""`cachetune evaluate`: a tuned model and its baseline side by side, on data neither was tuned on.

Every input is read and checked before a model is loaded. Each model encodes every distinct text
once; all metrics are computed from those vectors.
"""

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import yaml

from cachetune.decision import Decider
from cachetune.errors import InputError
from cachetune.evaluate.conversations import conversation_metrics, conversation_pairs
from cachetune.evaluate.conversations import texts_of as chat_texts
from cachetune.evaluate.pairs import OperatingPoints, at_threshold, bootstrap, threshold_free
from cachetune.evaluate.report import write_report
from cachetune.evaluate.settings import EvaluateSettings
from cachetune.evaluate.speed import encode_speed
from cachetune.evaluate.traps import TrapPair, hand_traps, rule_traps, trap_suite_metrics
from cachetune.evaluate.triplets import triplet_metrics
from cachetune.metrics import check_labels
from cachetune.models import DEFAULT_BASE_MODEL, load_encoder, resolve_model
from cachetune.records import Pair, read_pairs_or_triplets, read_records
from cachetune.replay import ReplaySet, pair_scores, replay_metrics, retrieval_recall_at_1

MODELS = ("tuned", "baseline")
DEFAULT_CHAT_THRESHOLD = 0.9  # the cache's default similarity_threshold, without validation data


@dataclass(frozen=True)
class TestFile:
    path: Path
    kind: str
    records: list


def default_baseline(model: str) -> str:
    """An adapter is compared with the base it was trained on; anything else with the default base."""
    spec = resolve_model(model)
    return spec.base.name if spec.kind == "adapter" else DEFAULT_BASE_MODEL


def read_inputs(settings: EvaluateSettings) -> tuple[list[TestFile], list[Pair]]:
    files = []
    for path in settings.test_data:
        kind, records = read_pairs_or_triplets(path)
        if not records:
            raise InputError(f"{path}: no records")
        if kind == "pairs":
            _both_labels(records, path)
        files.append(TestFile(Path(path), kind, records))
    val_pairs = read_records(settings.val_data, Pair) if settings.val_data else []
    if settings.val_data:
        _both_labels(val_pairs, settings.val_data)
    return files, val_pairs


def _both_labels(pairs: list[Pair], path: Path) -> None:
    try:
        check_labels(np.array([pair.label for pair in pairs]), str(path))
    except ValueError as error:
        raise InputError(str(error)) from None


def evaluate(settings: EvaluateSettings) -> dict:
    """Evaluate `settings.model` and its baseline on the test data; write report.json, report.md and plots.

    Returns:
        The report, as written to the output folder (default reports/<model name>); `output` says where.

    Raises:
        InputError: a test or validation file that cannot be read, is empty, or has pairs of one class only.
        ModelError: either model cannot be loaded.
    """
    files, val_pairs = read_inputs(settings)
    output = settings.output or Path("reports") / Path(settings.model.rstrip("/")).name
    names = {"tuned": settings.model, "baseline": settings.baseline or default_baseline(settings.model)}
    specs = {name: resolve_model(spec) for name, spec in names.items()}
    encoders = {name: load_encoder(spec) for name, spec in specs.items()}
    test_pairs = [pair for file in files if file.kind == "pairs" for pair in file.records]
    traps = {"hand": hand_traps({pair.domain for pair in test_pairs}), "rule": rule_traps(test_pairs, settings.seed)}
    chats = conversation_pairs({pair.domain for pair in test_pairs})
    texts = list(
        dict.fromkeys(
            [text for file in files for record in file.records for text in _texts(record)]
            + [text for pair in val_pairs for text in (pair.query1, pair.query2)]
            + [text for rows in traps.values() for pair in rows for text in (pair.stored, pair.new)]
            + chat_texts(chats)
        )
    )
    vector_of = {name: dict(zip(texts, _encode(encoder, texts))) for name, encoder in encoders.items()}

    operating = {}
    if val_pairs:
        val_labels = np.array([pair.label for pair in val_pairs])
        for name in MODELS:
            scores = pair_scores(val_pairs, vector_of[name])
            operating[name] = OperatingPoints.choose(val_labels, scores, settings.target_precision)

    report: dict = {
        "output": str(output),
        "models": {name: {"spec": names[name], **spec.size_on_disk()} for name, spec in specs.items()},
        "test_data": [{"file": str(file.path), "kind": file.kind, "records": len(file.records)} for file in files],
        "val_data": {"file": str(settings.val_data), "pairs": len(val_pairs)} if settings.val_data else None,
        "target_precision": settings.target_precision,
        "operating_thresholds": {name: asdict(points) for name, points in operating.items()},
        "pairs": [_pairs_section(file, vector_of, operating, settings) for file in files if file.kind == "pairs"],
        "triplets": [
            {"file": str(file.path), **{name: triplet_metrics(file.records, vector_of[name]) for name in MODELS}}
            for file in files
            if file.kind == "triplets"
        ],
        "traps": _traps_section(traps, vector_of, operating, settings),
        "conversations": {
            name: conversation_metrics(chats, vector_of[name], _threshold(operating, name) or DEFAULT_CHAT_THRESHOLD, settings.guards)
            for name in MODELS
        },
    }
    if settings.write_cache_config is not None:
        domains = sorted({pair.domain for pair in test_pairs if pair.domain})
        report["cache_config"] = str(write_cache_config(settings.write_cache_config, settings.model, domains, operating["tuned"]))
    if settings.speed:
        sample = texts[:200]
        report["speed"] = {name: encode_speed(encoder, sample) for name, encoder in encoders.items()}
    write_report(report, output)
    return report


def write_cache_config(path: Path, model: str, domains: list[str], points: OperatingPoints) -> Path:
    """A cache config (`cachetune serve --config PATH`) with the tuned model as one domain at its operating threshold.

    The domain is named after the test pairs' domain (one of them: "default"); a local model path is written absolute,
    so the file can be moved.
    """
    domain = domains[0] if len(domains) == 1 else "default"
    location = str(Path(model).resolve()) if Path(model).exists() else model
    how = "the best-F0.5 threshold (no threshold met the target precision)" if points.fallback else "its target-precision threshold"
    config = {
        "semantic_cache": {"domains": {domain: {"embedding_model_path": location, "similarity_threshold": round(points.threshold, 6)}}}
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = f"# Written by `cachetune evaluate`: the tuned model at {how}, chosen on {points.val_pairs} validation pairs.\n"
    path.write_text(header + "# Serve it: cachetune serve --config " + path.name + "\n" + yaml.safe_dump(config, sort_keys=False))
    return path


def _texts(record) -> tuple[str, ...]:
    return (record.query1, record.query2) if isinstance(record, Pair) else (record.anchor, record.positive, record.hard_negative)


def _encode(encoder, texts: list[str]) -> np.ndarray:
    return np.asarray(encoder.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True), dtype=np.float32)


def _threshold(operating: dict, name: str) -> float | None:
    """The operating threshold: the lowest meeting the target precision on validation, else the best F0.5."""
    return operating[name].threshold if name in operating else None


def _pairs_section(file: TestFile, vector_of: dict, operating: dict, settings: EvaluateSettings) -> dict:
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
    return section


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
