"""`cachetune evaluate-feedback`: the reports a cache's callers sent about its hits, turned into a threshold.

Input: the cache's `feedback_log` (`records.Feedback`: each served hit reported right or wrong, with the similarity
it was served at). Output, per domain: the served hits' measured precision with its 95% lower bound, and the lowest
threshold at which the reported hits above it reach `target_precision` with 95% confidence (as `cachetune evaluate`
chooses on validation pairs). The log holds served hits only, so it can show that a threshold should rise, never
that it could fall: hits below today's threshold were never served, so never reported. Each hit counts once: of
several reports of one entry (domain and id: replicas that each took one), the last says whether it was right.
"""

from collections import defaultdict
from pathlib import Path

import numpy as np

from cachetune.evaluate.pairs import precision_lower_bound, target_precision_threshold
from cachetune.evaluate.settings import FeedbackSettings
from cachetune.records import Feedback, read_records, write_json


def domain_summary(reports: list[Feedback], target: float) -> dict:
    """One domain's reports: counts, measured precision, and the recommended threshold (None: none reaches `target`)."""
    correct = sum(r.correct for r in reports)
    scored = [r for r in reports if r.similarity is not None]
    labels = np.array([int(r.correct) for r in scored])
    scores = np.array([r.similarity for r in scored])
    threshold, bound = target_precision_threshold(labels, scores, target) if scored else (None, None)
    wrong_scores = scores[labels == 0]
    return {
        "reported": len(reports),
        "correct": correct,
        "wrong": len(reports) - correct,
        "precision": correct / len(reports),
        "precision_lower_bound": float(precision_lower_bound(np.array([correct]), np.array([len(reports)]))[0]),
        "with_similarity": len(scored),
        "lowest_served_similarity": float(scores.min()) if scored else None,
        "highest_wrong_similarity": float(wrong_scores.max()) if len(wrong_scores) else None,
        "recommended_threshold": threshold,
        "recommended_lower_bound": bound,
        "kept_share": float(np.mean(scores >= threshold)) if threshold is not None else None,
        "by_tier": {
            tier: {"reported": len(rows), "wrong": sum(not r.correct for r in rows)}
            for tier in ("exact", "semantic")
            if (rows := [r for r in reports if r.tier == tier])
        },
    }


def evaluate_feedback(settings: FeedbackSettings) -> dict:
    """The report of `settings.feedback_log`, written to `settings.output` (.json and .md).

    Raises:
        InputError: the log is missing or a line is not a Feedback record (FILE:LINE says which).
    """
    last_of: dict[tuple[str, int], Feedback] = {}
    for report in read_records(settings.feedback_log, Feedback):
        earlier = last_of.pop((report.domain, report.id), None)  # a later report of a hit replaces it, keeps its similarity
        if earlier is not None and report.similarity is None:
            report = report.model_copy(update={"similarity": earlier.similarity, "tier": report.tier or earlier.tier})
        last_of[(report.domain, report.id)] = report
    by_domain: dict[str, list[Feedback]] = defaultdict(list)
    for report in last_of.values():
        by_domain[report.domain].append(report)
    output = settings.output or settings.feedback_log.with_suffix(".report.json")
    result = {
        "feedback_log": str(settings.feedback_log),
        "target_precision": settings.target_precision,
        "domains": {domain: domain_summary(reports, settings.target_precision) for domain, reports in sorted(by_domain.items())},
        "output": str(output),
    }
    write_json(output, result)
    Path(output).with_suffix(".md").write_text(markdown(result))
    return result


def advice(summary: dict, target: float) -> str:
    """What to do with a domain's threshold, in words."""
    if summary["recommended_threshold"] is None:
        highest = summary["highest_wrong_similarity"]
        reason = f"{summary['with_similarity']} reports with a similarity" if summary["with_similarity"] else "no report has a similarity"
        return f"no threshold reaches precision {target} with 95% confidence ({reason})" + (
            f"; a wrong hit was served at {highest:.4f}: a threshold above it would not have served it" if highest is not None else ""
        )
    if summary["recommended_threshold"] <= summary["lowest_served_similarity"]:
        return f"keep the threshold: every served hit together reaches {target} (the log cannot show a lower one holds)"
    return (
        f"raise the threshold to {summary['recommended_threshold']:.4f}: precision >= {summary['recommended_lower_bound']:.3f} "
        f"with 95% confidence, {summary['kept_share']:.0%} of the reported hits still served"
    )


def markdown(result: dict) -> str:
    lines = [
        f"# Feedback: {result['feedback_log']}",
        "",
        "| domain | reported | wrong | precision | 95% lower bound | recommendation |",
        "|---|---|---|---|---|---|",
    ]
    for domain, summary in result["domains"].items():
        lines.append(
            f"| {domain} | {summary['reported']} | {summary['wrong']} | {summary['precision']:.3f} | "
            f"{summary['precision_lower_bound']:.3f} | {advice(summary, result['target_precision'])} |"
        )
    return "\n".join(lines) + "\n"
