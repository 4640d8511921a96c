import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("CACHETUNE_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real public datasets beside the checkout (see ../shared/data/README.md)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} is not there")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def offline_hub(monkeypatch):
    """Tests never reach the Hugging Face Hub, whatever the machine's network."""
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")


@pytest.fixture(scope="session")
def conala_prepared(shared_data, tmp_path_factory) -> Path:
    """A real CoNaLa sample through `prepare`: queries and labelled pairs, train/val/test."""
    from cachetune.data.prepare import PrepareSettings, prepare

    output = tmp_path_factory.mktemp("conala")
    prepare(
        PrepareSettings(
            source="conala",
            input=str(shared_data / "programming" / "conala-train.json"),
            output=output,
            max_queries=900,
            val=0.15,
            test=0.15,
        )
    )
    return output


@pytest.fixture(scope="session")
def conala_triplets(conala_prepared) -> Path:
    """Triplets from the real pairs, as `mine` builds them with `negatives_from: labels`: a rewrite as positive, the
    lexical negative of the same query as negative."""
    from cachetune.records import Pair, read_records, write_jsonl
    from cachetune.synth.mine import labelled_negative_triplets

    triplets = labelled_negative_triplets(read_records(conala_prepared / "pairs.train.jsonl", Pair))
    path = conala_prepared / "triplets.train.jsonl"
    write_jsonl(path, triplets)
    return path


@pytest.fixture(scope="session")
def adapter(conala_triplets, tmp_path_factory) -> Path:
    """A small LoRA adapter trained by `cachetune.train` for a few steps on the real triplets."""
    from cachetune.train.trainer import TrainSettings, train

    output = tmp_path_factory.mktemp("adapter") / "model"
    train(TrainSettings(train_data=(conala_triplets,), output=output, batch_size=16, lr=1e-3, max_steps=3, max_seq_length=64))
    return output


@pytest.fixture(scope="session")
def report(adapter, conala_prepared, tmp_path_factory):
    """`cachetune evaluate` of the session's adapter on the real CoNaLa pairs, with a cache config written beside its
    report (report.json, report.md, report.html, plots): (the report as written, its folder)."""
    from cachetune.evaluate.result import EvaluationReport
    from cachetune.evaluate.run import evaluate
    from cachetune.evaluate.settings import EvaluateSettings

    output = tmp_path_factory.mktemp("report")
    settings = EvaluateSettings(
        model=str(adapter),
        test_data=(conala_prepared / "pairs.test.jsonl",),
        val_data=conala_prepared / "pairs.val.jsonl",
        output=output,
        bootstrap=200,
        speed=True,
        guards=("numbers", "negation"),
        write_cache_config=output / "cache.yaml",
    )
    report = evaluate(settings)
    assert EvaluationReport.read(output / "report.json") == report  # what was returned is what was written
    return report.model_dump(mode="json", exclude_unset=True), output


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """One real Redis 8 with RediSearch for the session; tests keep apart by key prefix."""
    from servers import RedisServer

    server = RedisServer(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def milvus_server(tmp_path_factory):
    """A real Milvus 2.3 server (beside Milvus Lite, which runs in process) for the module that uses it; tests keep
    apart by collection prefix. Not kept for the session: idle, it still takes ~9% of a core on its time tick."""
    from servers import MilvusServer

    server = MilvusServer(tmp_path_factory.mktemp("milvus"), tick_ms=20)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def free_port():
    """A function that returns a loopback port nobody listens on."""
    from servers import free_port

    return free_port


@pytest.fixture(scope="session")
def general_pairs(shared_data, tmp_path_factory) -> tuple[Path, Path]:
    """General-domain labelled pairs through `prepare`: a sample of STS-B dev (graded) and of MRPC train."""
    from cachetune.data.prepare import prepare
    from cachetune.data.settings import PrepareSettings

    folder = tmp_path_factory.mktemp("general")
    files = []
    for source, name in (("stsb", "stsb-sts-dev.tsv"), ("mrpc", "msr_paraphrase_train.txt")):
        settings = PrepareSettings(
            source=source, input=str(shared_data / "general" / name), output=folder / source, max_chars=400, max_queries=150, val=0, test=1
        )
        prepare(settings)
        files.append(folder / source / "pairs.test.jsonl")
    return tuple(files)


HUB_COMMIT = "c9745ed1d9f207416be6d2e6f8de32d1f16199bf"  # a commit id as the Hub names snapshots (any 40 hex digits do)


@pytest.fixture(scope="session")
def hub_cache_folder(tmp_path_factory) -> Path:
    """A Hugging Face cache as sentence-transformers leaves it on a user's machine: the packaged all-MiniLM-L6-v2 laid
    out as the Hub's snapshot of sentence-transformers/all-MiniLM-L6-v2 (blobs by sha256, snapshot files linking to
    them, refs/main naming the commit)."""
    import hashlib

    from cachetune.packaged import minilm

    home = tmp_path_factory.mktemp("hf-home")
    repo = home / "hub" / "models--sentence-transformers--all-MiniLM-L6-v2"
    snapshot = repo / "snapshots" / HUB_COMMIT
    for file in sorted(p for p in minilm().rglob("*") if p.is_file()):
        blob = repo / "blobs" / hashlib.sha256(file.read_bytes()).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(file.read_bytes())
        link = snapshot / file.relative_to(minilm())
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(HUB_COMMIT)
    return home


@pytest.fixture(params=["offline", "no-network"])
def warm_hub_cache(request, hub_cache_folder, monkeypatch, free_port) -> Path:
    """This process with `hub_cache_folder` as its Hugging Face cache, either offline (HF_HUB_OFFLINE=1) or online
    with a Hub that cannot be reached (nothing listens on its address). Returns the model's snapshot folder."""
    import huggingface_hub.constants
    import huggingface_hub.hf_api

    hub = hub_cache_folder / "hub"
    monkeypatch.setenv("HF_HOME", str(hub_cache_folder))
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(hub))
    if request.param == "no-network":
        endpoint = f"http://127.0.0.1:{free_port()}"
        monkeypatch.delenv("HF_HUB_OFFLINE")
        monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
        monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", endpoint)
        monkeypatch.setattr(huggingface_hub.hf_api.api, "endpoint", endpoint)
    return hub / "models--sentence-transformers--all-MiniLM-L6-v2" / "snapshots" / HUB_COMMIT


