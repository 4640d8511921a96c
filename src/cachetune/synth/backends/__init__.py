"""Where an LLM runs: in process (llama.cpp), behind an OpenAI-compatible server, or in vLLM on GPUs."""

from cachetune.errors import InputError
from cachetune.synth.backends.base import Backend
from cachetune.synth.settings import LlmSettings


def make_backend(settings: LlmSettings, prompt_tokens: int) -> Backend:
    """The backend `settings` name, with its model found and checked before any request is sent.

    Args:
        prompt_tokens: the longest prompt expected (llama-cpp sizes each sequence's cache for it plus max_tokens).

    Raises:
        InputError: an openai or vllm backend without the settings it needs.
        ModelError: the GGUF model cannot be found.
    """
    if settings.backend == "llama-cpp":
        from cachetune.synth.backends.llama_cpp import LlamaCppBackend
        from cachetune.synth.gguf import resolve_gguf

        return LlamaCppBackend(
            resolve_gguf(settings.model),
            parallel=settings.batch_size,
            sequence_length=prompt_tokens + settings.max_tokens,
            threads=settings.threads,
        )
    if settings.backend == "openai":
        from cachetune.synth.backends.openai import OpenAIBackend

        if not settings.base_url or not settings.model:
            raise InputError("--backend openai needs --base-url and --model")
        return OpenAIBackend(
            settings.base_url, settings.model, settings.api_key_env, settings.concurrency, settings.timeout, settings.retries
        )
    from cachetune.synth.backends.vllm import VllmBackend

    if not settings.model:
        raise InputError("--backend vllm needs --model (a hub id or a local folder)")
    return VllmBackend(settings.model, settings.tensor_parallel, settings.seed)
