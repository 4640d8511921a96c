"""Encoding with an ONNX graph written by `cachetune export`: no torch at run time.

An export folder holds `cachetune_export.json` (what was exported, its max_seq_length and parity), the
tokenizer, and `onnx/model.onnx` (fp32) and/or `onnx/model_int8.onnx`. The graph takes token ids and gives
the normalised sentence embedding, so `OnnxEncoder.encode` answers like `SentenceTransformer.encode`.
"""

import json
from pathlib import Path

import numpy as np

from cachetune.errors import ModelError

EXPORT_INFO = "cachetune_export.json"
ONNX_DIR = "onnx"
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")


def onnx_export_info(onnx_file: Path) -> dict:
    """The export record of the folder an ONNX file was written into (EXPORT/onnx/model*.onnx).

    Raises:
        ModelError: the file is not inside a `cachetune export` folder.
    """
    folder = Path(onnx_file).resolve().parent.parent
    info = folder / EXPORT_INFO
    if not info.is_file():
        raise ModelError(f"{onnx_file}: not inside a `cachetune export` folder (no {EXPORT_INFO} in {folder})")
    return {**json.loads(info.read_text()), "folder": str(folder)}


class OnnxEncoder:
    """Encodes with an exported ONNX graph and the tokenizer saved beside it.

    `encode(texts)` returns L2-normalised sentence embeddings as a float32 numpy array, like a
    SentenceTransformer's `encode(..., normalize_embeddings=True)`.
    """

    def __init__(self, onnx_file: Path, tokenizer_folder: Path, max_seq_length: int) -> None:
        import onnxruntime
        from transformers import AutoTokenizer

        self.path = Path(onnx_file)
        self.session = onnxruntime.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
        self.tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_folder))
        self.max_seq_length = max_seq_length

    @classmethod
    def from_file(cls, onnx_file: Path) -> "OnnxEncoder":
        """An ONNX file written by `cachetune export` (EXPORT/onnx/model*.onnx)."""
        info = onnx_export_info(onnx_file)
        return cls(onnx_file, Path(info["folder"]), info["max_seq_length"])

    def get_embedding_dimension(self) -> int:
        return int(self.session.get_outputs()[0].shape[-1])

    def encode(self, texts: list[str], batch_size: int = 32, **_) -> np.ndarray:
        batches = []
        for start in range(0, len(texts), batch_size):
            tokens = self.tokenizer(
                list(texts[start : start + batch_size]), padding=True, truncation=True, max_length=self.max_seq_length, return_tensors="np"
            )
            feed = {name: tokens[name].astype(np.int64) for name in INPUT_NAMES}
            batches.append(self.session.run(None, feed)[0])
        vectors = np.concatenate(batches) if batches else np.zeros((0, 0), dtype=np.float32)
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
