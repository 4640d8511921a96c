import json
from pathlib import Path

import numpy as np
import pytest

from cachetune.errors import ModelError
from cachetune.models import (
    DEFAULT_BASE_MODEL,
    SHIPPED_ADAPTERS,
    load_model,
    resolve_base_model,
    resolve_model,
    shipped_adapters,
)
from cachetune.packaged import minilm as packaged_minilm


def test_default_is_the_packaged_minilm():
    resolved = resolve_base_model(None)
    assert resolved.name == DEFAULT_BASE_MODEL
    assert (packaged_minilm() / "modules.json").is_file()
    assert resolved.location == str(packaged_minilm())


def test_minilm_hub_id_falls_back_to_the_packaged_copy_offline():
    assert resolve_base_model(DEFAULT_BASE_MODEL).location == str(packaged_minilm())


def test_other_unreachable_hub_id_fails_clearly():
    with pytest.raises(ModelError, match="acme/embedder: not a local folder.*Hub cannot be reached"):
        resolve_base_model("acme/embedder")


def test_local_folder_must_be_a_model(tmp_path):
    assert resolve_base_model(str(packaged_minilm())).location == str(packaged_minilm())
    with pytest.raises(ModelError, match="not a model folder"):
        resolve_base_model(str(tmp_path))
    with pytest.raises(ModelError, match="no such folder"):
        resolve_base_model(str(tmp_path / "missing"))


@pytest.mark.parametrize("name", ["programming", "medical"])
def test_shipped_adapter_loads_by_name_on_the_packaged_base(name):
    assert name in shipped_adapters()
    spec = resolve_model(name)
    folder = Path(spec.location)
    assert spec.kind == "adapter" and folder.parent == SHIPPED_ADAPTERS
    # Portable: the base is recorded by hub id, never as a path on the machine that trained it.
    assert spec.base.name == DEFAULT_BASE_MODEL and spec.base.location == str(packaged_minilm())
    assert spec.max_seq_length == json.loads((folder / "training_info.json").read_text())["hyperparameters"]["max_seq_length"]
    info = json.loads((folder / "training_info.json").read_text())
    assert info["command"][:2] == ["cachetune", "pipeline"] and f"configs/{name}.yaml" in info["command"][-1]
    assert (folder / "adapter_model.safetensors").stat().st_size < 4_000_000  # LoRA r16 on every linear layer: 2.7 MB
    prompts = ["How do I reverse a list in Python?", "How do I reverse a string in Python?"]
    tuned, base = load_model(name).encode(prompts), load_model(None).encode(prompts)
    assert not np.allclose(tuned, base, atol=1e-3)


def test_a_local_folder_wins_over_a_shipped_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "medical").mkdir()
    with pytest.raises(ModelError, match="medical: not a model folder"):
        resolve_model("medical")  # the empty local folder, not the shipped adapter
    with pytest.raises(ModelError, match="no-such-adapter: not a local folder"):
        resolve_model("no-such-adapter")
