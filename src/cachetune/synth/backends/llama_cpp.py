"""In-process GGUF generation with llama.cpp, several sequences decoded together in one batch.

One llama.cpp context holds up to `parallel` sequences plus one more that keeps the prompt prefix all
requests share (system text and few-shot turns): it is decoded once and copied into each sequence's
cache, so only each query's own tokens are prefilled. Every step then decodes one token for every
unfinished sequence in a single call, which on a CPU turns memory-bound matrix-vector work into
matrix-matrix work. Each sequence samples through its own chain with a JSON-schema grammar.
"""

import ctypes
import json
import os
from pathlib import Path

from cachetune.errors import BackendError
from cachetune.synth.backends.base import Completion, Request

TOP_K = 40
TOP_P = 0.9


class LlamaCppBackend:
    name = "llama-cpp"

    def __init__(self, model_path: Path, parallel: int = 8, sequence_length: int = 1536, threads: int | None = None) -> None:
        import llama_cpp
        from llama_cpp import _internals as internals
        from llama_cpp._logger import set_verbose
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        set_verbose(False)  # llama.cpp's load-time chatter; errors still print
        self._llama = llama_cpp
        self.model = Path(model_path).stem
        self.parallel = parallel
        self._model = internals.LlamaModel(path_model=str(model_path), params=internals.LlamaModel.default_params(), verbose=False)
        self.sequence_length = sequence_length  # prompt and answer of one sequence
        params = internals.LlamaContext.default_params()
        params.n_ctx = (parallel + 1) * sequence_length
        params.n_batch = params.n_ctx
        params.n_seq_max = parallel + 1
        # One cache stream per sequence: a token attends over its own sequence only, not over all of them.
        params.kv_unified = False
        params.n_threads = params.n_threads_batch = threads or os.cpu_count() or 1
        self._context = internals.LlamaContext(model=self._model, params=params, verbose=False)
        self._batch = llama_cpp.llama_batch_init(params.n_ctx, 0, 1)
        self._vocab = llama_cpp.llama_model_get_vocab(self._model.model)
        metadata = self._model.metadata()
        self._format = Jinja2ChatFormatter(
            template=metadata["tokenizer.chat_template"],
            eos_token=self._model.token_get_text(self._model.token_eos()),
            bos_token=self._model.token_get_text(self._model.token_bos()),
        )
        self._prefix_seq = parallel  # the extra sequence that keeps the shared prefix
        self._prefix: list[int] = []
        self._prefix_state = None  # the prefix sequence's cache, copied into each sequence's stream
        self._grammars: dict[str, bytes] = {}

    def complete(self, requests: list[Request]) -> list[Completion]:
        prompts = [self._tokenize(request) for request in requests]
        for prompt, request in zip(prompts, requests):
            if len(prompt) + request.max_tokens > self.sequence_length:
                raise BackendError(
                    f"a prompt of {len(prompt)} tokens plus {request.max_tokens} to generate exceed the {self.sequence_length} tokens of a sequence"
                )
        completions: list[Completion] = []
        for start in range(0, len(requests), self.parallel):
            completions += self._complete_chunk(requests[start : start + self.parallel], prompts[start : start + self.parallel])
        return completions

    def close(self) -> None:
        if self._batch is not None:
            self._llama.llama_batch_free(self._batch)
            self._batch = None
        self._context.close()
        self._model.close()

    def _tokenize(self, request: Request) -> list[int]:
        prompt = self._format(messages=request.messages).prompt
        return self._model.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)

    def _complete_chunk(self, requests: list[Request], prompts: list[list[int]]) -> list[Completion]:
        llama = self._llama
        prefix_length = self._share_prefix(prompts)
        entries = []
        for seq, tokens in enumerate(prompts):
            self._context.kv_cache_seq_rm(seq, -1, -1)
            llama.llama_state_seq_set_data(self._context.ctx, self._prefix_state, len(self._prefix_state), seq)
            entries += [
                (token, prefix_length + i, seq, i == len(tokens) - prefix_length - 1) for i, token in enumerate(tokens[prefix_length:])
            ]
        logit_index = self._decode(entries)
        samplers = [self._sampler(request) for request in requests]
        positions = [len(tokens) for tokens in prompts]
        outputs: list[list[int]] = [[] for _ in requests]
        active = set(range(len(requests)))
        try:
            while active:
                step = []
                for seq in sorted(active):
                    token = samplers[seq].sample(self._context.ctx, logit_index[seq])
                    if llama.llama_vocab_is_eog(self._vocab, token) or len(outputs[seq]) >= requests[seq].max_tokens:
                        active.discard(seq)
                        continue
                    outputs[seq].append(token)
                    step.append((token, positions[seq], seq, True))
                    positions[seq] += 1
                if step:
                    logit_index = self._decode(step)
        finally:
            for sampler in samplers:
                sampler.free()
        return [
            Completion(self._model.detokenize(output).decode("utf-8", errors="replace"), len(prompt), len(output))
            for output, prompt in zip(outputs, prompts)
        ]

    def _share_prefix(self, prompts: list[list[int]]) -> int:
        """Keep the longest prefix all prompts share decoded in the prefix sequence; return its length."""
        common = min(len(tokens) for tokens in prompts) - 1  # each sequence needs a token of its own to sample from
        for tokens in prompts[1:]:
            common = next((i for i in range(common) if tokens[i] != prompts[0][i]), common)
        prefix = prompts[0][:common]
        kept = next(
            (i for i in range(min(len(prefix), len(self._prefix))) if prefix[i] != self._prefix[i]), min(len(prefix), len(self._prefix))
        )
        if self._prefix_state is not None and kept == len(prefix) == len(self._prefix):
            return len(prefix)
        self._context.kv_cache_seq_rm(self._prefix_seq, kept, -1)
        if len(prefix) > kept:
            self._decode([(token, kept + i, self._prefix_seq, False) for i, token in enumerate(prefix[kept:])])
        self._prefix = prefix
        size = self._llama.llama_state_seq_get_size(self._context.ctx, self._prefix_seq)
        self._prefix_state = (ctypes.c_uint8 * size)()
        self._llama.llama_state_seq_get_data(self._context.ctx, self._prefix_state, size, self._prefix_seq)
        return len(prefix)

    def _decode(self, entries: list[tuple[int, int, int, bool]]) -> dict[int, int]:
        """Decode (token, position, sequence, wants logits) entries; return the batch index of each sequence's logits."""
        batch = self._batch
        batch.n_tokens = len(entries)
        logit_index = {}
        for i, (token, position, seq, logits) in enumerate(entries):
            batch.token[i] = token
            batch.pos[i] = position
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = seq
            batch.logits[i] = logits
            if logits:
                logit_index[seq] = i
        status = self._llama.llama_decode(self._context.ctx, batch)
        if status != 0:
            raise BackendError(f"llama.cpp decode failed with status {status} ({len(entries)} tokens)")
        return logit_index

    def _sampler(self, request: Request) -> "_GrammarSampler":
        key = json.dumps(request.schema, sort_keys=True)
        if key not in self._grammars:
            from llama_cpp.llama_grammar import json_schema_to_gbnf

            # Properties in the order the schema lists them (the order the few-shot answers use), not sorted.
            order = list(request.schema.get("properties", {}))
            self._grammars[key] = json_schema_to_gbnf(key, prop_order=order).encode("utf-8")
        return _GrammarSampler(self._llama, self._vocab, self._model.n_vocab(), self._grammars[key], request)


