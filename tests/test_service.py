"""The HTTP service in process (`create_app` through FastAPI's TestClient, an httpx client on the ASGI app): the cache
API's routes, statuses, metrics and feedback. `cachetune serve` as a process is tested in test_trust.py."""

import json

import httpx
import pytest
from conftest import Clock
from typer.testing import CliRunner

from cachetune.cache_config import CacheConfig
from cachetune.cli import app

QUESTION = "How do I reverse a list in Python?"
REWORDED = "How can I reverse a list in python?"


@pytest.fixture(scope="module")
def service(adapter, tmp_path_factory, serve_app, onnx_folder):
    folder = tmp_path_factory.mktemp("service")
    config = CacheConfig.model_validate(
        {
            "domains": {
                "coding": {"embedding_model_path": str(adapter), "similarity_threshold": 0.85, "ttl_seconds": 3600},
                "small": {"similarity_threshold": 0.85, "max_entries": 2, "eviction": "fifo"},
                "guarded": {"embedding_model_path": str(adapter), "similarity_threshold": 0.8, "verify": {"guards": ["numbers"]}},
            },
            "limits": {"max_body_bytes": 4096, "max_prompt_chars": 500},
            "feedback_log": str(folder / "feedback.jsonl"),
            "onnx_cache": str(onnx_folder),
        }
    )
    clock = Clock()
    with serve_app(config, clock=clock) as client:
        client.feedback_log, client.clock = folder / "feedback.jsonl", clock
        yield client


def check(client, prompt, domain="coding", tenant=None):
    response = client.post("/v1/cache/check", json={"prompt": prompt, "domain": domain, "tenant": tenant})
    assert response.status_code == 200, response.text
    return response.json()


