"""What a chat's earlier turns add to its last message: the context key of the gateway's lookup.

A follow-up ("cancel it", "will the refund arrive before my holiday?") means what its conversation says, so two
chats whose last messages are the same text may ask different things. The cache embeds the last user message;
`context_key(mode, earlier, message)` is part of the exact-match partition (like the model and the system
messages, never part of the embedding):
- `conversation` (the default): for every message after the first, a hash of the earlier turns without small talk,
  normalised (case, spacing): only the same conversation so far is served, whatever the message says. No rule
  decides that a follow-up stands alone, so none can let one through. A chat of small talk only is a first message.
- `none`: "" always: the earlier turns are ignored, so a follow-up is served whatever conversation it ends (on the
  conversation set written apart from these rules, every must-not-share pair: benchmarks/results/conversations.md).

A first message (no earlier turns) has the key "" in both modes: it is cached exactly as without context.

Two rule-based modes were measured and removed (commit fefd41a): `exact` (a message with enough content words and
no word pointing back served after any turns) and `facts` (follow-ups served after turns that agree on every fact)
served 156 of 198 must-not-share pairs of the set written apart from them, since most real follow-ups look
self-contained.
"""

import hashlib
import json
from typing import Literal

from cachetune.text import content_words

ContextMode = Literal["conversation", "none"]
CONTEXT_MODES: tuple[str, ...] = ContextMode.__args__
# A turn whose content words are all of these is small talk ("Hi there!", "Thanks, that's helpful."): left out of
# the context. Any other word keeps a turn: "My laptop is slow." is short, and all a follow-up refers to.
_SMALL_TALK = frozenset(
    "hi hello hey there thanks thank you helpful welcome great ok okay cool good morning afternoon evening help today "
    "sure bye please nice awesome perfect appreciate cheers glad happy anything else s re ll ve m d".split()
)

Turns = list[tuple[str, str]]  # (role, text), system messages left out


def context_key(mode: str, earlier: Turns, message: str) -> str:
    """The context part of a cache key (see the module's docstring).

    Args:
        mode: `conversation` or `none`.
        earlier: the turns before the last user message.
        message: the last user message (what is embedded; it does not change the key).

    Returns:
        "" for a first message (and always with `none`); otherwise `exact:` and the hash of the conversation so far.

    Raises:
        ValueError: an unknown mode.
    """
    if mode not in CONTEXT_MODES:
        raise ValueError(f"context mode '{mode}': not one of {', '.join(CONTEXT_MODES)}")
    substance = [(role, text) for role, text in earlier if not content_words(text) <= _SMALL_TALK]
    if mode == "none" or not substance:
        return ""
    turns = [[role, " ".join(text.lower().split())] for role, text in substance]
    return "exact:" + hashlib.sha256(json.dumps(turns).encode()).hexdigest()[:24]