class _GrammarSampler:
    """Samples one sequence under a grammar the way llama.cpp's own sampler does: the unconstrained chain
    picks a token and the grammar checks only that token; only when it fails is the grammar applied to
    the whole vocabulary and the token drawn again. Checking 150K tokens at every step costs more than
    the decode itself on a CPU."""

    def __init__(self, llama, vocab, n_vocab: int, grammar: bytes, request: Request) -> None:
        import numpy as np
        from llama_cpp._internals import LlamaTokenDataArray

        self._llama = llama
        self._n_vocab = n_vocab
        self._grammar = llama.llama_sampler_init_grammar(vocab, grammar, b"root")
        self._chain = llama.llama_sampler_chain_init(llama.llama_sampler_chain_default_params())
        if request.temperature > 0:
            for sampler in (
                llama.llama_sampler_init_top_k(TOP_K),
                llama.llama_sampler_init_top_p(TOP_P, 1),
                llama.llama_sampler_init_temp(request.temperature),
                llama.llama_sampler_init_dist(ctypes.c_uint32(request.seed).value),
            ):
                llama.llama_sampler_chain_add(self._chain, sampler)
        else:
            llama.llama_sampler_chain_add(self._chain, llama.llama_sampler_init_greedy())
        self._one = (llama.llama_token_data * 1)()
        self._one_array = llama.llama_token_data_array(data=self._one, size=1, selected=-1, sorted=False)
        self._all = LlamaTokenDataArray(n_vocab=n_vocab)
        self._np = np

    def sample(self, context, index: int) -> int:
        llama = self._llama
        token = llama.llama_sampler_sample(self._chain, context, index)
        self._one[0].id, self._one[0].logit, self._one[0].p = token, 0.0, 0.0
        self._one_array.size, self._one_array.selected = 1, -1
        llama.llama_sampler_apply(self._grammar, ctypes.byref(self._one_array))
        if self._one[0].logit == float("-inf"):
            logits = self._np.ctypeslib.as_array(llama.llama_get_logits_ith(context, index), shape=(self._n_vocab,))
            self._all.copy_logits(logits)
            llama.llama_sampler_apply(self._grammar, ctypes.byref(self._all.candidates))
            llama.llama_sampler_apply(self._chain, ctypes.byref(self._all.candidates))
            token = int(self._all.candidates_data.id[self._all.candidates.selected])
        llama.llama_sampler_accept(self._grammar, token)
        return token

    def free(self) -> None:
        self._llama.llama_sampler_free(self._grammar)
        self._llama.llama_sampler_free(self._chain)
