import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import beta
from sklearn.metrics import average_precision_score, precision_score, recall_score, roc_auc_score

from cachetune.errors import InputError
from cachetune.evaluate.pairs import OperatingPoints, best_f05_threshold, target_precision_threshold
from cachetune.evaluate.run import EvaluateSettings, evaluate
from cachetune.evaluate.traps import TrapPair, trap_suite_metrics
from cachetune.evaluate.triplets import triplet_metrics
from cachetune.metrics import recall_at_precision
from cachetune.models import ModelError, load_model
from cachetune.records import Pair, Triplet, read_records, write_jsonl
from cachetune.replay import ReplaySet, oracle_auc, replay_metrics, retrieval_recall_at_1


def brute_force_recall_at_precision(labels, scores, target):
    best = 0.0
    for threshold in np.unique(scores):
        served = scores >= threshold
        if labels[served].mean() >= target:
            best = max(best, labels[served].sum() / labels.sum())
    return best


def test_pair_metrics_agree_with_scikit_learn_on_the_same_scores(report, adapter, conala_prepared):
    result, _ = report
    pairs = read_records(conala_prepared / "pairs.test.jsonl", Pair)
    labels = np.array([p.label for p in pairs])
    model = load_model(str(adapter))
    a = model.encode([p.query1 for p in pairs], normalize_embeddings=True)
    b = model.encode([p.query2 for p in pairs], normalize_embeddings=True)
    scores = np.einsum("ij,ij->i", a, b)
    section = result["pairs"][0]
    assert np.allclose(section["scores"]["tuned"], scores, atol=1e-4)
    tuned = section["tuned"]
    assert tuned["ap"] == pytest.approx(average_precision_score(labels, scores), abs=1e-3)
    assert tuned["roc_auc"] == pytest.approx(roc_auc_score(labels, scores), abs=1e-3)
    assert tuned["recall_at_p95"] == pytest.approx(brute_force_recall_at_precision(labels, scores, 0.95), abs=1e-2)
    for point in tuned["at_thresholds"]:
        served = scores >= point["threshold"]
        assert point["precision"] == pytest.approx(precision_score(labels, served, zero_division=1), abs=1e-3)
        assert point["recall"] == pytest.approx(recall_score(labels, served), abs=1e-3)
        assert point["false_hit_rate"] == pytest.approx(served[labels == 0].mean(), abs=1e-3)


def test_operating_threshold_is_the_lowest_whose_precision_lower_bound_reaches_the_target():
    rng = np.random.default_rng(0)
    labels = np.r_[np.ones(400, dtype=int), np.zeros(400, dtype=int)]
    scores = np.r_[rng.normal(0.85, 0.05, 400), rng.normal(0.65, 0.08, 400)]
    chosen, bound = target_precision_threshold(labels, scores, 0.95)
    served = scores >= chosen
    correct, count = int(labels[served].sum()), int(served.sum())
    # the one-sided 95% Clopper-Pearson bound of precision at the chosen threshold reaches the target ...
    assert bound == pytest.approx(beta.ppf(0.05, correct, count - correct + 1)) and bound >= 0.95
    assert labels[served].mean() > bound  # ... below the point estimate, which alone would pick a lower threshold
    assert recall_at_precision(labels, scores, 0.95)[1] < chosen
    wider = scores >= scores[scores < chosen].max()  # one step lower, the bound no longer reaches the target
    assert beta.ppf(0.05, labels[wider].sum(), wider.sum() - labels[wider].sum() + 1) < 0.95
    assert target_precision_threshold(labels[:3], scores[:3], 0.95) == (None, None)  # 3 right hits prove nothing


def test_operating_threshold_is_chosen_on_validation_not_test(report, adapter, conala_prepared):
    result, _ = report
    val = read_records(conala_prepared / "pairs.val.jsonl", Pair)
    model = load_model(str(adapter))
    scores = np.einsum(
        "ij,ij->i",
        model.encode([p.query1 for p in val], normalize_embeddings=True),
        model.encode([p.query2 for p in val], normalize_embeddings=True),
    )
    labels = np.array([p.label for p in val])
    points = result["operating_thresholds"]["tuned"]
    assert (points["target_precision"], points["target_precision_lower_bound"]) == target_precision_threshold(labels, scores, 0.95)
    assert points["best_f05"] == pytest.approx(best_f05_threshold(labels, scores), abs=1e-4)
    point = result["pairs"][0]["tuned"]["at_operating_thresholds"]["best_f05"]
    assert point["threshold"] == pytest.approx(points["best_f05"], abs=1e-4)


