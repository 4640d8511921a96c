"""A second opinion near the threshold: a candidate whose cosine falls within the band around the domain's threshold is
re-scored by the weighted mean of both models' cosines; outside the band the first model decides alone, and the
second model never runs. Here the second model is the shipped programming adapter (any model spec works; the
base-size tier uses all-mpnet-base-v2)."""

import pytest

from cachetune.models import load_model

STORED = "How do I reverse a list in Python?"
REWORDED = "How can I reverse the order of a list in Python?"
UNRELATED = "What are the symptoms of type 2 diabetes?"


@pytest.fixture(scope="module")
def cosines():
    texts = [STORED, REWORDED, UNRELATED]
    first, second = (load_model(spec).encode(texts, normalize_embeddings=True) for spec in (None, "programming"))
    return {"first": float(first[0] @ first[1]), "second": float(second[0] @ second[1]), "unrelated": float(first[0] @ first[2])}


def test_a_candidate_near_the_threshold_is_decided_by_both_models(make_cache, cosines):
    threshold = round(cosines["first"] + 0.01, 4)  # the first model alone would not serve the rewording
    domain = {
        "similarity_threshold": threshold,
        "encoder": "torch",
        "second_model": "programming",
        "second_band": 0.05,
        "second_weight": 0.7,
    }
    cache = make_cache({"coding": domain})
    cache.store(STORED, "list[::-1]", "coding")
    found = cache.lookup(REWORDED, "coding")
    blended = 0.3 * cosines["first"] + 0.7 * cosines["second"]
    assert found.second_opinion_ms is not None and found.similarity == pytest.approx(cosines["first"], abs=1e-4)
    assert found.judged == pytest.approx(blended, abs=1e-4) and (found.hit is not None) == (blended >= threshold)
    if found.hit is not None:
        assert found.hit.similarity == pytest.approx(blended, abs=1e-4)


def test_outside_the_band_the_first_model_decides_alone_and_the_second_never_runs(make_cache, cosines):
    domain = {"similarity_threshold": 0.9, "encoder": "torch", "second_model": "programming", "second_band": 0.02}
    cache = make_cache({"coding": domain})
    cache.store(STORED, "list[::-1]", "coding")
    far = cache.lookup(UNRELATED, "coding")
    exact = cache.lookup(STORED, "coding")
    assert far.hit is None and far.second_opinion_ms is None and far.similarity == pytest.approx(cosines["unrelated"], abs=1e-4)
    assert exact.hit.similarity == pytest.approx(1.0, abs=1e-5) and exact.second_opinion_ms is None


def test_the_second_opinion_is_counted_in_the_metrics(serve_app, onnx_folder, cosines):
    from cachetune.cache_config import CacheConfig

    threshold = round(cosines["first"], 4)
    domains = {"coding": {"similarity_threshold": threshold, "encoder": "torch", "second_model": "programming", "second_band": 0.05}}
    with serve_app(CacheConfig.model_validate({"domains": domains, "onnx_cache": str(onnx_folder)})) as client:
        client.post("/v1/cache/store", json={"prompt": STORED, "response": "list[::-1]", "domain": "coding"}).raise_for_status()
        for prompt in (REWORDED, UNRELATED):
            client.post("/v1/cache/check", json={"prompt": prompt, "domain": "coding"}).raise_for_status()
        text = client.get("/metrics").text
    assert 'cachetune_second_opinions_total{domain="coding"} 1.0' in text
    assert 'cachetune_second_opinion_seconds_count{domain="coding"} 1.0' in text
