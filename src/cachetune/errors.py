"""cachetune's errors: one base class, and one subclass per kind of thing that went wrong.

Every error a user can act on is a `CachetuneError` whose message says what is wrong and where (a file and
line, a flag, a config field, a model, a server). The CLI catches the base class once and prints the message;
anything else is a bug and keeps its traceback.
"""


class CachetuneError(Exception):
    """A problem the user can fix; the message says what and where."""


class InputError(CachetuneError, ValueError):
    """Bad input: a data file (``FILE:LINE: ...``), a flag, a setting or a config file (``FILE: field: ...``)."""


class ModelError(CachetuneError, ValueError):
    """A model that cannot be found or used: a missing folder, an unreachable hub id, a failed parity check."""


class BackendError(CachetuneError, RuntimeError):
    """An LLM backend that failed after its retries: a server down, repeated errors, a model failure."""


class CacheError(CachetuneError, ValueError):
    """A request the cache cannot serve as asked: an empty prompt, a bad TTL."""


class UnknownDomainError(CacheError):
    """A domain that the cache configuration does not have."""

    def __init__(self, domain: str, configured) -> None:
        super().__init__(f"unknown domain '{domain}'; configured: {', '.join(configured)}")
        self.domain = domain


class StoreError(CacheError, RuntimeError):
    """The store (Milvus, Redis) failed or cannot be reached; nothing was silently dropped."""