def store(client, prompt, answer, domain="coding", tenant=None, ttl=None):
    response = client.post(
        "/v1/cache/store",
        json={"prompt": prompt, "response": answer, "domain": domain, "tenant": tenant, "ttl": ttl, "metadata": {"by": "test"}},
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_store_then_a_paraphrase_hits(service):
    assert check(service, QUESTION, tenant="t1") == {"hit": False, "similarity": None, "threshold": 0.85, "refused": []}
    assert store(service, QUESTION, "list[::-1]", tenant="t1")["stored"] is True
    hit = check(service, REWORDED, tenant="t1")
    assert hit["hit"] is True and hit["response"] == "list[::-1]" and hit["prompt"] == QUESTION
    assert hit["similarity"] >= 0.85 and hit["age_seconds"] >= 0 and hit["metadata"] == {"by": "test"}
    assert hit["threshold"] == 0.85 and hit["refused"] == []  # no verify stage: the cosine decided


def test_unrelated_prompt_and_other_tenant_miss(service):
    store(service, QUESTION, "list[::-1]", tenant="t2")
    unrelated = check(service, "What are the symptoms of type 2 diabetes?", tenant="t2")
    assert unrelated["hit"] is False and unrelated["similarity"] < 0.85  # the nearest entry's, below the threshold
    assert check(service, QUESTION, tenant="t3")["hit"] is False


def test_expired_entry_misses(service):
    store(service, "How do I sort a dict by value?", "sorted(d.items(), key=...)", tenant="t4", ttl=1)
    assert check(service, "How do I sort a dict by value?", tenant="t4")["hit"] is True
    service.clock.now += 1.2
    assert check(service, "How do I sort a dict by value?", tenant="t4")["hit"] is False


def test_eviction_at_max_entries(service):
    prompts = ["How to read a CSV file with pandas?", "How do I merge two dicts?", "How do I start a Docker container?"]
    for prompt in prompts:
        store(service, prompt, f"answer: {prompt}", domain="small")
    assert check(service, prompts[0], domain="small")["hit"] is False
    assert check(service, prompts[2], domain="small")["response"] == f"answer: {prompts[2]}"


def test_bad_requests_get_a_clear_4xx(service):
    unknown = service.post("/v1/cache/check", json={"prompt": QUESTION, "domain": "legal"})
    # the domains in the config's order
    assert unknown.status_code == 404 and unknown.json()["detail"] == "unknown domain 'legal'; configured: coding, small, guarded"
    malformed = service.post("/v1/cache/store", json={"prompt": QUESTION, "domain": "coding"})
    assert malformed.status_code == 422 and malformed.json()["detail"] == "response: Field required"
    not_json = service.post("/v1/cache/check", content=b"{nope", headers={"content-type": "application/json"})
    assert not_json.status_code == 422
    too_long = service.post("/v1/cache/check", json={"prompt": "x" * 501, "domain": "coding"})
    assert too_long.status_code == 422 and "over the limit of 500" in too_long.json()["detail"]
    too_big = service.post("/v1/cache/store", json={"prompt": QUESTION, "response": "y" * 5000, "domain": "coding"})
    assert too_big.status_code == 413


def test_metrics_count_hits_misses_and_errors(service):
    check(service, "a prompt nobody stored", tenant="t9")
    text = service.get("/metrics").text
    assert (
        'cachetune_hits_total{domain="coding",path="check",tier="semantic"}' in text and 'cachetune_misses_total{domain="coding"}' in text
    )
    # An unknown domain is counted, but never becomes a label value: callers cannot grow the metrics without bound.
    assert 'cachetune_errors_total{domain="none",kind="unknown_domain"}' in text and '"legal"' not in text
    assert 'cachetune_request_seconds_bucket{domain="coding",le="0.1",operation="check"}' in text
    assert 'cachetune_entries{domain="small"} 2.0' in text


def test_a_guard_refuses_a_look_alike_says_why_and_serves_the_true_repeat_below_it(service):
    ten = store(service, "How do I read the first 10 lines of a file in Python?", "head -10", domain="guarded")["id"]
    prompt = "How do I read the first 5 lines of a file in Python?"
    assert check(service, prompt, domain="coding")["hit"] is False  # another domain's entries are not candidates
    store(service, "How do I read the first 10 lines of a file in Python?", "head -10", domain="coding")
    assert check(service, prompt, domain="coding")["hit"] is True  # the cosine alone serves the look-alike
    refused = check(service, prompt, domain="guarded")
    assert refused["hit"] is False and refused["similarity"] >= 0.8
    assert [(r["id"], r["reason"]) for r in refused["refused"]] == [(ten, "guard:numbers")]
    five = store(service, "How can I read the first five lines from a file in python?", "head -5", domain="guarded")["id"]
    hit = check(service, prompt, domain="guarded")
    assert hit["hit"] is True and hit["id"] == five and hit["response"] == "head -5"
    assert [(r["id"], r["reason"]) for r in hit["refused"]] == [(ten, "guard:numbers")]
    assert 'cachetune_refusals_total{domain="guarded",reason="guard:numbers"} 2.0' in service.get("/metrics").text


def test_feedback_counts_confirmed_hits_and_a_wrong_hit_is_never_served_again(service):
    store(service, "How do I sort a list of tuples by the second item?", "sorted(xs, key=lambda t: t[1])", tenant="t5")
    prompt = "How can I sort a list of tuples by their second element?"
    hit = check(service, prompt, tenant="t5")
    assert hit["hit"] is True

    def feedback(correct: bool, tenant: str) -> httpx.Response:
        return service.post("/v1/cache/feedback", json={"domain": "coding", "id": hit["id"], "correct": correct, "tenant": tenant})

    assert feedback(True, "t5").json() == {"deleted": 0} and check(service, prompt, tenant="t5")["hit"] is True
    refused = feedback(False, "t6")  # another tenant cannot touch it, nor count it
    assert refused.status_code == 404 and "no entry" in refused.json()["detail"]
    assert check(service, prompt, tenant="t5")["hit"] is True
    assert feedback(False, "t5").json() == {"deleted": 1}
    assert check(service, prompt, tenant="t5")["hit"] is False
    assert feedback(False, "t5").status_code == 404  # already reported wrong: taken once
    text = service.get("/metrics").text
    assert 'cachetune_feedback_total{domain="coding",verdict="correct"} 1.0' in text
    assert 'cachetune_feedback_total{domain="coding",verdict="wrong"} 1.0' in text
    reports = [json.loads(line) for line in service.feedback_log.read_text().splitlines()]
    assert [(r["correct"], r["tier"]) for r in reports] == [(True, "semantic"), (False, "semantic")]
    assert reports[0]["similarity"] == reports[1]["similarity"] == pytest.approx(hit["similarity"])


def test_evaluate_feedback_recommends_the_threshold_above_the_wrong_hits(tmp_path):
    # Reports as a cache writes them: wrong hits served at 0.86-0.88, right ones from 0.85 to 0.99.
    log = tmp_path / "feedback.jsonl"
    rows = [{"time": 0.0, "domain": "coding", "id": i, "correct": True, "similarity": 0.85 + i * 0.0025} for i in range(57)]
    rows += [{"time": 0.0, "domain": "coding", "id": 100 + i, "correct": False, "similarity": s} for i, s in enumerate((0.86, 0.87, 0.88))]
    rows += [{"time": 0.0, "domain": "medical", "id": 1, "correct": False, "similarity": None}]
    log.write_text("".join(json.dumps(row) + "\n" for row in rows))
    result = CliRunner().invoke(app, ["evaluate-feedback", "--feedback-log", str(log), "--target-precision", "0.9"])
    assert result.exit_code == 0, result.output
    report = json.loads(log.with_suffix(".report.json").read_text())
    coding = report["domains"]["coding"]
    assert (coding["reported"], coding["wrong"], coding["highest_wrong_similarity"]) == (60, 3, 0.88)
    # From 0.8725 up: 48 right, 1 wrong (bound 0.907); from 0.87: 49 right, 2 wrong (bound 0.88 < 0.9).
    assert coding["recommended_threshold"] == pytest.approx(0.8725) and coding["recommended_lower_bound"] >= 0.9
    assert report["domains"]["medical"]["recommended_threshold"] is None
    assert "raise the threshold" in log.with_suffix(".report.md").read_text()
    log.write_text(log.read_text() + '{"domain": "coding"}\n')
    result = CliRunner().invoke(app, ["evaluate-feedback", "--feedback-log", str(log)])
    assert result.exit_code == 1 and f"{log}:62" in result.output


def test_an_exact_repeat_is_the_exact_tier_and_a_rewording_the_semantic_one(service):
    store(service, "How do I flatten a nested list in Python?", "itertools.chain.from_iterable", tenant="t7")
    assert check(service, "How do I  flatten a nested list in Python?", tenant="t7")["tier"] == "exact"  # spacing aside
    assert check(service, "How can I flatten a list of lists in Python?", tenant="t7")["tier"] == "semantic"
    text = service.get("/metrics").text
    assert 'cachetune_hits_total{domain="coding",path="check",tier="exact"}' in text
    assert 'cachetune_hits_total{domain="coding",path="check",tier="semantic"}' in text