class Clock:
    """A clock the test moves: `clock.now += 61` is a minute later for the cache."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(scope="session")
def onnx_folder(tmp_path_factory) -> Path:
    """The ONNX export cache of every cache the session builds: in the run's temp folder, never the user's ~/.cache."""
    return tmp_path_factory.mktemp("onnx-cache")


@pytest.fixture(scope="session")
def encoder_pool():
    """Models loaded once for the session and shared by every cache `make_cache` builds."""
    from cachetune.cache.encoders import EncoderPool

    return EncoderPool()


@pytest.fixture
def make_cache(encoder_pool, onnx_folder, clock):
    """A factory of caches from parts: `make_cache({"coding": {...}}, backend_type="redis", redis={...})` gives a
    `SemanticCache` on encoders from the session's pool (no model loaded twice), closed after the test."""
    from cachetune.cache.encoders import DomainEncoders
    from cachetune.cache.semantic_cache import SemanticCache
    from cachetune.cache_config import CacheConfig

    made = []

    def make(domains: dict, **settings):
        config = CacheConfig.model_validate({"domains": domains, "onnx_cache": str(onnx_folder), **settings})
        encoders = DomainEncoders(config, pool=encoder_pool)
        made.append(encoders)
        cache = SemanticCache(config, encoders=encoders, clock=clock)
        made.append(cache)
        return cache

    yield make
    for part in reversed(made):
        part.close()


@pytest.fixture(scope="session")
def serve_app(encoder_pool):
    """`serve_app(config, clock=..., upstream_transport=...)`: a context manager giving an httpx client (FastAPI's
    TestClient) on `create_app` of a cache built from parts in this process; the app's lifespan runs."""
    import time
    from contextlib import contextmanager

    from fastapi.testclient import TestClient

    from cachetune.cache.encoders import DomainEncoders
    from cachetune.cache.semantic_cache import SemanticCache
    from cachetune.cache.service import create_app

    @contextmanager
    def serve(config, clock=time.time, upstream_transport=None):
        with DomainEncoders(config, pool=encoder_pool) as encoders, SemanticCache(config, encoders=encoders, clock=clock) as cache:
            with TestClient(create_app(cache, upstream_transport=upstream_transport)) as client:
                yield client

    return serve


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory):
    """One llama.cpp OpenAI-compatible server (the packaged 0.5B GGUF, model alias `qwen`) for the session."""
    from servers import LlamaServer

    server = LlamaServer(tmp_path_factory.mktemp("llama"))
    yield server
    server.stop()
