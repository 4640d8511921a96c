"""Text normalisation shared by every stage.

`clean_text` is what we store: the text as written, in Unicode NFC with whitespace collapsed.
`match_key` is what we compare: two texts with the same key are the same question for
de-duplication and for the "paraphrase equals the query" filters.
"""

import re
import unicodedata

_WHITESPACE = re.compile(r"\s+")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_WORD = re.compile(r"\w+")


def clean_text(text: str) -> str:
    """NFC, control characters dropped, every whitespace run (newlines too) as one space, stripped."""
    text = unicodedata.normalize("NFC", text)
    text = _CONTROL.sub("", text)
    return _WHITESPACE.sub(" ", text).strip()


def match_key(text: str) -> str:
    """Case-folded NFKC words joined by single spaces: punctuation, case and spacing do not count."""
    return " ".join(_WORD.findall(unicodedata.normalize("NFKC", text).casefold()))
