"""The evaluation report: report.json (everything), report.md (the side-by-side table), PNG plots."""

import re
from pathlib import Path

import numpy as np

from cachetune.evaluate.pairs import OperatingPoints
from cachetune.evaluate.result import EvaluationReport, PairResults, PairsSection


def write_report(report: EvaluationReport, output: Path) -> None:
    """report.json (everything), report.md (the tables), the plots (PNG), and report.html: one self-contained page of
    the tables with the plots inline."""
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    report.write_json(output / "report.json")
    text = markdown(report)
    (output / "report.md").write_text(text)
    (output / "report.html").write_text(html_page(text, plots(report, output)))


def html_page(text: str, images: list[Path]) -> str:
    """The report's Markdown as one HTML page (headings, lists, tables, code spans), each plot inline (base64 PNG)."""
    import base64
    import html

    def inline(line: str) -> str:
        line = html.escape(line)
        line = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", line)
        return re.sub(r"`([^`]+)`", r"<code>\1</code>", line).replace("&amp;nbsp;", "&nbsp;")

    body, table = [], []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            if not set(line) <= set("|-: "):
                cells = [inline(cell.strip()) for cell in line.strip("|").split("|")]
                table.append("<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>")
            continue
        if table:
            body.append("<table>" + table[0].replace("<td>", "<th>").replace("</td>", "</th>") + "".join(table[1:]) + "</table>")
            table = []
        if line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            body.append(f"<h{level}>{inline(line.lstrip('#').strip())}</h{level}>")
        elif line.lstrip().startswith("- "):
            body.append(f"<li>{inline(line.lstrip()[2:])}</li>")
        elif line.strip():
            body.append(f"<p>{inline(line)}</p>")
    figures = [
        f'<figure><img alt="{image.stem}" src="data:image/png;base64,{base64.b64encode(image.read_bytes()).decode()}"><figcaption>{image.stem}</figcaption></figure>'
        for image in images
    ]
    style = "body{font:14px/1.45 system-ui,sans-serif;max-width:70rem;margin:1.5rem auto;padding:0 1rem}table{border-collapse:collapse;margin:.6rem 0}td,th{border:1px solid #dde1e7;padding:.25rem .5rem;text-align:left}th{background:#f3f4f6}figure{display:inline-block;margin:.5rem}img{max-width:32rem}"
    return f"<!doctype html><html><head><meta charset='utf-8'><title>cachetune evaluation</title><style>{style}</style></head><body>{''.join(body)}<h2>Plots</h2>{''.join(figures)}</body></html>\n"


