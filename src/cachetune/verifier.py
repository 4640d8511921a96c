"""A trained verifier: the probability that a stored prompt's answer serves a new prompt.

`cachetune train-verifier` writes a folder:

    verifier.json        what it reads (`features`), the logistic model over them (fitted on validation pairs, so
                         that its output is a calibrated probability: Platt scaling, with the features as inputs),
                         the thresholds chosen on validation, the embedding model whose cosine it reads, how it was
                         trained
    cross_encoder/       optional: a sentence-transformers CrossEncoder as a LoRA adapter (and its classifier) on
                         the base model; its logit is the feature `cross_encoder`

Features, by name: `cosine` (the similarity the cache's embedding model gave the pair: passed in, never recomputed),
`cross_encoder` (the logit), `guard:NAME` (1 when that guard of `cachetune.facts` finds a disagreement), `overlap`
(Jaccard of the two prompts' content words) and `length_ratio` (shorter over longer, in words).

`load_verifier(spec)` takes a folder or a shipped verifier's name (`programming-verifier`); its cross-encoder runs
on torch, or (`encoder: onnx`, the cache's default) as an ONNX graph exported once into the ONNX cache and checked
against the torch logits before it is used.
"""

import hashlib
import json
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from cachetune.errors import ModelError
from cachetune.facts import GUARDS, disagreements, facts_of
from cachetune.models import VERIFIER_FILE, files_sha256, resolve_base_model, resolve_verifier, weight_files
from cachetune.records import write_json

CROSS_ENCODER_DIR = "cross_encoder"
FEATURES = ("cosine", "cross_encoder", *(f"guard:{name}" for name in GUARDS), "overlap", "length_ratio")
# Pairs the ONNX graph's logits are compared with torch's on, before it serves: short, long, alike and not.
PARITY_PAIRS = [
    ("How do I reverse a list in Python?", "What's the way to reverse a Python list?"),
    ("How do I enable JavaScript in Chrome?", "How do I disable JavaScript in Chrome?"),
    ("What are the symptoms of type 1 diabetes?", "What are the symptoms of type 2 diabetes?"),
    ("ok", "cancel it"),
    ("Cancel my subscription", "Don't cancel my subscription"),
    ("Is it safe to take ibuprofen and paracetamol together for a fever in a child of six?", "ibuprofen with paracetamol for kids"),
    ("Flights to Paris on the 3rd", "Flights to Paris on the 5th"),
    ("SQL query to find duplicate rows in a table with three key columns", "select duplicate rows sql"),
]
MAX_LOGIT_DIFFERENCE = 0.05


@dataclass(frozen=True)
class VerifierCard:
    """verifier.json: everything a verifier is, but the cross-encoder's weights."""

    features: list[str]
    coefficients: list[float]
    intercept: float
    threshold: float  # the probability a candidate needs: chosen on validation (see `threshold_basis`)
    threshold_basis: str  # "precision>=P on validation (lower bound B)" or "best F0.5 on validation"
    candidate_threshold: float  # the cosine a candidate needs to be looked at, chosen on validation
    embedding_model: str  # the model whose cosine `cosine` is: the cache domain's embedding_model_path
    base_model: str | None = None  # the cross-encoder's base (None: no cross-encoder)
    max_seq_length: int = 128
    training: dict = field(default_factory=dict)
    version: int = 1

    @property
    def has_cross_encoder(self) -> bool:
        return "cross_encoder" in self.features


def pair_features(
    names: list[str], prompts: list[str], candidates: list[str], similarities: np.ndarray, logits: np.ndarray | None
) -> np.ndarray:
    """One row per pair, one column per feature name (see the module's docstring)."""
    columns = []
    for name in names:
        if name == "cosine":
            columns.append(np.asarray(similarities, dtype=np.float64))
        elif name == "cross_encoder":
            columns.append(np.asarray(logits, dtype=np.float64))
        elif name.startswith("guard:"):
            guard = (name.split(":", 1)[1],)
            columns.append(np.array([float(bool(disagreements(a, b, guard))) for a, b in zip(prompts, candidates)]))
        elif name == "overlap":
            columns.append(np.array([_jaccard(facts_of(a).content, facts_of(b).content) for a, b in zip(prompts, candidates)]))
        elif name == "length_ratio":
            columns.append(np.array([_length_ratio(a, b) for a, b in zip(prompts, candidates)]))
        else:
            raise ModelError(f"unknown verifier feature '{name}'; known: {', '.join(FEATURES)}")
    return np.column_stack(columns) if columns else np.zeros((len(prompts), 0))


