"""Text normalisation shared by every stage.

`clean_text` is what we store: the text as written, in Unicode NFC with whitespace collapsed.
`match_key` is what we compare: two texts with the same key are the same question for
de-duplication and for the "paraphrase equals the query" filters. `seeded_order` is how texts are
shuffled reproducibly (splits, samples, replay order).
"""

import hashlib
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


# Words that carry no intent of their own: "how do I sort a list" asks what "sort list" asks. Negations,
# numbers and the question words that change an answer (why, when, where, which, who) are kept.
_FILLER = frozenset(
    "a an the and or do does did doing done i me my we our you your it its is are was were be been being am "
    "to of in on at for with by from into about as this that these those there here some any can could would "
    "should will shall may might must please how what way ways get make using use".split()
)


def content_words(text: str) -> frozenset[str]:
    """The words that carry a question's intent, plural `s` dropped: equal sets mean a rewording, not a new question."""
    words = match_key(text).split()
    return frozenset(
        word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word for word in words if word not in _FILLER
    )


def seeded_order(names: list[str], seed: int) -> list[str]:
    """A shuffle of `names` that depends only on the seed and the names, not on their order."""
    return sorted(names, key=lambda name: hashlib.blake2b(f"{seed}\0{name}".encode(), digest_size=8).digest())
