import pytest

from cachetune.models import DEFAULT_BASE_MODEL, ModelError, packaged_minilm, resolve_base_model


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
