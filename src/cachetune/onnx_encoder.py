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
MIN_COSINE = 0.99

# Short and long, programming, medical and general prompts: what a cache sees.
PARITY_TEXTS = [
    "ok",
    "reverse a list",
    "How do I reverse a string in Python?",
    "How do I reverse a list in Python without creating a copy?",
    "python sort dictionary by value descending",
    "Convert a list of strings to a list of integers",
    "What is the difference between a process and a thread?",
    "SQL query to find duplicate rows in a table with three key columns",
    "How do I enable JavaScript in Chrome?",
    "How do I disable JavaScript in Chrome?",
    "What are the symptoms of type 1 diabetes?",
    "What are the symptoms of type 2 diabetes?",
    "Can I drink alcohol while taking azithromycin for a sinus infection?",
    "My blood pressure goes up at night while I sleep even though I take four medicines, why does that happen?",
    "What causes low blood pressure after standing up quickly?",
    "Is it safe to take ibuprofen and paracetamol together for a fever in a child of six?",
    "The weather is nice today and we are going for a walk in the park.",
    "A man is playing a guitar on a stage in front of a small crowd.",
]


def parity(encoder: "OnnxEncoder", reference: np.ndarray, strict: bool) -> dict:
    """Cosine of the graph's vectors of PARITY_TEXTS to the torch model's (`reference`).

    Raises:
        ModelError: the mean is below MIN_COSINE, or with `strict` (fp32) any text is.
    """
    cosines = np.einsum("ij,ij->i", encoder.encode(PARITY_TEXTS), np.asarray(reference, dtype=np.float32))
    result = {"texts": len(PARITY_TEXTS), "mean_cosine": float(cosines.mean()), "min_cosine": float(cosines.min())}
    if result["mean_cosine"] < MIN_COSINE or (strict and result["min_cosine"] < MIN_COSINE):
        raise ModelError(
            f"{encoder.path.name}: cosine to torch mean {result['mean_cosine']:.4f}, min {result['min_cosine']:.4f}, below {MIN_COSINE}"
        )
    return result


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
    def from_file(cls, onnx_file: Path, check: bool = False) -> "OnnxEncoder":
        """An ONNX file written by `cachetune export` (EXPORT/onnx/model*.onnx).

        Args:
            check: compare the graph's vectors with the torch vectors the export recorded, before any use.

        Raises:
            ModelError: not an export folder, or (with `check`) a graph that does not match its torch model.
        """
        info = onnx_export_info(onnx_file)
        encoder = cls(onnx_file, Path(info["folder"]), info["max_seq_length"])
        if check:
            if "reference" not in info:
                raise ModelError(f"{onnx_file}: its export recorded no torch reference vectors; export it again")
            parity(encoder, np.array(info["reference"]), strict=not Path(onnx_file).stem.endswith("int8"))
        return encoder

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
