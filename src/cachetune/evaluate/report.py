"""The evaluation report: report.json (everything), report.md (the side-by-side table), PNG plots."""

from pathlib import Path

import numpy as np

from cachetune.evaluate.pairs import OperatingPoints
from cachetune.records import write_json


def write_report(report: dict, output: Path) -> list[Path]:
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    write_json(output / "report.json", report)
    (output / "report.md").write_text(markdown(report))
    return [output / "report.json", output / "report.md", *plots(report, output)]


def _f(value, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _with_interval(value: float, interval: list[float] | None) -> str:
    return _f(value) if not interval else f"{_f(value)} [{_f(interval[0])}, {_f(interval[1])}]"


def markdown(report: dict) -> str:
    models = report["models"]
    lines = [
        "# cachetune evaluation: tuned model against its baseline",
        "",
        f"- tuned: `{models['tuned']['spec']}`",
        f"- baseline: `{models['baseline']['spec']}`",
    ]
    thresholds = report["operating_thresholds"]
    if thresholds:
        val = report["val_data"]
        lines.append(f"- operating thresholds chosen on `{val['file']}` ({val['pairs']} pairs), never on test data:")
        lines += [f"  - {name}: {OperatingPoints(**points).explained(report['target_precision'])}" for name, points in thresholds.items()]
        if report.get("cache_config"):
            lines.append(f"- cache config serving the tuned model at its operating threshold: `{report['cache_config']}`")
    else:
        lines.append("- no --val-data: no operating threshold chosen; fixed thresholds and threshold-free metrics only")
    for section in report["pairs"]:
        lines += _pairs_markdown(section, report["target_precision"])
    for section in report["triplets"]:
        lines += _triplets_markdown(section)
    lines += _traps_markdown(report["traps"])
    lines += _conversations_markdown(report["conversations"])
    if "speed" in report:
        lines += _speed_markdown(report)
    return "\n".join(lines) + "\n"


def _pairs_markdown(section: dict, target: float) -> list[str]:
    base, tuned = section["baseline"], section["tuned"]
    boot = section.get("bootstrap", {})
    intervals = boot.get("intervals", {"baseline": {}, "tuned": {}})
    difference = boot.get("difference", {})
    lines = [
        "",
        f"## Pairs: `{section['file']}` ({section['pairs']} pairs, {section['positives']} same-intent)",
        "",
        "| metric | baseline | tuned | tuned - baseline (95% CI) | verdict |",
        "|---|---:|---:|---:|---|",
    ]

    def row(label: str, key: str, base_value, tuned_value) -> None:
        diff = difference.get(key)
        change = (
            f"{diff['difference']:+.3f} [{diff['interval'][0]:+.3f}, {diff['interval'][1]:+.3f}]"
            if diff
            else f"{tuned_value - base_value:+.3f}"
        )
        lines.append(
            f"| {label} | {_with_interval(base_value, intervals['baseline'].get(key))} | "
            f"{_with_interval(tuned_value, intervals['tuned'].get(key))} | {change} | {diff['verdict'] if diff else ''} |"
        )

    lines.append(
        f"| cache replay P-CHR AUC (oracle {_f(tuned['replay']['oracle_auc'])}) | {_f(base['replay']['auc'])} | {_f(tuned['replay']['auc'])} "
        f"| {tuned['replay']['auc'] - base['replay']['auc']:+.3f} | |"
    )
    if "replay_with_guards" in tuned:
        base_guarded, tuned_guarded = base["replay_with_guards"]["auc"], tuned["replay_with_guards"]["auc"]
        lines.append(f"| &nbsp;&nbsp;with the guards | {_f(base_guarded)} | {_f(tuned_guarded)} | {tuned_guarded - base_guarded:+.3f} | |")
    for name_key, label in (("retrieval_recall_at_1", "retrieval recall@1 (second text -> its first)"),):
        if base[name_key] is not None:
            lines.append(f"| {label} | {_f(base[name_key])} | {_f(tuned[name_key])} | {tuned[name_key] - base[name_key]:+.3f} | |")
    row("average precision", "ap", base["ap"], tuned["ap"])
    row("ROC-AUC", "roc_auc", base["roc_auc"], tuned["roc_auc"])
    for key in ("recall_at_p90", "recall_at_p95", "recall_at_p99"):
        row(f"recall at precision 0.{key[-2:]} (best threshold on test)", key, base[key], tuned[key])
    if "at_operating_thresholds" in tuned:
        for point, title in (("target_precision", f"threshold for precision {target} on val"), ("best_f05", "best-F0.5 threshold on val")):
            base_point, tuned_point = base["at_operating_thresholds"][point], tuned["at_operating_thresholds"][point]
            if base_point is None or tuned_point is None:
                continue
            lines.append(f"| **at the {title}** | t={_f(base_point['threshold'])} | t={_f(tuned_point['threshold'])} | | |")
            for metric, label in (
                ("precision", "precision"),
                ("recall", "recall (hits served)"),
                ("false_hit_rate", "false-hit rate"),
                ("miss_rate", "miss rate"),
                ("f1", "F1"),
                ("accuracy", "accuracy"),
            ):
                key = f"{metric}_at_operating_threshold" if point == "target_precision" else None
                if key and key in difference:
                    row(f"&nbsp;&nbsp;{label}", key, base_point[metric], tuned_point[metric])
                else:
                    lines.append(
                        f"| &nbsp;&nbsp;{label} | {_f(base_point[metric])} | {_f(tuned_point[metric])} | {tuned_point[metric] - base_point[metric]:+.3f} | |"
                    )
    lines += ["", "At fixed thresholds (a tuned model shifts its similarity scale, so compare at each model's own threshold above):", ""]
    lines += ["| threshold | baseline P / R / false-hit | tuned P / R / false-hit |", "|---:|---|---|"]
    for base_point, tuned_point in zip(base["at_thresholds"], tuned["at_thresholds"]):
        lines.append(
            f"| {base_point['threshold']:.2f} | {_f(base_point['precision'])} / {_f(base_point['recall'])} / {_f(base_point['false_hit_rate'])} | "
            f"{_f(tuned_point['precision'])} / {_f(tuned_point['recall'])} / {_f(tuned_point['false_hit_rate'])} |"
        )
    return lines


def _triplets_markdown(section: dict) -> list[str]:
    base, tuned = section["baseline"], section["tuned"]
    lines = [
        "",
        f"## Triplets: `{section['file']}` ({tuned['triplets']} triplets, pool of {tuned['pool']})",
        "",
        "| metric | baseline | tuned |",
        "|---|---:|---:|",
    ]
    for key, label in (
        ("mean_cos_anchor_positive", "mean cos(anchor, positive)"),
        ("mean_cos_anchor_negative", "mean cos(anchor, negative)"),
        ("margin", "margin (the two above, subtracted)"),
        ("accuracy", "triplet accuracy"),
        ("mrr_at_10", "MRR@10"),
        ("recall_at_1", "recall@1"),
        ("recall_at_5", "recall@5"),
    ):
        lines.append(f"| {label} | {_f(base[key])} | {_f(tuned[key])} |")
    return lines


def _traps_markdown(traps: dict) -> list[str]:
    guards = ", ".join(traps["guards"]) or "none (pass --guards to evaluate them)"
    lines = [
        "",
        "## Trap suite: look-alikes that must not be served, beside rewordings that should",
        "",
        "`hand`: the hand-written pairs of evaluate/traps.yaml; `rule`: rule-made traps of the test pairs' first texts.",
        f"Each model at its operating threshold; guards: {guards}. A kind's cell: pairs served / pairs (rewordings: served",
        "is right; every other kind: a false hit). Served at <= 1% / 5% wrong: the share of rewordings served at the best",
        "threshold whose served pairs are at most that share wrong.",
    ]
    for set_name, models in traps["sets"].items():
        kinds = list(next(iter(next(iter(models.values())).values()))["kinds"])
        lines += ["", f"| {set_name} | threshold | " + " | ".join(kinds) + " | served at <= 1% wrong | at <= 5% wrong |"]
        lines.append("|---|---:|" + "---:|" * (len(kinds) + 2))
        for name in ("baseline", "tuned"):
            for decision, result in models[name].items():
                cells = [f"{result['kinds'][kind]['served']}/{result['kinds'][kind]['pairs']}" for kind in kinds]
                wrong = result["served_at_wrong"]
                lines.append(
                    f"| {name}, {decision} | {_f(result['threshold'])} | "
                    + " | ".join(cells)
                    + f" | {_f(wrong['0.01'])} | {_f(wrong['0.05'])} |"
                )
    return lines


def _conversations_markdown(conversations: dict) -> list[str]:
    first = next(iter(conversations.values()))
    kinds = list(next(iter(first["modes"].values()))["kinds"])
    lines = [
        "",
        f"## Conversations: chat pairs decided as the gateway does ({first['pairs']} pairs of evaluate/conversations.yaml)",
        "",
        "Per `upstream.context` mode, at each model's operating threshold: pairs served / pairs. The first three kinds",
        "should be served; the last three must not (a wrong answer from another conversation).",
        "",
        "| model, context | threshold | " + " | ".join(kinds) + " | should-hit served | wrong hits |",
        "|---|---:|" + "---:|" * (len(kinds) + 2),
    ]
    for name in ("baseline", "tuned"):
        result = conversations[name]
        for mode, row in result["modes"].items():
            cells = [f"{row['kinds'][k]['served']}/{row['kinds'][k]['pairs']}" for k in kinds]
            lines.append(
                f"| {name}, {mode} | {_f(result['threshold'])} | "
                + " | ".join(cells)
                + f" | {_f(row['should_hit_served'])} | {row['wrong_hits']} |"
            )
    return lines


def _speed_markdown(report: dict) -> list[str]:
    lines = [
        "",
        "## Speed and size (this machine)",
        "",
        "| model | p50 ms | p99 ms | texts/s (batch 64) | model MB | adapter MB |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name in ("baseline", "tuned"):
        speed, model = report["speed"][name], report["models"][name]
        adapter = f"{model['adapter_bytes'] / 1e6:.2f}" if model["adapter_bytes"] else "-"
        size = f"{model['model_bytes'] / 1e6:.1f}" if model["model_bytes"] else "n/a"
        lines.append(
            f"| {name} | {speed['latency_ms_p50']:.1f} | {speed['latency_ms_p99']:.1f} | {speed['throughput_texts_per_second']:.0f} | {size} | {adapter} |"
        )
    return lines


def plots(report: dict, output: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import precision_recall_curve

    written = []
    for section, stem in zip(report["pairs"], _plot_stems([Path(section["file"]) for section in report["pairs"]])):
        labels = np.array(section["labels"])
        figure, axis = plt.subplots(figsize=(6, 5))
        for name in ("baseline", "tuned"):
            precision, recall, _ = precision_recall_curve(labels, np.array(section["scores"][name]))
            axis.plot(recall, precision, label=f"{name} (AP {section[name]['ap']:.3f})")
            point = section[name].get("at_operating_thresholds", {}).get("target_precision")
            if point:
                axis.scatter([point["recall"]], [point["precision"]], marker="o", zorder=3)
        axis.axhline(report["target_precision"], color="grey", linestyle=":", linewidth=1)
        axis.set(
            xlabel="recall (same-intent pairs served)",
            ylabel="precision (served pairs that were right)",
            title=f"Precision-recall: {stem}",
            ylim=(0.4, 1.01),
        )
        axis.legend(loc="lower left")
        written.append(_save(figure, output / f"pr_{stem}.png"))

        figure, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
        bins = np.linspace(-0.2, 1.0, 49)
        for axis, name in zip(axes, ("baseline", "tuned")):
            scores = np.array(section["scores"][name])
            axis.hist(scores[labels == 1], bins=bins, alpha=0.6, label="same intent")
            axis.hist(scores[labels == 0], bins=bins, alpha=0.6, label="different intent")
            points = report["operating_thresholds"].get(name)
            if points:
                label = f"threshold {points['threshold']:.2f}" + (" (best F0.5)" if points["fallback"] else "")
                axis.axvline(points["threshold"], color="black", linestyle="--", linewidth=1, label=label)
            axis.set(title=name, xlabel="cosine similarity")
            axis.legend(loc="upper left")
        axes[0].set_ylabel("pairs")
        written.append(_save(figure, output / f"similarity_{stem}.png"))

        figure, axis = plt.subplots(figsize=(6, 5))
        for name in ("baseline", "tuned"):
            replay = section[name]["replay"]
            points = sorted((p["hit_ratio"], p["precision"]) for p in replay["curve"] if p["precision"] is not None)
            axis.plot(*zip(*points), marker=".", label=f"{name} (AUC {replay['auc']:.3f})")
            point = replay["at"].get("operating")
            if point and point["precision"] is not None:
                axis.scatter([point["hit_ratio"]], [point["precision"]], s=60, zorder=3)
        axis.set(
            xlabel="cache-hit ratio (queries served from the cache)",
            ylabel="precision of hits",
            title=f"Populated-cache replay: {stem} (oracle AUC {section['tuned']['replay']['oracle_auc']:.3f})",
            xlim=(0, 1),
            ylim=(0, 1.01),
        )
        axis.legend(loc="upper right")
        written.append(_save(figure, output / f"replay_{stem}.png"))
    return written


def _save(figure, path: Path) -> Path:
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    import matplotlib.pyplot as plt

    plt.close(figure)
    return path


def _plot_stems(files: list[Path]) -> list[str]:
    """A file name per test file for its plots; files that share a name (two `pairs.test.jsonl`) get their folder's too."""
    stems = [file.stem.replace(".", "_") for file in files]
    return [f"{file.parent.name}_{stem}" if stems.count(stem) > 1 else stem for file, stem in zip(files, stems)]
