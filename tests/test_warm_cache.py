"""Every place that resolves a model, on a machine where sentence-transformers was used before: its Hugging Face
cache holds sentence-transformers/all-MiniLM-L6-v2 (tests/conftest.py `warm_hub_cache`, offline and with a Hub that
cannot be reached). A model is the same model wherever it was found; an adapter on other weights is refused."""

import json
import shutil

import numpy as np
import pytest

from cachetune.cache.semantic_cache import SemanticCache
from cachetune.cache_config import CacheConfig, DomainConfig
from cachetune.errors import ModelError
from cachetune.models import DEFAULT_BASE_MODEL, load_model, resolve_base_model, resolve_model
from cachetune.packaged import minilm

PROMPTS = ["How do I reverse a list in Python?", "python: flip the order of my list items"]


def coding_cache(**config) -> CacheConfig:
    return CacheConfig(domains={"coding": DomainConfig(embedding_model_path="programming", encoder="torch")}, **config)


def test_the_hub_cache_holds_the_model(warm_hub_cache):
    import huggingface_hub

    assert huggingface_hub.snapshot_download(DEFAULT_BASE_MODEL, local_files_only=True) == str(warm_hub_cache)


def test_serve_loads_a_shipped_adapter_on_the_default_base(warm_hub_cache):
    with SemanticCache(coding_cache()) as cache:
        cache.store(PROMPTS[0], "use reversed()", "coding")
        assert cache.check(PROMPTS[0], "coding").response == "use reversed()"
        expected = load_model("programming", merge=True).encode(PROMPTS[1:], normalize_embeddings=True)[0]
        assert np.allclose(cache.embed(PROMPTS[1], "coding"), expected, atol=1e-5)


def test_serve_takes_the_hub_snapshot_folder_as_the_same_base(warm_hub_cache):
    with SemanticCache(coding_cache(base_model=str(warm_hub_cache))) as cache:
        cache.store(PROMPTS[0], "use reversed()", "coding")
        assert cache.check(PROMPTS[0], "coding") is not None


def test_an_adapter_on_other_weights_is_refused_naming_both(tmp_path):
    from safetensors.numpy import load_file, save_file

    other = tmp_path / "other-minilm"
    shutil.copytree(minilm(), other)
    weights = load_file(other / "model.safetensors")
    first = sorted(weights)[0]
    weights[first] = weights[first] + np.float32(0.01)
    save_file(weights, other / "model.safetensors")
    with pytest.raises(
        ModelError, match=r"adapter programming was trained on sentence-transformers/all-MiniLM-L6-v2 .*not on .*other-minilm"
    ):
        SemanticCache(coding_cache(base_model=str(other)))


def test_evaluate_compares_the_adapter_with_the_base_it_was_trained_on(warm_hub_cache, conala_prepared, tmp_path):
    from cachetune.evaluate.run import evaluate
    from cachetune.evaluate.settings import EvaluateSettings

    settings = EvaluateSettings(
        model="programming", test_data=(conala_prepared / "pairs.test.jsonl",), output=tmp_path / "r", bootstrap=0, speed=False
    )
    report = evaluate(settings)
    assert report.models["baseline"].spec == DEFAULT_BASE_MODEL and report.models["tuned"].spec == "programming"
    assert report.pairs[0].tuned.ap != report.pairs[0].baseline.ap


@pytest.mark.training
def test_train_records_the_base_by_name_and_weights(warm_hub_cache, conala_triplets, tmp_path):
    from cachetune.train.trainer import TrainSettings, train

    output = tmp_path / "model"
    train(TrainSettings(train_data=(conala_triplets,), output=output, batch_size=8, max_steps=1, base_model=DEFAULT_BASE_MODEL))
    recorded = json.loads((output / "training_info.json").read_text())["base_model"]
    assert recorded == {"name": DEFAULT_BASE_MODEL, "sha256": resolve_base_model(None).sha256}
    assert resolve_model(str(output)).on_base(resolve_base_model(str(warm_hub_cache))).kind == "adapter"


def test_export_merges_the_shipped_adapter(warm_hub_cache, tmp_path):
    from cachetune.export.run import export_model
    from cachetune.export.settings import ExportSettings

    export_model(ExportSettings(model="programming", output=tmp_path / "merged", merge=True))
    exported = load_model(str(tmp_path / "merged")).encode(PROMPTS, normalize_embeddings=True)
    assert np.allclose(exported, load_model("programming", merge=True).encode(PROMPTS, normalize_embeddings=True), atol=1e-5)


def test_integrations_embed_as_the_cache_does(warm_hub_cache):
    from cachetune.integrations.embedder import DomainEmbedder

    with DomainEmbedder(coding_cache(), "coding") as embedder, SemanticCache(coding_cache()) as cache:
        assert np.allclose(embedder.embed_array(PROMPTS), np.stack([cache.embed(p, "coding") for p in PROMPTS]), atol=1e-6)
