"""What every generation backend takes and gives back; the prompt and the parsing are shared elsewhere."""

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Request:
    messages: list[dict]  # chat messages, as prompts.Prompt.messages builds them
    schema: dict  # JSON schema the answer must meet
    max_tokens: int
    temperature: float
    seed: int


@dataclass(frozen=True)
class Completion:
    text: str
    prompt_tokens: int
    completion_tokens: int


class Backend(Protocol):
    name: str  # e.g. "llama-cpp": goes into each triplet's provenance
    model: str

    def complete(self, requests: list[Request]) -> list[Completion]:
        """One completion per request, in order."""
        ...

    def close(self) -> None: ...
