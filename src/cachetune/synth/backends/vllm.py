"""Offline vLLM (`vllm.LLM`), for GPUs: batches, tensor parallelism, JSON-schema decoding.

A thin adapter over the shared prompt and parse code. vLLM does not run on this project's CPU-only
machines, so tests check the engine and sampling arguments it builds, not a generation.
"""

from cachetune.synth.backends.base import Completion, Request

TOP_P = 0.9


def engine_arguments(model: str, tensor_parallel: int, seed: int) -> dict:
    """Keyword arguments for `vllm.LLM`. Prefix caching: every prompt of a domain shares its few-shot turns."""
    return {"model": model, "tensor_parallel_size": tensor_parallel, "seed": seed, "enable_prefix_caching": True}


def sampling_arguments(request: Request) -> dict:
    """Keyword arguments for `vllm.SamplingParams`, less the structured-output object (its class varies by version)."""
    return {"temperature": request.temperature, "top_p": TOP_P, "max_tokens": request.max_tokens, "seed": request.seed}


def structured_output(schema: dict) -> dict:
    """The JSON-schema constraint in whichever form the installed vLLM takes."""
    try:  # vLLM >= 0.10
        from vllm.sampling_params import StructuredOutputsParams

        return {"structured_outputs": StructuredOutputsParams(json=schema)}
    except ImportError:
        from vllm.sampling_params import GuidedDecodingParams

        return {"guided_decoding": GuidedDecodingParams(json=schema)}


class VllmBackend:
    name = "vllm"

    def __init__(self, model: str, tensor_parallel: int = 1, seed: int = 42) -> None:
        from vllm import LLM

        self.model = model
        self._llm = LLM(**engine_arguments(model, tensor_parallel, seed))

    def complete(self, requests: list[Request]) -> list[Completion]:
        from vllm import SamplingParams

        params = [SamplingParams(**sampling_arguments(r), **structured_output(r.schema)) for r in requests]
        outputs = self._llm.chat([r.messages for r in requests], params, use_tqdm=False)
        return [Completion(o.outputs[0].text, len(o.prompt_token_ids), len(o.outputs[0].token_ids)) for o in outputs]

    def close(self) -> None:
        del self._llm
