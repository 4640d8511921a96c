"""What a chat's earlier turns add to its last message: the context check of the gateway's lookup.

A follow-up ("cancel it", "what dose should he get?") means what its conversation says, so two chats whose last
messages are the same text may ask different things. The cache embeds the last user message; the context decides
which stored entries it may be served from, in two steps:

1. `context_key(mode, earlier, message)`, part of the exact-match partition (like the model and the system
   messages, never part of the embedding):
   - `conversation` (the default): a hash of the earlier turns without small talk, normalised (case, spacing),
     for every message after the first: only the same conversation so far is served, whatever the message says.
     No rule decides that a follow-up stands alone, so none can let one through; a chat of small talk only is a
     first message;
   - `none`: always "" (the earlier turns are ignored: a follow-up may be served another conversation's answer);
   - `exact` and `facts`: "" for a message that stands alone (`stands_alone`: no word pointing back, enough
     content words), which is served whatever came before, as a first message is. A follow-up: with `exact`, a hash
     of the earlier turns without small talk, normalised (case, spacing), so only the same conversation so far is
     served; with `facts`, `follow-up`, so that a follow-up never meets a first or a standalone message;
2. with `facts`, `context_refusal(stored_earlier, earlier)` for a follow-up and each candidate: the earlier turns
   must not disagree on a fact the answer depends on (numbers, dates and amounts, negation, names of products,
   tools and people, opposed words such as upgrade/downgrade: the guards of `cachetune.facts`, which let a
   rewording leave a fact out but not change it), and more (see its docstring).

A first message (no earlier turns) has the key "" in every mode and no context to compare: it is cached exactly
as without context.
"""

import hashlib
import json
import re
from typing import Literal

from cachetune.facts import disagreements, facts_of, tokens
from cachetune.text import content_words

ContextMode = Literal["conversation", "exact", "facts", "none"]
CONTEXT_MODES: tuple[str, ...] = ContextMode.__args__
CONTEXT_GUARDS = ("numbers", "dates", "negation", "names", "operations")

# Words that point back into the conversation: a message with one of them needs its context.
_POINTERS = frozenset(
    "it its that this these those them they their he she him her his there such same above previous former latter "
    "first second last option options ones both either so".split()
)
_RELATIVE_THAT = re.compile(r"\b(?:that|which)\s+(?:is|are|was|were|has|have|had|renews|costs|runs|takes|makes)\b", re.IGNORECASE)
# A message with fewer content words ("What should I eat?", "Show me a full example") leans on its context even
# without a pointer.
STANDALONE_CONTENT_WORDS = 4
# Said in passing by any assistant ("How can I help you today?"): not a fact of the conversation.
_SMALL_TALK_DATES = frozenset({"today", "now"})
# A turn whose content words are all of these is small talk ("Hi there!", "Thanks, that's helpful."): left out of
# the context. Any other word keeps a turn: "My laptop is slow." is short, and all a follow-up refers to.
_SMALL_TALK = frozenset(
    "hi hello hey there thanks thank you helpful welcome great ok okay cool good morning afternoon evening help today "
    "sure bye please nice awesome perfect appreciate cheers glad happy anything else s re ll ve m d".split()
)

Turns = list[tuple[str, str]]  # (role, text), system messages left out


def _normalised(text: str) -> str:
    return " ".join(text.lower().split())


def stands_alone(message: str) -> bool:
    """Whether `message` says everything its answer needs: at least STANDALONE_CONTENT_WORDS content words and no
    word that points back ("it", "that", "the first one", ...; a relative "that renews ..." does not count)."""
    text = _RELATIVE_THAT.sub(" ", message)
    words = {w.lower() for w in tokens(text)}
    return len(content_words(text)) >= STANDALONE_CONTENT_WORDS and not _POINTERS.intersection(words)


def context_key(mode: str, earlier: Turns, message: str) -> str:
    """The context part of a cache key (see the module's docstring).

    Args:
        mode: `conversation`, `exact`, `facts` or `none`.
        earlier: the turns before the last user message.
        message: the last user message.

    Returns:
        "" for a first message (and always with `none`); otherwise what must match exactly.

    Raises:
        ValueError: an unknown mode.
    """
    if mode not in CONTEXT_MODES:
        raise ValueError(f"context mode '{mode}': not one of {', '.join(CONTEXT_MODES)}")
    if mode == "conversation":
        return _conversation_hash(earlier) if _substance(earlier) else ""
    if mode == "none" or not earlier or stands_alone(message):
        return ""
    return _conversation_hash(earlier) if mode == "exact" else "follow-up"


def _conversation_hash(earlier: Turns) -> str:
    """`exact:` and a hash of the turns without small talk, case and spacing normalised."""
    turns = [[role, _normalised(text)] for role, text in _substance(earlier)]
    return "exact:" + hashlib.sha256(json.dumps(turns).encode()).hexdigest()[:24]


def _states_facts(facts) -> bool:
    return bool(facts.numbers or set(facts.dates) - _SMALL_TALK_DATES or facts.names or facts.negated)


def _substance(turns: Turns) -> Turns:
    """The turns without small talk (see _SMALL_TALK)."""
    return [(role, text) for role, text in turns if not content_words(text) <= _SMALL_TALK]


def context_refusal(stored: Turns, earlier: Turns) -> str | None:
    """Why a follow-up after `earlier` must not be served the answer given after `stored`, or None when they agree.

    Small talk left out, the turns must not disagree on a guarded fact (`context:GUARD`), nor negate a different
    number of times (`context:negation`: "I don't want a refund" added), nor have the user say all the other
    conversation's user says and more (`context:scope`: "..., oldest first" added); turns that state no fact must
    be the same turns (`context:exact`).
    """
    stored, earlier = _substance(stored), _substance(earlier)
    first, second = ("\n".join(text for _, text in turns) for turns in (stored, earlier))
    failed = disagreements(first, second, CONTEXT_GUARDS)
    if failed:
        return f"context:{failed[0]}"
    if len(facts_of(first).negated) != len(facts_of(second).negated):
        return "context:negation"
    said = [content_words("\n".join(text for role, text in turns if role == "user")) for turns in (stored, earlier)]
    if said[0] != said[1] and (said[0] < said[1] or said[1] < said[0]):
        return "context:scope"
    if not (_states_facts(facts_of(first)) or _states_facts(facts_of(second))) and _normalised(first) != _normalised(second):
        return "context:exact"
    return None
