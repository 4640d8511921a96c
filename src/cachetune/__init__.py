"""cachetune: domain-tuned embedding models for LLM semantic caches.

The public API, one import away (loaded on first use, so `import cachetune` stays light):

    from cachetune import SemanticCache, Hit, load_model, load_encoder, resolve_model, run_pipeline
    from cachetune import PrepareSettings, GenerateSettings, MineSettings, TrainSettings, ExportSettings, EvaluateSettings
    from cachetune import CachetuneError, InputError, ModelError, BackendError, CacheError

Each stage runs as `function(settings)`: cachetune.data.prepare.prepare, cachetune.synth.generate.generate,
cachetune.synth.mine.mine, cachetune.train.trainer.train, cachetune.export.run.export_model,
cachetune.evaluate.run.evaluate.
"""

from importlib import import_module

from cachetune.errors import BackendError, CacheError, CachetuneError, InputError, ModelError, StoreError, UnknownDomainError

__version__ = "0.1.0"

_LAZY = {
    "SemanticCache": "cachetune.cache.semantic_cache",
    "Hit": "cachetune.cache.semantic_cache",
    "load_model": "cachetune.models",
    "load_encoder": "cachetune.models",
    "resolve_model": "cachetune.models",
    "ModelSpec": "cachetune.models",
    "PrepareSettings": "cachetune.data.settings",
    "GenerateSettings": "cachetune.synth.settings",
    "MineSettings": "cachetune.synth.settings",
    "TrainSettings": "cachetune.train.settings",
    "ExportSettings": "cachetune.export.settings",
    "EvaluateSettings": "cachetune.evaluate.settings",
    "run_pipeline": "cachetune.pipeline",
}

__all__ = [
    "BackendError", "CacheError", "CachetuneError", "InputError", "ModelError", "StoreError", "UnknownDomainError", *_LAZY,
]  # fmt: skip


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'cachetune' has no attribute {name!r}")
