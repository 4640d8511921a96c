import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from cachetune.cli import app
from cachetune.errors import ModelError
from cachetune.export.run import _parity, export_model
from cachetune.export.settings import ExportSettings
from cachetune.models import load_model
from cachetune.onnx_encoder import PARITY_TEXTS, OnnxEncoder
from cachetune.records import Query, read_records


@pytest.fixture(scope="module")
def real_queries(conala_prepared):
    return [query.text for query in read_records(conala_prepared / "queries.val.jsonl", Query)][:64]


@pytest.fixture(scope="module")
def onnx_export(adapter, tmp_path_factory) -> tuple[Path, dict]:
    """The adapter exported to fp32 ONNX alone (no merged torch weights, no int8): the export's folder and its info."""
    output = tmp_path_factory.mktemp("onnx-only")
    return output, export_model(ExportSettings(model=str(adapter), output=output, merge=False, onnx=True, int8=False))


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return np.einsum("ij,ij->i", a, b)


def test_merged_and_onnx_exports_match_the_adapter(adapter, real_queries, tmp_path):
    from sentence_transformers import SentenceTransformer

    result = CliRunner().invoke(app, ["export", "--model", str(adapter), "--output", str(tmp_path / "ex"), "--merge", "--onnx", "--int8"])
    assert result.exit_code == 0, result.output
    info = json.loads((tmp_path / "ex" / "cachetune_export.json").read_text())
    assert sorted(info["files"]) == ["model.safetensors", "onnx/model.onnx", "onnx/model_int8.onnx"]
    assert info["parity"]["fp32"]["min_cosine"] >= 0.99 and info["parity"]["int8"]["mean_cosine"] >= 0.99

    reference = load_model(str(adapter)).encode(real_queries)
    merged = SentenceTransformer(str(tmp_path / "ex"))
    assert merged.max_seq_length == 64
    assert cosines(merged.encode(real_queries), reference).min() > 0.9999
    fp32 = OnnxEncoder.from_file(tmp_path / "ex" / "onnx" / "model.onnx").encode(real_queries)
    assert cosines(fp32, reference).min() > 0.999
    int8 = OnnxEncoder.from_file(tmp_path / "ex" / "onnx" / "model_int8.onnx").encode(real_queries)
    assert cosines(int8, reference).mean() > 0.99
    assert (tmp_path / "ex" / "onnx" / "model_int8.onnx").stat().st_size < 0.7 * (tmp_path / "ex" / "onnx" / "model.onnx").stat().st_size


def test_evaluate_accepts_an_onnx_export(adapter, onnx_export, conala_prepared, tmp_path):
    from cachetune.evaluate.run import EvaluateSettings, evaluate

    folder, _ = onnx_export
    test = conala_prepared / "pairs.test.jsonl"
    common = {"test_data": (test,), "baseline": str(adapter), "bootstrap": 0, "speed": False}
    report = evaluate(EvaluateSettings(model=str(folder), output=tmp_path / "report", **common))
    section = report.pairs[0]
    assert section.tuned.ap == pytest.approx(section.baseline.ap, abs=1e-3)
    assert report.models["tuned"].model_bytes == (folder / "onnx" / "model.onnx").stat().st_size


def test_onnx_alone_needs_no_torch_weights(onnx_export):
    folder, info = onnx_export
    assert info["files"] == ["onnx/model.onnx"]
    assert not (folder / "model.safetensors").exists()
    assert OnnxEncoder.from_file(folder / "onnx" / "model.onnx").encode(["reverse a list"]).shape == (1, 384)


def test_parity_check_refuses_a_graph_that_disagrees_with_torch(adapter, onnx_export):
    folder, _ = onnx_export
    reference = load_model(str(adapter)).encode(PARITY_TEXTS, normalize_embeddings=True)
    onnx_file = folder / "onnx" / "model.onnx"
    assert _parity(onnx_file, folder, 64, reference, strict=True)["min_cosine"] > 0.999
    with pytest.raises(ModelError, match="below 0.99; not written"):
        _parity(onnx_file, folder, 64, np.roll(reference, 1, axis=0), strict=True)


def test_export_needs_something_to_write(adapter, tmp_path):
    result = CliRunner().invoke(app, ["export", "--model", str(adapter), "--output", str(tmp_path)])
    assert result.exit_code == 1 and "nothing to export: pass --merge, --onnx and/or --int8" in result.output