def _f(value, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _with_interval(value: float, interval: list[float] | None) -> str:
    return _f(value) if not interval else f"{_f(value)} [{_f(interval[0])}, {_f(interval[1])}]"


def markdown(report: EvaluationReport) -> str:
    lines = [
        "# cachetune evaluation: tuned model against its baseline",
        "",
        f"- tuned: `{report.models['tuned'].spec}`",
        f"- baseline: `{report.models['baseline'].spec}`",
    ]
    if report.operating_thresholds:
        val = report.val_data
        lines.append(f"- operating thresholds chosen on `{val.file}` ({val.pairs} pairs), never on test data:")
        lines += [f"  - {name}: {points.explained(report.target_precision)}" for name, points in report.operating_thresholds.items()]
        if report.cache_config:
            lines.append(f"- cache config serving the tuned model at its operating threshold: `{report.cache_config}`")
    else:
        lines.append("- no --val-data: no operating threshold chosen; fixed thresholds and threshold-free metrics only")
    for section in report.pairs:
        lines += _pairs_markdown(section, report.target_precision)
    for section in report.triplets:
        lines += _triplets_markdown(section)
    lines += _traps_markdown(report.traps)
    lines += _conversations_markdown(report.conversations)
    if report.speed is not None:
        lines += _speed_markdown(report)
    return "\n".join(lines) + "\n"


class _Rows:
    """The rows of one pairs table: a metric, both models' values (with their intervals) and the difference (with
    its interval and verdict, where the bootstrap made one)."""

    def __init__(self, bootstrap: dict | None) -> None:
        boot = bootstrap or {}
        self.intervals = boot.get("intervals", {"baseline": {}, "tuned": {}})
        self.difference = boot.get("difference", {})
        self.lines: list[str] = []

    def compared(self, label: str, key: str, base_value: float, tuned_value: float) -> None:
        diff = self.difference.get(key)
        change = (
            f"{diff['difference']:+.3f} [{diff['interval'][0]:+.3f}, {diff['interval'][1]:+.3f}]"
            if diff
            else f"{tuned_value - base_value:+.3f}"
        )
        base, tuned = (
            _with_interval(base_value, self.intervals["baseline"].get(key)),
            _with_interval(tuned_value, self.intervals["tuned"].get(key)),
        )
        self.lines.append(f"| {label} | {base} | {tuned} | {change} | {diff['verdict'] if diff else ''} |")

    def plain(self, label: str, base_value, tuned_value) -> None:
        self.lines.append(f"| {label} | {_f(base_value)} | {_f(tuned_value)} | {tuned_value - base_value:+.3f} | |")


def _pairs_markdown(section: PairsSection, target: float) -> list[str]:
    base, tuned = section.baseline, section.tuned
    rows = _Rows(section.bootstrap)
    rows.plain(f"cache replay P-CHR AUC (oracle {_f(tuned.replay['oracle_auc'])})", base.replay["auc"], tuned.replay["auc"])
    if tuned.replay_with_guards is not None:
        rows.plain("&nbsp;&nbsp;with the guards", base.replay_with_guards["auc"], tuned.replay_with_guards["auc"])
    if base.retrieval_recall_at_1 is not None:
        rows.plain("retrieval recall@1 (second text -> its first)", base.retrieval_recall_at_1, tuned.retrieval_recall_at_1)
    rows.compared("average precision", "ap", base.ap, tuned.ap)
    rows.compared("ROC-AUC", "roc_auc", base.roc_auc, tuned.roc_auc)
    for key in ("recall_at_p90", "recall_at_p95", "recall_at_p99"):
        rows.compared(f"recall at precision 0.{key[-2:]} (best threshold on test)", key, getattr(base, key), getattr(tuned, key))
    if tuned.at_operating_thresholds is not None:
        _operating_rows(rows, base, tuned, target)
    lines = [
        "",
        f"## Pairs: `{section.file}` ({section.pairs} pairs, {section.positives} same-intent)",
        "",
        "| metric | baseline | tuned | tuned - baseline (95% CI) | verdict |",
        "|---|---:|---:|---:|---|",
        *rows.lines,
        "",
        "At fixed thresholds (a tuned model shifts its similarity scale, so compare at each model's own threshold above):",
        "",
        "| threshold | baseline P / R / false-hit | tuned P / R / false-hit |",
        "|---:|---|---|",
    ]
    for base_point, tuned_point in zip(base.at_thresholds, tuned.at_thresholds):
        cells = [f"{_f(point['precision'])} / {_f(point['recall'])} / {_f(point['false_hit_rate'])}" for point in (base_point, tuned_point)]
        lines.append(f"| {base_point['threshold']:.2f} | {cells[0]} | {cells[1]} |")
    return lines


def _operating_rows(rows: _Rows, base: PairResults, tuned: PairResults, target: float) -> None:
    """Both models at their own thresholds chosen on validation: the target-precision one and the best-F0.5 one."""
    for point, title in (("target_precision", f"threshold for precision {target} on val"), ("best_f05", "best-F0.5 threshold on val")):
        base_point, tuned_point = base.at_operating_thresholds[point], tuned.at_operating_thresholds[point]
        if base_point is None or tuned_point is None:
            continue
        rows.lines.append(f"| **at the {title}** | t={_f(base_point['threshold'])} | t={_f(tuned_point['threshold'])} | | |")
        for metric, label in (
            ("precision", "precision"), ("recall", "recall (hits served)"), ("false_hit_rate", "false-hit rate"),
            ("miss_rate", "miss rate"), ("f1", "F1"), ("accuracy", "accuracy"),
        ):  # fmt: skip
            key = f"{metric}_at_operating_threshold" if point == "target_precision" else None
            if key and key in rows.difference:
                rows.compared(f"&nbsp;&nbsp;{label}", key, base_point[metric], tuned_point[metric])
            else:
                rows.plain(f"&nbsp;&nbsp;{label}", base_point[metric], tuned_point[metric])


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


def _speed_markdown(report: EvaluationReport) -> list[str]:
    lines = [
        "",
        "## Speed and size (this machine)",
        "",
        "| model | p50 ms | p99 ms | texts/s (batch 64) | model MB | adapter MB |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name in ("baseline", "tuned"):
        speed, model = report.speed[name], report.models[name]
        adapter = f"{model.adapter_bytes / 1e6:.2f}" if model.adapter_bytes else "-"
        size = f"{model.model_bytes / 1e6:.1f}" if model.model_bytes else "n/a"
        lines.append(
            f"| {name} | {speed['latency_ms_p50']:.1f} | {speed['latency_ms_p99']:.1f} | {speed['throughput_texts_per_second']:.0f} | {size} | {adapter} |"
        )
    return lines


def plots(report: EvaluationReport, output: Path) -> list[Path]:
    """Per file of pairs: precision-recall, the similarity histograms with each operating threshold, the replay curve."""
    import matplotlib

    matplotlib.use("Agg")
    written = []
    for section, stem in zip(report.pairs, _plot_stems([Path(section.file) for section in report.pairs])):
        written.append(_precision_recall_plot(section, report.target_precision, output / f"pr_{stem}.png", stem))
        written.append(_similarity_plot(section, report.operating_thresholds, output / f"similarity_{stem}.png"))
        written.append(_replay_plot(section, output / f"replay_{stem}.png", stem))
    return written


def _precision_recall_plot(section: PairsSection, target: float, path: Path, stem: str) -> Path:
    import matplotlib.pyplot as plt
    from sklearn.metrics import precision_recall_curve

    labels = np.array(section.labels)
    figure, axis = plt.subplots(figsize=(6, 5))
    for name in ("baseline", "tuned"):
        precision, recall, _ = precision_recall_curve(labels, np.array(section.scores[name]))
        axis.plot(recall, precision, label=f"{name} (AP {section.results(name).ap:.3f})")
        point = (section.results(name).at_operating_thresholds or {}).get("target_precision")
        if point:
            axis.scatter([point["recall"]], [point["precision"]], marker="o", zorder=3)
    axis.axhline(target, color="grey", linestyle=":", linewidth=1)
    axis.set(
        xlabel="recall (same-intent pairs served)", ylabel="precision (served pairs that were right)",
        title=f"Precision-recall: {stem}", ylim=(0.4, 1.01),
    )  # fmt: skip
    axis.legend(loc="lower left")
    return _save(figure, path)


def _similarity_plot(section: PairsSection, operating: dict[str, OperatingPoints], path: Path) -> Path:
    import matplotlib.pyplot as plt

    labels = np.array(section.labels)
    figure, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    bins = np.linspace(-0.2, 1.0, 49)
    for axis, name in zip(axes, ("baseline", "tuned")):
        scores = np.array(section.scores[name])
        axis.hist(scores[labels == 1], bins=bins, alpha=0.6, label="same intent")
        axis.hist(scores[labels == 0], bins=bins, alpha=0.6, label="different intent")
        points = operating.get(name)
        if points:
            label = f"threshold {points.threshold:.2f}" + (" (best F0.5)" if points.fallback else "")
            axis.axvline(points.threshold, color="black", linestyle="--", linewidth=1, label=label)
        axis.set(title=name, xlabel="cosine similarity")
        axis.legend(loc="upper left")
    axes[0].set_ylabel("pairs")
    return _save(figure, path)


def _replay_plot(section: PairsSection, path: Path, stem: str) -> Path:
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 5))
    for name in ("baseline", "tuned"):
        replay = section.results(name).replay
        points = sorted((p["hit_ratio"], p["precision"]) for p in replay["curve"] if p["precision"] is not None)
        axis.plot(*zip(*points), marker=".", label=f"{name} (AUC {replay['auc']:.3f})")
        point = replay["at"].get("operating")
        if point and point["precision"] is not None:
            axis.scatter([point["hit_ratio"]], [point["precision"]], s=60, zorder=3)
    axis.set(
        xlabel="cache-hit ratio (queries served from the cache)", ylabel="precision of hits",
        title=f"Populated-cache replay: {stem} (oracle AUC {section.tuned.replay['oracle_auc']:.3f})", xlim=(0, 1), ylim=(0, 1.01),
    )  # fmt: skip
    axis.legend(loc="upper right")
    return _save(figure, path)


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
