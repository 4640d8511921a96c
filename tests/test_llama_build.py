"""The llama.cpp build runs on any x86-64 CPU with AVX2, and the packaged GGUF answers sensibly on this one.

A build made for the building CPU (-march=native) crashed or wrote "mpegmpegmpeg" on another CPU; these tests
fail on such a build: the first finds AVX-512/AMX instructions in the library, the others read the answers.
"""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from cachetune.synth.backends.base import Request
from cachetune.synth.backends.llama_cpp import LlamaCppBackend
from cachetune.synth.gguf import resolve_gguf
from cachetune.synth.prompts import output_schema

pytestmark = pytest.mark.llm  # the llama.cpp build runs the GGUF

REWRITE = "Rewrite this question in other words, one line: How do I reverse a list in Python?"


def words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", text.lower()))


def test_llama_cpp_library_uses_no_instruction_beyond_avx2():
    import llama_cpp

    objdump = shutil.which("objdump")
    if objdump is None:
        pytest.skip("objdump (binutils) is not installed")
    libraries = sorted((Path(llama_cpp.__file__).parent / "lib").glob("libggml*.so"))
    assert libraries, "llama_cpp/lib holds no ggml library"
    for library in libraries:
        code = subprocess.run([objdump, "-d", "--no-show-raw-insn", str(library)], capture_output=True, text=True, check=True).stdout
        assert "%zmm" not in code, f"{library.name} uses AVX-512 registers: built with -march=native on an AVX-512 CPU"
        assert not re.search(r"\btile(loadd|zero|stored|release)\b", code), f"{library.name} uses AMX instructions"


def test_packaged_gguf_answers_a_rewrite_greedily_with_words_of_the_prompt():
    from llama_cpp import Llama

    llm = Llama(model_path=str(resolve_gguf(None)), n_ctx=512, n_threads=2, seed=0, verbose=False)
    try:
        answer = llm.create_chat_completion([{"role": "user", "content": REWRITE}], temperature=0.0, max_tokens=40)
    finally:
        llm.close()
    text = answer["choices"][0]["message"]["content"]
    assert {"reverse", "list"} <= words(text) or {"reverse", "python"} <= words(text), text
    assert not re.search(r"(\w{3,})\1{2,}", text), f"a word repeated without spaces: {text!r}"


def test_batched_backend_decodes_greedily_under_the_json_grammar():
    backend = LlamaCppBackend(resolve_gguf(None), parallel=2, sequence_length=512, threads=2)
    try:
        request = Request([{"role": "user", "content": REWRITE + " Answer with JSON."}], output_schema(2, 1), 96, 0.0, 0)
        first, second = backend.complete([request, request])
    finally:
        backend.close()
    assert first.text == second.text  # greedy: the same answer in both sequences of the batch
    assert "reverse" in first.text.lower() and first.text.lstrip().startswith("{"), first.text
