"""cachetune: domain-tuned embedding models for LLM semantic caches."""

__version__ = "0.1.0"