def test_without_enough_validation_pairs_the_best_f05_threshold_is_the_fallback_and_says_why():
    rng = np.random.default_rng(1)
    labels = np.r_[np.ones(20, dtype=int), np.zeros(20, dtype=int)]
    scores = np.r_[rng.normal(0.85, 0.05, 20), rng.normal(0.70, 0.08, 20)]
    few = OperatingPoints.choose(labels, scores, 0.95)
    assert few.target_precision is None and few.fallback and few.threshold == few.best_f05
    assert few.highest_lower_bound < 0.95 and few.val_pairs == 40
    assert few.best_f05_precision == pytest.approx(labels[scores >= few.best_f05].mean())
    words = few.explained(0.95)
    assert "best-F0.5" in words and "40 validation pairs" in words and f"{few.highest_lower_bound:.3f}" in words
    labels, scores = np.r_[labels, np.ones(400, dtype=int)], np.r_[scores, np.full(400, 0.99)]
    many = OperatingPoints.choose(labels, scores, 0.95)
    assert not many.fallback and many.threshold == many.target_precision


def test_the_cache_config_written_serves_the_tuned_model_at_its_operating_threshold(report, adapter):
    from cachetune.cache_config import load_config
    from cachetune.integrations.embedder import threshold_of

    result, output = report
    points = result["operating_thresholds"]["tuned"]
    config = load_config(output / "cache.yaml")
    assert list(config.domains) == ["programming"] and result["cache_config"] == str(output / "cache.yaml")
    domain = config.domains["programming"]
    assert domain.embedding_model_path == str(adapter.resolve())
    assert domain.similarity_threshold == pytest.approx(points["threshold"], abs=1e-6)
    assert threshold_of(output / "report.json", "programming") == points["threshold"]
    assert "cache config serving the tuned model" in (output / "report.md").read_text()
    assert domain.report == str(output / "report.html") and config.memory.persist_path == str(output / "cache-store.npz")  # durable
    with pytest.raises(ValueError, match="write_cache_config needs val_data"):
        EvaluateSettings(model=str(adapter), test_data=(output / "x.jsonl",), write_cache_config=output / "c.yaml")


def test_the_report_is_also_one_html_page_with_its_plots_inline(report):
    _, output = report
    page = (output / "report.html").read_text()
    assert page.startswith("<!doctype html>") and "<table>" in page and "average precision" in page
    assert page.count('src="data:image/png;base64,') == 3 and "operating threshold" in page


