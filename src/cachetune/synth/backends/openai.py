"""Any OpenAI-compatible chat server: vLLM's `vllm serve`, llama.cpp's server, Ollama, OpenAI itself.

Requests run concurrently; connection errors, timeouts, HTTP 429 and 5xx, and bodies that are not a
chat completion are retried with exponential backoff, then end in a BackendError that names the
server and the last error. The JSON schema is sent as `response_format`; a server that refuses that
form gets the next simpler one (json_schema -> json_object with schema -> none), and the filters
downstream still check every answer.
"""

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from cachetune.errors import BackendError
from cachetune.synth.backends.base import Completion, Request

RESPONSE_FORMATS = ("json_schema", "json_object", None)
RETRY_STATUS = {408, 409, 429}


class OpenAIBackend:
    name = "openai"

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key_env: str | None = None,
        concurrency: int = 8,
        timeout: float = 120.0,
        retries: int = 4,
        backoff: float = 1.0,
    ) -> None:
        headers = {}
        if api_key_env:
            key = os.environ.get(api_key_env)
            if not key:
                raise BackendError(f"--api-key-env {api_key_env}: that environment variable is not set")
            headers["Authorization"] = f"Bearer {key}"
        self.model = model
        self.url = base_url.rstrip("/") + "/chat/completions"
        self._client = httpx.Client(timeout=timeout, headers=headers)
        self._concurrency = concurrency
        self._retries = retries
        self._backoff = backoff
        self._format = 0  # index into RESPONSE_FORMATS; moves on when the server refuses one
        self._lock = threading.Lock()

    def complete(self, requests: list[Request]) -> list[Completion]:
        with ThreadPoolExecutor(max_workers=self._concurrency) as pool:
            return list(pool.map(self._complete_one, requests))

    def close(self) -> None:
        self._client.close()

    def _body(self, request: Request, format_index: int) -> dict:
        body = {
            "model": self.model,
            "messages": request.messages,
            "temperature": request.temperature,
            "max_tokens": request.max_tokens,
            "seed": request.seed,
        }
        kind = RESPONSE_FORMATS[format_index]
        if kind == "json_schema":
            body["response_format"] = {"type": "json_schema", "json_schema": {"name": "rewrites", "schema": request.schema, "strict": True}}
        elif kind == "json_object":
            body["response_format"] = {"type": "json_object", "schema": request.schema}
        return body

    def _complete_one(self, request: Request) -> Completion:
        last_error = ""
        attempt = 0
        while attempt <= self._retries:
            format_index = self._format
            try:
                response = self._client.post(self.url, json=self._body(request, format_index))
            except httpx.TransportError as error:  # refused, reset, DNS, timeouts
                last_error = f"{type(error).__name__}: {error}"
            else:
                # Servers refuse an unknown response_format with 400, 422 or even 500 (llama-cpp-python).
                refused = response.status_code >= 400 and "response_format" in response.text
                if refused and format_index + 1 < len(RESPONSE_FORMATS):
                    with self._lock:
                        self._format = max(self._format, format_index + 1)
                    continue  # a capability answer, not a failure: no backoff, no attempt used
                if response.status_code in RETRY_STATUS or response.status_code >= 500:
                    last_error = f"HTTP {response.status_code}: {response.text[:200]}"
                elif response.status_code >= 400:
                    raise BackendError(f"{self.url}: HTTP {response.status_code}: {response.text[:300]}")
                else:
                    completion = _parse(response)
                    if completion is not None:
                        return completion
                    last_error = f"not a chat completion: {response.text[:200]!r}"
            attempt += 1
            if attempt <= self._retries:
                time.sleep(self._backoff * 2 ** (attempt - 1))
        raise BackendError(f"{self.url}: {self._retries + 1} attempts failed; last: {last_error}")


def _parse(response: httpx.Response) -> Completion | None:
    try:
        data = response.json()
        content = data["choices"][0]["message"]["content"]
        usage = data.get("usage") or {}
        return Completion(content or "", int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0)))
    except (ValueError, KeyError, IndexError, TypeError):
        return None
