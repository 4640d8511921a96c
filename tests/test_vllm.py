"""vLLM cannot run on a CPU-only machine: we check the arguments the adapter gives it."""

from cachetune.synth.backends.base import Request
from cachetune.synth.backends.vllm import engine_arguments, sampling_arguments
from cachetune.synth.prompts import output_schema


def test_engine_and_sampling_arguments():
    assert engine_arguments("Qwen/Qwen2.5-7B-Instruct", 4, 7) == {
        "model": "Qwen/Qwen2.5-7B-Instruct",
        "tensor_parallel_size": 4,
        "seed": 7,
        "enable_prefix_caching": True,
    }
    request = Request([{"role": "user", "content": "q"}], output_schema(3, 2), 384, 0.7, 11)
    assert sampling_arguments(request) == {"temperature": 0.7, "top_p": 0.9, "max_tokens": 384, "seed": 11}
