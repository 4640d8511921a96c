"""`DomainEmbedder`: a domain's embeddings and threshold as a cachetune cache has them, for another library's cache.

    embedder = DomainEmbedder.from_config("cache.yaml", "coding")
    vector = embedder.embed("How do I reverse a list in Python?")  # L2-normalised, as `SemanticCache.embed`
    embedder.similarity_threshold                                  # a hit when the cosine reaches it

The vectors come from the same `DomainEncoders` the cache service runs (model, adapter, torch or ONNX, exact tier),
so another library storing them decides on the very numbers cachetune's `check()` would.
"""

from pathlib import Path

import numpy as np
from pydantic import ValidationError

from cachetune.cache.encoders import DomainEncoders
from cachetune.cache_config import CacheConfig, load_config
from cachetune.errors import InputError, UnknownDomainError
from cachetune.evaluate.result import EvaluationReport
from cachetune.inputs import first_error


def threshold_of(path: str | Path, domain: str) -> float:
    """The similarity threshold to serve `domain` at, read from a cache config or an evaluation report.

    Args:
        path: a cache config (YAML: the domain's `similarity_threshold`) or `cachetune evaluate`'s report.json (the
            tuned model's operating threshold: the one meeting the target precision on validation, else best F0.5).
        domain: the domain's name in the cache config (unused for a report, which is about one model).

    Returns:
        A cosine similarity: a stored prompt is a hit when its cosine with the new prompt is at least this.

    Raises:
        InputError: the file is missing or unreadable, the domain is not in it, or the report chose no threshold.
    """
    path = Path(path)
    if path.suffix != ".json":
        config = load_config(path)
        if domain not in config.domains:
            raise InputError(f"{path}: semantic_cache.domains: no domain {domain!r}; configured: {', '.join(config.domains)}")
        return config.domains[domain].similarity_threshold
    try:
        report = EvaluationReport.read(path)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except ValidationError as error:
        raise InputError(f"{path}: not an evaluation report: {first_error(error)}") from None
    points = report.operating_thresholds.get("tuned")
    if points is None:
        raise InputError(f"{path}: operating_thresholds.tuned: none chosen (evaluate was run without --val-data)")
    return points.threshold


class DomainEmbedder:
    """One domain's encoder and similarity threshold.

    Args:
        config: a cache config; only `domain`'s model is loaded.
        domain: the domain to embed for.
        similarity_threshold: overrides the domain's `similarity_threshold` (e.g. from `threshold_of(report)`).
        encoders: the cache's encoders, to share them (default: this domain's own, built from `config`).

    Raises:
        UnknownDomainError: `domain` is not in the config.
        ModelError: its model cannot be loaded.
    """

    def __init__(
        self, config: CacheConfig, domain: str, similarity_threshold: float | None = None, *, encoders: DomainEncoders | None = None
    ) -> None:
        if domain not in config.domains:
            raise UnknownDomainError(domain, config.domains)
        self.domain = domain
        self.similarity_threshold = config.domains[domain].similarity_threshold if similarity_threshold is None else similarity_threshold
        self._owned = encoders is None
        self._encoders = encoders or DomainEncoders(config.model_copy(update={"domains": {domain: config.domains[domain]}}))
        self.dim = self._encoders.dim

    @classmethod
    def from_config(cls, path: str | Path, domain: str, threshold_from: str | Path | None = None) -> "DomainEmbedder":
        """The embedder of `domain` in the cache config at `path`; its threshold from `threshold_from` if given.

        Raises:
            InputError: either file is missing or wrong (the message names it).
            UnknownDomainError, ModelError: as the constructor.
        """
        threshold = threshold_of(threshold_from, domain) if threshold_from is not None else None
        return cls(load_config(Path(path)), domain, threshold)

    def embed(self, text: str) -> list[float]:
        return self._encoders.encode(self.domain, text).tolist()

    def embed_many(self, texts: list[str]) -> list[list[float]]:
        return [vector.tolist() for vector in self._encoders.encode_many(self.domain, list(texts))]

    def embed_array(self, texts: list[str]) -> np.ndarray:
        """`embed_many` as one float32 array (n, dim)."""
        return np.stack(self._encoders.encode_many(self.domain, list(texts))).astype(np.float32)

    def close(self) -> None:
        """Stop the encoders this embedder built (those given to it are their owner's to close)."""
        if self._owned:
            self._encoders.close()

    def __enter__(self) -> "DomainEmbedder":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