def _jaccard(a: frozenset, b: frozenset) -> float:
    return len(a & b) / len(a | b) if a | b else 1.0


def _length_ratio(a: str, b: str) -> float:
    lengths = sorted((len(a.split()), len(b.split())))
    return lengths[0] / lengths[1] if lengths[1] else 1.0


def sigmoid(values: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(values, -40, 40)))


class Verifier:
    """P(the candidate's answer serves the prompt), from a verifier folder (see the module's docstring).

    Args:
        card: its verifier.json.
        score_pairs: the cross-encoder's logits of (prompt, candidate) pairs; None when it has none.
        location: where it was loaded from (for messages).
    """

    def __init__(self, card: VerifierCard, score_pairs=None, location: str = "") -> None:
        self.card = card
        self.location = location
        self._score_pairs = score_pairs
        self._weights = np.asarray(card.coefficients, dtype=np.float64)
        if card.has_cross_encoder and score_pairs is None:
            raise ModelError(f"{location}: the verifier reads a cross-encoder and none was loaded")

    @property
    def threshold(self) -> float:
        return self.card.threshold

    @property
    def candidate_threshold(self) -> float:
        return self.card.candidate_threshold

    def logits(self, prompts: list[str], candidates: list[str]) -> np.ndarray | None:
        return np.asarray(self._score_pairs(list(zip(prompts, candidates))), dtype=np.float64) if self._score_pairs else None

    def probabilities(self, prompts: list[str], candidates: list[str], similarities: np.ndarray) -> np.ndarray:
        """One probability per (prompt, candidate) pair; `similarities` are the cache's cosines of the pairs."""
        if not prompts:
            return np.zeros(0)
        features = pair_features(self.card.features, prompts, candidates, similarities, self.logits(prompts, candidates))
        return sigmoid(features @ self._weights + self.card.intercept)


def write_card(folder: Path, card: VerifierCard) -> None:
    write_json(Path(folder) / VERIFIER_FILE, asdict(card))


def read_card(folder: Path) -> VerifierCard:
    path = Path(folder) / VERIFIER_FILE
    try:
        data = json.loads(path.read_text())
        card = VerifierCard(**data)
    except FileNotFoundError:
        raise ModelError(f"{folder}: not a verifier folder (no {VERIFIER_FILE})") from None
    except (ValueError, TypeError) as error:
        raise ModelError(f"{path}: not a verifier card: {error}") from None
    if card.version != 1:
        raise ModelError(f"{path}: verifier version {card.version}, this cachetune reads version 1")
    unknown = [name for name in card.features if name not in FEATURES]
    if unknown or len(card.coefficients) != len(card.features):
        raise ModelError(
            f"{path}: features {card.features} do not match {len(card.coefficients)} coefficients (known: {', '.join(FEATURES)})"
        )
    return card


def load_cross_encoder(folder: Path, card: VerifierCard, merge: bool = True):
    """The verifier's CrossEncoder on torch: its base with the LoRA adapter (merged unless `merge` is False)."""
    from sentence_transformers.cross_encoder import CrossEncoder

    base = resolve_base_model(card.base_model)
    model = CrossEncoder(base.location, num_labels=1, max_length=card.max_seq_length)
    model.load_adapter(str(Path(folder) / CROSS_ENCODER_DIR))
    if merge:
        model.transformers_model.merge_adapter()
    return model


def torch_scorer(model):
    import torch

    identity = torch.nn.Identity()
    return lambda pairs: model.predict(pairs, activation_fn=identity, batch_size=max(len(pairs), 1), convert_to_numpy=True)