def test_report_has_intervals_verdicts_tables_and_plots(report):
    result, output = report
    section = result["pairs"][0]
    for name in ("tuned", "baseline"):
        low, high = section["bootstrap"]["intervals"][name]["ap"]
        assert low <= section[name]["ap"] <= high
    verdicts = {metric: value["verdict"] for metric, value in section["bootstrap"]["difference"].items()}
    assert set(verdicts.values()) <= {"better", "worse", "no significant difference"} and "ap" in verdicts
    markdown = (output / "report.md").read_text()
    assert "| average precision |" in markdown and "false-hit rate" in markdown and "cache replay P-CHR AUC" in markdown
    for name in ("pr_pairs_test.png", "similarity_pairs_test.png", "replay_pairs_test.png"):
        assert (output / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    assert json.loads((output / "report.json").read_text())["models"]["tuned"]["adapter_bytes"] < 1_000_000
    assert result["speed"]["tuned"]["latency_ms_p99"] >= result["speed"]["tuned"]["latency_ms_p50"] > 0
    assert "## Trap suite" in markdown and "| tuned, guards |" in markdown and "| tuned, conversation |" in markdown
    chats = result["conversations"]["tuned"]
    assert chats["pairs"] == 54 and set(chats["modes"]) == {"conversation", "none"}  # the programming scenarios
    assert (
        chats["modes"]["none"]["kinds"]["context_swapped"]["served"] > chats["modes"]["conversation"]["kinds"]["context_swapped"]["served"]
    )
    assert chats["modes"]["conversation"]["wrong_hits"] == 0


def test_the_trap_suite_counts_each_kind_at_the_threshold_and_guards_refuse_their_traps(report):
    result, _ = report
    hand = result["traps"]["sets"]["hand"]
    assert hand["tuned"]["cosine"]["pairs"] == 54  # the programming pairs of traps.yaml: the test data's domain
    rule = result["traps"]["sets"]["rule"]["tuned"]
    threshold = rule["cosine"]["threshold"]
    points = result["operating_thresholds"]["tuned"]
    assert threshold == (points["target_precision"] if points["target_precision"] is not None else points["best_f05"])
    cosine, guarded = rule["cosine"]["kinds"], rule["guards"]["kinds"]
    assert cosine["rewording"]["pairs"] == result["pairs"][0]["positives"]
    assert set(cosine) == {"rewording", "negation", "number", "entity", "scope"}
    assert all(guarded[kind]["pairs"] == cosine[kind]["pairs"] and guarded[kind]["served"] <= cosine[kind]["served"] for kind in cosine)
    # The hand-written number traps change a number both prompts state: the numbers guard refuses every one of them.
    hand_cosine, hand_guarded = hand["tuned"]["cosine"]["kinds"], hand["tuned"]["guards"]["kinds"]
    assert hand_cosine["number"]["served"] > 0 and hand_guarded["number"]["served"] == 0
    replay, with_guards = result["pairs"][0]["tuned"]["replay"], result["pairs"][0]["tuned"]["replay_with_guards"]
    assert with_guards["queries"] == replay["queries"] and with_guards["auc"] != replay["auc"]


def test_served_at_most_wrong_is_recall_at_precision_with_refused_pairs_never_served():
    texts = {"s": 1.0, "r1": 0.99, "r2": 0.95, "t1": 0.97, "t2": 0.90}  # similarity to "s" of each new prompt
    vector_of = {text: np.array([np.cos(np.arccos(cos)), np.sin(np.arccos(cos))]) for text, cos in texts.items()}
    pairs = [TrapPair("s", new, "rewording" if new[0] == "r" else "number", "x") for new in ("r1", "r2", "t1", "t2")]
    result = trap_suite_metrics(pairs, vector_of, 0.93, None)
    assert result["kinds"] == {"rewording": {"pairs": 2, "served": 2}, "number": {"pairs": 2, "served": 1}}
    assert result["served_at_wrong"] == {"0.01": 0.5, "0.05": 0.5}  # only r1 is above every trap
    assert [e["new"] for e in result["examples"]] == ["t1"]


def unit(angle_degrees: float) -> np.ndarray:
    angle = np.radians(angle_degrees)
    return np.array([np.cos(angle), np.sin(angle)])


def test_populated_cache_replay_counts_right_and_false_hits_and_its_area():
    # Four questions q_i, each with a labelled rewording r_i in the cache and one look-alike l_i that is not.
    pairs, vector_of = [], {}
    for n, base in enumerate((0, 40, 80, 120)):
        q, r, look_alike = f"q{n}", f"r{n}", f"l{n}"
        vector_of |= {q: unit(base), r: unit(base + 5), look_alike: unit(base + 12)}
        pairs += [
            Pair(query1=q, query2=r, label=1, domain="d", source="s"),
            Pair(query1=q, query2=look_alike, label=0, domain="d", source="s"),
        ]
    replay = ReplaySet.from_pairs(pairs, seed=3)
    assert sorted(replay.queries) == ["q0", "q1", "q2", "q3"] and replay.removed == [False, True, False, True]
    assert replay.answerable == 0.5 and oracle_auc(0.5) == pytest.approx(0.5 * (1 + np.log(2)))
    result = replay_metrics(replay, vector_of, {"mid": 0.99})
    # Answerable queries find their rewording (cos 0.996); the others' rewording is gone and the look-alike (cos 0.978) hits.
    assert result["at"]["mid"] == {"threshold": 0.99, "hit_ratio": 0.5, "precision": 1.0, "false_hits": 0, "correct_hits": 2}
    low = next(p for p in result["curve"] if p["threshold"] == 0.9)
    assert (low["hit_ratio"], low["precision"], low["false_hits"]) == (1.0, 0.5, 2)
    # Every right answer outranks every wrong one: precision 1 up to hit ratio 0.5, then one trapezoid down to 0.5 at 1.
    # (With many queries the trapezoids follow p/h and the area tends to the oracle's p(1 + ln(1/p)).)
    assert result["auc"] == pytest.approx(0.5 * 1.0 + 0.5 * (1.0 + 0.5) / 2)
    assert retrieval_recall_at_1(pairs, vector_of) == 1.0


def test_triplet_metrics_show_both_similarities_and_retrieval():
    vector_of = {
        "q": np.array([1.0, 0.0]),
        "p": np.array([0.8, 0.6]),
        "n": np.array([0.6, 0.8]),
        "q2": np.array([0.0, 1.0]),
        "p2": np.array([0.28, 0.96]),
    }
    triplets = [
        Triplet(anchor="q", positive="p", hard_negative="n", domain="d", source="s"),
        Triplet(anchor="q2", positive="p2", hard_negative="p", domain="d", source="s"),
    ]
    result = triplet_metrics(triplets, vector_of)
    assert result["mean_cos_anchor_positive"] == pytest.approx((0.8 + 0.96) / 2)
    assert result["mean_cos_anchor_negative"] == pytest.approx((0.6 + 0.6) / 2)
    assert result["accuracy"] == 1.0
    # q ranks p first; q2 ranks p2 first (0.96 > n 0.8): both found at rank 1.
    assert result["mrr_at_1"] == 1.0 and result["recall_at_1"] == 1.0


def test_bad_input_is_one_clear_message(adapter, conala_prepared, tmp_path):
    pairs = read_records(conala_prepared / "pairs.test.jsonl", Pair)
    one_class = tmp_path / "positives.jsonl"
    write_jsonl(one_class, [p for p in pairs if p.label == 1])
    settings = lambda **kw: EvaluateSettings(model=str(adapter), output=tmp_path / "r", bootstrap=0, speed=False, **kw)  # noqa: E731
    with pytest.raises(InputError, match="needs pairs with label 1 and label 0, found only label \\[1\\]"):
        evaluate(settings(test_data=(one_class,)))
    unknown = tmp_path / "unknown.jsonl"
    unknown.write_text(json.dumps({"query1": "a b c", "query2": "a b d", "label": 1, "domain": "x", "source": "y", "score": 3}) + "\n")
    with pytest.raises(InputError, match=f"{unknown}:1: unknown field 'score'"):
        evaluate(settings(test_data=(unknown,)))
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(InputError, match="empty file"):
        evaluate(settings(test_data=(empty,)))
    not_a_model = tmp_path / "folder"
    not_a_model.mkdir()
    with pytest.raises(ModelError, match="not a model folder"):
        evaluate(EvaluateSettings(model=str(not_a_model), test_data=(conala_prepared / "pairs.test.jsonl",), output=tmp_path / "r"))


def test_cli_takes_several_thresholds_after_one_flag(adapter, conala_prepared, tmp_path):
    cachetune = Path(sys.executable).with_name("cachetune")
    command = [
        str(cachetune),
        "evaluate",
        "--model",
        str(adapter),
        "--test-data",
        str(conala_prepared / "pairs.test.jsonl"),
        "--thresholds",
        "0.7",
        "0.8",
        "0.9",
        "--bootstrap",
        "0",
        "--no-speed",
        "--output",
        str(tmp_path / "r"),
    ]
    result = subprocess.run(command, capture_output=True, text=True, env={"HF_HUB_OFFLINE": "1", "PATH": ""})
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert [p["threshold"] for p in report["pairs"][0]["tuned"]["at_thresholds"]] == [0.7, 0.8, 0.9]
    assert "no --val-data" in (tmp_path / "r" / "report.md").read_text()


def test_test_files_with_one_name_get_plots_of_their_own():
    from cachetune.evaluate.report import _plot_stems

    files = [Path("run/prepare-mqp/pairs.test.jsonl"), Path("run/prepare-rqe/pairs.test.jsonl"), Path("x/triplets.jsonl")]
    assert _plot_stems(files) == ["prepare-mqp_pairs_test", "prepare-rqe_pairs_test", "triplets"]
