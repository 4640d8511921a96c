"""The conversation set: pairs of short chats, scored as the gateway decides them under each context mode.

From each scenario of a set (conversations.yaml, conversations_apart.yaml: see their headers) six pairs are made, a
stored chat and a new one, each a list of (role, text) turns ending with a user message. The gateway serves the new
chat the stored one's answer when the context keys of `cachetune.conversation` are equal, the last user messages
are at least `threshold` similar, and no guard of the domain's `verify` refuses them.
"""

from dataclasses import dataclass
from importlib import resources

import numpy as np
import yaml

from cachetune.conversation import CONTEXT_MODES, context_key
from cachetune.facts import disagreements

# development: written with the context rules, for building them; apart: written by someone who never read
# cachetune.conversation, committed before any rule changed, reported once per mode and never tuned on
CONVERSATION_SETS = {"development": "conversations.yaml", "apart": "conversations_apart.yaml"}
SHOULD_HIT = ("reworded", "chatter", "after_unrelated")
MUST_NOT_HIT = ("context_swapped", "detail_swapped", "intent_flipped")
CHATTER_BEFORE = [("user", "Hi there!"), ("assistant", "Hello! How can I help you today?")]
CHATTER_AFTER = [("user", "Thanks, that's helpful."), ("assistant", "You're welcome.")]

Chat = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class ChatPair:
    stored: Chat
    new: Chat
    kind: str
    domain: str
    scenario: int  # its scenario's index in conversations.yaml: a validation/test split keeps a scenario's pairs together


def _turns(texts: list[str]) -> list[tuple[str, str]]:
    return [("user" if number % 2 == 0 else "assistant", text) for number, text in enumerate(texts)]


def conversation_pairs(domains: set[str] | None = None, which: str = "development") -> list[ChatPair]:
    """Every pair of a conversation set (`CONVERSATION_SETS`), or those of `domains` (None or none of them there:
    every domain)."""
    scenarios = yaml.safe_load(resources.files("cachetune.evaluate").joinpath(CONVERSATION_SETS[which]).read_text())["scenarios"]
    pairs = []
    for number, scenario in enumerate(scenarios):
        same_domain = [i for i, other in enumerate(scenarios) if other["domain"] == scenario["domain"]]
        other_domain = next(s for s in scenarios[number + 1 :] + scenarios if s["domain"] != scenario["domain"])
        swapped = scenarios[same_domain[(same_domain.index(number) + 1) % len(same_domain)]]
        context, follow_up = _turns(scenario["context"]), ("user", scenario["follow_up"])
        stored = (*context, follow_up)
        made = {
            "reworded": (*_turns(scenario["reworded"]), ("user", scenario["follow_up_reworded"])),
            "chatter": (*CHATTER_BEFORE, *context, *CHATTER_AFTER, follow_up),
            "context_swapped": (*_turns(swapped["context"]), follow_up),
            "detail_swapped": (*_turns(scenario["detail"]), follow_up),
            "intent_flipped": (*_turns(scenario["flipped"]), follow_up),
        }
        pairs += [ChatPair(stored, new, kind, scenario["domain"], number) for kind, new in made.items()]
        standalone = ("user", scenario["standalone"])
        pairs.append(ChatPair((standalone,), (*_turns(other_domain["context"]), standalone), "after_unrelated", scenario["domain"], number))
    chosen = {p.domain for p in pairs if domains and p.domain in domains} or {p.domain for p in pairs}
    return [p for p in pairs if p.domain in chosen]


def served(
    pairs: list[ChatPair], vector_of: dict[str, np.ndarray], threshold: float, mode: str, guards: tuple[str, ...] = ()
) -> np.ndarray:
    """Per pair, whether the gateway serves the new chat the stored chat's answer."""
    result = []
    for pair in pairs:
        first, second = pair.stored[-1][1], pair.new[-1][1]
        key = context_key(mode, list(pair.new[:-1]), second)
        same_key = context_key(mode, list(pair.stored[:-1]), first) == key
        similar = float(vector_of[first] @ vector_of[second]) >= threshold
        result.append(same_key and similar and not (guards and disagreements(second, first, guards)))
    return np.array(result, dtype=bool)


def conversation_metrics(pairs: list[ChatPair], vector_of: dict[str, np.ndarray], threshold: float, guards: tuple[str, ...] = ()) -> dict:
    """Per context mode: pairs served by kind, the share of should-hit pairs served and the must-not-hit ones served."""
    kinds = np.array([p.kind for p in pairs])
    modes = {}
    for mode in CONTEXT_MODES:
        hits = served(pairs, vector_of, threshold, mode, guards)
        should, must_not = np.isin(kinds, SHOULD_HIT), np.isin(kinds, MUST_NOT_HIT)
        modes[mode] = {
            "kinds": {
                kind: {"pairs": int((kinds == kind).sum()), "served": int(hits[kinds == kind].sum())} for kind in SHOULD_HIT + MUST_NOT_HIT
            },
            "should_hit_served": float(hits[should].mean()) if should.any() else None,
            "wrong_hits": int(hits[must_not].sum()),
        }
    return {"pairs": len(pairs), "threshold": threshold, "guards": list(guards), "modes": modes}


def texts_of(pairs: list[ChatPair]) -> list[str]:
    """The last user messages: the texts the gateway embeds."""
    return list(dict.fromkeys(text for p in pairs for text in (p.stored[-1][1], p.new[-1][1])))
