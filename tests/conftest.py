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
def redis_server(tmp_path_factory):
    """One real Redis 8 with RediSearch for the session; tests keep apart by key prefix."""
    from servers import RedisServer

    server = RedisServer(tmp_path_factory.mktemp("redis"))
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
