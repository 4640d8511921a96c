"""Few-shot chat prompts per domain (prompts/*.yaml) and the JSON schema every backend's output must meet.

Small instruct models copy the input unless they see worked examples, so each prompt carries a few
(query -> paraphrases, negatives) turns before the real query. The schema fixes how many of each come
back; backends that support it enforce the schema while decoding (a grammar, or `response_format`).
"""

import json
from dataclasses import dataclass
from importlib import resources

import yaml

from cachetune.errors import InputError


@dataclass(frozen=True)
class Prompt:
    version: str
    domain: str
    system: str  # what the task is and what a paraphrase is
    negatives: str  # what a negative is: left out when none are asked for
    examples: tuple[dict, ...]

    def messages(self, query: str, paraphrases: int, negatives: int) -> list[dict]:
        """Chat messages: the system text, the worked examples as turns, then the query."""
        system = [self.system.strip(), *([self.negatives.strip()] if negatives else []), "Answer with JSON only."]
        messages = [{"role": "system", "content": "\n".join(system)}]
        for example in self.examples:
            answer = {"paraphrases": example["paraphrases"][:paraphrases]}
            if negatives:
                answer["negatives"] = example["negatives"][:negatives]
            ask = _ask(example["query"], len(answer["paraphrases"]), len(answer.get("negatives", ())))
            messages += [{"role": "user", "content": ask}, {"role": "assistant", "content": json.dumps(answer, ensure_ascii=False)}]
        messages.append({"role": "user", "content": _ask(query, paraphrases, negatives)})
        return messages


def _ask(query: str, paraphrases: int, negatives: int) -> str:
    if not negatives:
        return f"Question: {query}\nWrite {paraphrases} paraphrases."
    return f"Question: {query}\nWrite {paraphrases} paraphrases and {negatives} negatives."


def output_schema(paraphrases: int, negatives: int) -> dict:
    def texts(count: int) -> dict:
        return {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": count, "maxItems": count}

    properties = {"paraphrases": texts(paraphrases), **({"negatives": texts(negatives)} if negatives else {})}
    return {"type": "object", "properties": properties, "required": list(properties), "additionalProperties": False}


def load_prompt(domain: str) -> Prompt:
    """The domain's prompt, or the generic one for a domain without its own."""
    folder = resources.files("cachetune.synth").joinpath("prompts")
    file = folder.joinpath(f"{domain}.yaml")
    if not file.is_file():
        file = folder.joinpath("generic.yaml")
    data = yaml.safe_load(file.read_text())
    for example in data["examples"]:
        if not example.get("paraphrases") or not example.get("negatives"):
            raise InputError(f"prompt {file.name}: every example needs paraphrases and negatives")
    return Prompt(data["version"], data["domain"], data["system"], data["negatives"], tuple(data["examples"]))
