"""`cachetune export`: a merged model, an ONNX graph that matches it, and a per-channel int8 ONNX.

ONNX goes through the dynamo exporter (`torch.onnx.export(..., dynamo=True)`): the TorchScript exporter
gives wrong vectors for this model without any error. Every ONNX file is compared with torch on
`PARITY_TEXTS` and refused (not written) when the mean cosine to torch is below 0.99, or for fp32 when
any text falls below it. int8 is dynamic quantization of the weight MatMuls only, per output channel:
quantizing everything (onnxruntime's default op set) loses far more.
"""

import shutil
import tempfile
from pathlib import Path

import numpy as np

from cachetune.errors import ModelError
from cachetune.export.settings import ExportSettings
from cachetune.models import ModelSpec, load_model
from cachetune.onnx_encoder import EXPORT_INFO, INPUT_NAMES, ONNX_DIR, PARITY_TEXTS, OnnxEncoder, parity
from cachetune.records import write_json


def export_model(settings: ExportSettings, spec: ModelSpec | None = None) -> dict:
    """Write the requested artifacts into `settings.output`.

    Args:
        settings: what to export, and where.
        spec: `settings.model` resolved already (default: resolved here).

    Returns:
        What was written (`files`) and the cosine to torch of each ONNX graph (`parity`), as in cachetune_export.json.

    Raises:
        ModelError: the model cannot be loaded, or an ONNX graph fails its parity check (nothing of it is written).
    """
    model = load_model(spec or settings.model, merge=True)
    output = Path(settings.output)
    output.mkdir(parents=True, exist_ok=True)
    merge, onnx, int8 = settings.merge, settings.onnx, settings.int8
    info: dict = {"model": settings.model, "max_seq_length": model.max_seq_length, "files": [], "parity": {}}
    if merge:
        model.save(str(output))
        info["files"].append("model.safetensors")
    else:
        model.tokenizer.save_pretrained(str(output))
    if onnx or int8:
        reference = model.encode(PARITY_TEXTS, normalize_embeddings=True, convert_to_numpy=True)
        info["reference"] = reference.round(6).tolist()  # what the graphs are checked against when loaded again
        with tempfile.TemporaryDirectory() as scratch:
            fp32 = _export_onnx(model, Path(scratch))
            info["parity"]["fp32"] = _parity(fp32, output, model.max_seq_length, reference, strict=True)
            if int8:
                quantized = _quantize(fp32)
                info["parity"]["int8"] = _parity(quantized, output, model.max_seq_length, reference, strict=False)
                info["files"].append(_keep(quantized, output, "model_int8.onnx"))
            if onnx:
                info["files"].append(_keep(fp32, output, "model.onnx"))
    write_json(output / EXPORT_INFO, info)
    return info


def _export_onnx(model, folder: Path) -> Path:
    """Export tokens -> normalised sentence embedding as one graph, batch and length dynamic."""
    import onnx
    import torch

    class SentenceEncoder(torch.nn.Module):
        def __init__(self, sentence_transformer) -> None:
            super().__init__()
            self.sentence_transformer = sentence_transformer

        def forward(self, input_ids, attention_mask, token_type_ids):
            features = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}
            return self.sentence_transformer(features)["sentence_embedding"]

    tokens = model.tokenizer(PARITY_TEXTS[:4], padding=True, return_tensors="pt")
    batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence")
    exported = folder / "exported.onnx"
    with torch.no_grad():
        torch.onnx.export(
            SentenceEncoder(model.cpu()).eval(),
            tuple(tokens[name] for name in INPUT_NAMES),
            str(exported),
            dynamo=True,
            input_names=list(INPUT_NAMES),
            output_names=["sentence_embedding"],
            dynamic_shapes={name: {0: batch, 1: sequence} for name in INPUT_NAMES},
            verbose=False,
        )
    single = folder / "model.onnx"  # weights inside the file: one file to ship
    onnx.save(onnx.load(str(exported)), str(single))
    return single


def _quantize(fp32: Path) -> Path:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantized = fp32.with_name("model_int8.onnx")
    quantize_dynamic(str(fp32), str(quantized), per_channel=True, op_types_to_quantize=["MatMul"], weight_type=QuantType.QInt8)
    return quantized


def _parity(onnx_file: Path, tokenizer_folder: Path, max_seq_length: int, reference: np.ndarray, strict: bool) -> dict:
    try:
        return parity(OnnxEncoder(onnx_file, tokenizer_folder, max_seq_length), reference, strict)
    except ModelError as error:
        raise ModelError(f"{error}; not written") from None


def _keep(source: Path, output: Path, name: str) -> str:
    target = output / ONNX_DIR / name
    target.parent.mkdir(exist_ok=True)
    shutil.move(str(source), str(target))
    return f"{ONNX_DIR}/{name}"