def load_verifier(spec: str | Path, encoder: str = "torch", onnx_cache: str = "~/.cache/cachetune/onnx") -> Verifier:
    """A verifier from a folder or a shipped verifier's name.

    Args:
        encoder: `torch`, or `onnx` / `onnx-int8` to run its cross-encoder as an ONNX graph (fp32 either way:
            a verifier's logit moves its threshold, so it is not quantised).
        onnx_cache: where the graph is exported the first time and reused while the verifier's files are unchanged.

    Raises:
        ModelError: no such verifier, a card that cannot be read, or an ONNX graph whose logits differ from torch's.
    """
    folder = resolve_verifier(spec)
    card = read_card(folder)
    if not card.has_cross_encoder:
        return Verifier(card, None, str(folder))
    if encoder == "torch":
        return Verifier(card, torch_scorer(load_cross_encoder(folder, card)), str(folder))
    return Verifier(card, onnx_scorer(folder, card, Path(onnx_cache).expanduser()), str(folder))


def onnx_scorer(folder: Path, card: VerifierCard, cache: Path):
    """The cross-encoder as an ONNX graph in `cache/<hash of the verifier's files>`, exported there when missing and
    checked against the torch logits recorded at export."""
    import onnxruntime
    from transformers import AutoTokenizer

    files = weight_files(Path(folder) / CROSS_ENCODER_DIR) + [Path(folder) / VERIFIER_FILE]
    target = cache / ("verifier-" + hashlib.sha256(files_sha256(files).encode()).hexdigest()[:32])
    if not (target / "model.onnx").is_file():
        export_cross_encoder(folder, card, target)
    session = onnxruntime.InferenceSession(str(target / "model.onnx"), providers=["CPUExecutionProvider"])
    tokenizer = AutoTokenizer.from_pretrained(str(target))

    def score(pairs: list[tuple[str, str]]) -> np.ndarray:
        first, second = zip(*pairs)
        tokens = tokenizer(list(first), list(second), padding=True, truncation=True, max_length=card.max_seq_length, return_tensors="np")
        feed = {name: tokens[name].astype(np.int64) for name in ("input_ids", "attention_mask", "token_type_ids")}
        return session.run(None, feed)[0].reshape(-1)

    reference = np.array(json.loads((target / "reference.json").read_text()))
    difference = float(np.abs(score(PARITY_PAIRS) - reference).max())
    if difference > MAX_LOGIT_DIFFERENCE:
        raise ModelError(f"{target}: the ONNX verifier's logits differ from torch's by {difference:.4f} (> {MAX_LOGIT_DIFFERENCE})")
    return score


def export_cross_encoder(folder: Path, card: VerifierCard, target: Path) -> None:
    """The merged cross-encoder as one ONNX graph (tokens -> logit) with its tokenizer and torch's logits of PARITY_PAIRS."""
    import onnx
    import torch

    model = load_cross_encoder(folder, card)
    network = (
        model.transformers_model.merge_and_unload() if hasattr(model.transformers_model, "merge_and_unload") else model.transformers_model
    )
    network = network.cpu().eval()
    reference = torch_scorer(model)(PARITY_PAIRS)

    class Logit(torch.nn.Module):
        def __init__(self, inner) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.inner(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).logits

    first, second = zip(*PARITY_PAIRS[:4])
    tokens = model.tokenizer(list(first), list(second), padding=True, return_tensors="pt")
    names = ("input_ids", "attention_mask", "token_type_ids")
    batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        exported = Path(scratch) / "exported.onnx"
        with torch.no_grad():
            torch.onnx.export(
                Logit(network), tuple(tokens[name] for name in names), str(exported), dynamo=True, input_names=list(names),
                output_names=["logit"], dynamic_shapes={name: {0: batch, 1: sequence} for name in names}, verbose=False,
            )  # fmt: skip
        built = Path(scratch) / "built"
        built.mkdir()
        onnx.save(onnx.load(str(exported)), str(built / "model.onnx"))
        model.tokenizer.save_pretrained(str(built))
        (built / "reference.json").write_text(json.dumps(np.asarray(reference).round(6).tolist()))
        shutil.rmtree(target, ignore_errors=True)
        built.rename(target)
