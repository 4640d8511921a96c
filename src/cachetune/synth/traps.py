"""Trap negatives: counterfactual look-alikes of real queries, made by rule from the queries alone.

A trap keeps a query's words and changes the one thing its answer depends on, so it reads like a rewording
and must not be served the query's answer:

- `negation`: a negation added or taken away ("How do I cancel it?" -> "How do I not cancel it?", "doesn't" ->
  "does"), or a word swapped for its opposite (open/closed, enable/disable, include/exclude, on/off, ascending/
  descending; the pairs of `cachetune.facts`);
- `number`: a number, ordinal, amount, version, weekday or month changed ("on the 3rd" -> "on the 4th", "type 1"
  -> "type 2", "Python 3.8" -> "Python 3.9", "on Sunday" -> "on Monday");
- `entity`: a known language, library, tool, format or system swapped for another of its class, or a proper noun
  for another proper noun of the same corpus ("in Python" -> "in Ruby", "Flixora" -> "PulseFit");
- `scope`: the question narrowed with a qualifier another query of the corpus ends with ("... during pregnancy",
  "... without a loop"), widened by dropping its own ("symptoms of flu in children" -> "symptoms of flu"), or
  "all" narrowed to "the first".

Each rule is deterministic given its `random.Random`. A rule that finds nothing to change makes no trap.
"""

import functools
import random
import re
from dataclasses import dataclass
from typing import Literal

from cachetune.facts import LITERAL, OPPOSITES, TECH_CLASSES, disagreements, facts_of, stem, tokens

TrapKind = Literal["negation", "number", "entity", "scope"]
TRAP_KINDS: tuple[str, ...] = TrapKind.__args__
SOURCE_PREFIX = "trap:"

_AUXILIARIES = r"(can|could|should|would|will|do|does|did|is|are|was|were|has|have|must)"
# "How do I ..." / "What can we ...": negated after the pronoun. Not a yes/no question ("Is it open?", "Can I
# ...?"): "Isn't it open?" asks the same thing.
_AUXILIARY_PRONOUN = re.compile(rf"\b{_AUXILIARIES}\s+(i|you|we|it|he|she|they)\b", re.IGNORECASE)
_HOW_TO = re.compile(r"\bhow\s+to\b", re.IGNORECASE)
_CONTRACTED = {
    "don't": "do", "doesn't": "does", "didn't": "did", "isn't": "is", "aren't": "are", "wasn't": "was",
    "weren't": "were", "can't": "can", "cannot": "can", "couldn't": "could", "shouldn't": "should",
    "won't": "will", "wouldn't": "would", "haven't": "have", "hasn't": "has", "mustn't": "must",
}  # fmt: skip
_QUALIFIER = re.compile(
    r"\s+((?:for|in|on|with|without|during|after|before|from|while|when|using|at)\s+[^,;:?.!]{3,40})\s*([?.!]?)\s*$", re.IGNORECASE
)
_ORDINAL_SUFFIX = {1: "st", 2: "nd", 3: "rd"}
_WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"]
# Counts a trap may change; "one" is left alone ("more than one", "one of them": mostly not a count, see cachetune.facts).
_NUMBER_WORDS = ["two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]


@dataclass(frozen=True)
class TrapPool:
    """What the entity and scope rules swap in: proper nouns and trailing qualifiers seen in a corpus."""

    proper_nouns: tuple[str, ...] = ()
    qualifiers: tuple[str, ...] = ()

    @classmethod
    def from_texts(cls, texts: list[str]) -> "TrapPool":
        nouns, qualifiers = {}, {}
        for text in texts:
            for kind, name in facts_of(text).names:
                if kind == "proper" and len(name) > 2:
                    original = next((t for t in tokens(text) if t.lower() == name), None)
                    if original:
                        nouns.setdefault(original, None)
            match = _QUALIFIER.search(text)
            if match and not _names_a_language(match.group(1)):
                qualifiers.setdefault(match.group(1), None)
        return cls(tuple(nouns), tuple(qualifiers))


def _names_a_language(phrase: str) -> bool:
    """'in Python': in a programming corpus dropping or adding the language rarely changes the question."""
    languages = set(TECH_CLASSES["language"].split())
    return any(token.lower() in languages for token in tokens(phrase))


def _keep_case(original: str, replacement: str) -> str:
    if original.isupper() and len(original) > 1:
        return replacement.upper()
    if original[:1].isupper():
        return replacement[:1].upper() + replacement[1:]
    return replacement


def _forms(word: str) -> list[str]:
    """A word and its inflections, in a fixed order (so the same position maps between the two words of a pair)."""
    if " " in word:
        return [word]
    if word.endswith("e"):
        return [word, word + "s", word + "d", word[:-1] + "ing"]
    if re.fullmatch(r"[^aeiou]*[aeiou][bdgmnprt]", word):  # stop -> stopped, stopping
        return [word, word + "s", word + word[-1] + "ed", word + word[-1] + "ing"]
    return [word, word + "s", word + "ed", word + "ing"]


@functools.cache
def _word_pattern(word: str) -> re.Pattern:
    """`word` as a whole word, any case. Compiled once: the opposites' forms outnumber `re`'s own cache of 512."""
    return re.compile(rf"\b{re.escape(word)}\b", re.IGNORECASE)


def negation_trap(text: str, rng: random.Random) -> str | None:
    """A negation added or taken away, or a word swapped for its opposite (see the module's docstring)."""
    opposites: dict[tuple[str, str], list[tuple[re.Pattern, str]]] = {}  # (word, its opposite) -> each form's pattern
    for first, second in OPPOSITES:
        if " " in first or " " in second or first in ("with", "more", "on", "set", "even", "odd", "day", "min", "max"):
            continue  # too common to flip blindly: "with" and "on" are mostly not the point of a question
        for source, target in ((first, second), (second, first)):
            if any(_word_pattern(form).search(text) for form in _forms(target)):
                continue  # says both already ("the first and the last"): flipping one says nothing new
            for source_form, target_form in zip(_forms(source), _forms(target)):
                pattern = _word_pattern(source_form)
                if pattern.search(text):
                    opposites.setdefault((source, target), []).append((pattern, target_form))
    for contracted, plain in _CONTRACTED.items():
        pattern = _word_pattern(contracted)
        if pattern.search(text):
            return pattern.sub(lambda m, plain=plain: _keep_case(m.group(0), plain), text, count=1)
    if re.search(r"\bnot\s+", text, re.IGNORECASE):
        return re.sub(r"\bnot\s+", "", text, count=1, flags=re.IGNORECASE)
    if re.search(r"\bwithout\b", text, re.IGNORECASE):
        return re.sub(r"\bwithout\b", lambda m: _keep_case(m.group(0), "with"), text, count=1, flags=re.IGNORECASE)
    for pair in rng.sample(sorted(opposites), len(opposites)):
        trap = text
        for pattern, replacement in opposites[pair]:  # every form: "split ... splitting"
            trap = pattern.sub(lambda m, new=replacement: _keep_case(m.group(0), new), trap)
        if disagreements(text, trap, ("operations",)):  # not when the text says the other word too ("row ... columns")
            return trap
    if match := next((m for m in _AUXILIARY_PRONOUN.finditer(text) if text[: m.start()].strip()), None):
        return text[: match.end()] + " not" + text[match.end() :]
    if match := _HOW_TO.search(text):
        return text[: match.start()] + _keep_case(match.group(0), "how not to") + text[match.end() :]
    return None


def _changed_number(value: int, rng: random.Random) -> int:
    return value + rng.choice([1, 2]) if value < 10 else value + rng.choice([1, 5, 10, value])


def number_trap(text: str, rng: random.Random) -> str | None:
    """A number, ordinal, amount, version, weekday or month changed (see the module's docstring)."""
    literals = [match.span() for match in LITERAL.finditer(text)]  # code, not prose: its digits are left alone
    candidates = []
    for match in re.finditer(r"(?<![\w.])(\d+)(?:\.(\d+))?(st|nd|rd|th)?(?![\w]|\.\d)", text):
        if not any(start <= match.start() < end for start, end in literals):
            candidates.append(("digits", match))
    for match in re.finditer(r"\b(" + "|".join(_WEEKDAYS) + r")s?\b", text, re.IGNORECASE):
        candidates.append(("weekday", match))
    for match in re.finditer(r"\b(" + "|".join(m for m in _MONTHS if m not in ("May", "March")) + r"|May|March)\b", text):
        candidates.append(("month", match))
    for match in re.finditer(r"\b(" + "|".join(_NUMBER_WORDS) + r")\b", text, re.IGNORECASE):
        candidates.append(("word", match))
    if not candidates:
        return None
    kind, match = rng.choice(candidates)
    if kind == "digits":
        whole, fraction, suffix = match.group(1), match.group(2), match.group(3)
        if fraction is not None and len(fraction) == 1:  # a version or a decimal: 3.8 -> 3.9, 2.9 -> 3.9
            new = f"{whole}.{int(fraction) + 1}" if fraction != "9" else f"{int(whole) + 1}.{fraction}"
        elif fraction is not None:  # an amount: 10.99 -> 11.99, 15.99
            new = f"{_changed_number(int(whole), rng)}.{fraction}"
        else:
            number = _changed_number(int(whole), rng)
            new = str(number) + (_ORDINAL_SUFFIX.get(number % 10 if number % 100 not in (11, 12, 13) else 0, "th") if suffix else "")
    elif kind == "weekday":
        day = match.group(1).capitalize()
        new = rng.choice([d for d in _WEEKDAYS if d != day]) + match.group(0)[len(day) :]
    elif kind == "month":
        new = rng.choice([m for m in _MONTHS if m != match.group(1)])
    else:
        index = _NUMBER_WORDS.index(match.group(1).lower())
        new = _keep_case(match.group(1), _NUMBER_WORDS[index + 1 if index + 1 < len(_NUMBER_WORDS) else index - 1])
    return text[: match.start()] + new + text[match.end() :]


def entity_trap(text: str, rng: random.Random, pool: TrapPool) -> str | None:
    """A known name swapped for another of its class, else a proper noun for another of the corpus."""
    words = [token.lower() for token in tokens(text)]
    for token in tokens(text):
        word = token.lower()
        if words.count(word) > 1:
            continue  # "a python script from another python script": swapping one of two changes little
        for names in TECH_CLASSES.values():
            choices = [name for name in names.split() if name not in words]  # another one, not one it names already
            if word in names.split() and choices:
                replacement = rng.choice(choices)
                pattern = re.compile(rf"(?<![\w#+]){re.escape(token)}(?![\w#+])")
                return pattern.sub(_keep_case(token, replacement), text, count=1)
    stems = [stem(token) for token in tokens(text)]  # a name said once: swapping it changes what the prompt names
    nouns = [name for kind, name in facts_of(text).names if kind == "proper" and len(name) > 2 and stems.count(stem(name)) == 1]
    others = [noun for noun in pool.proper_nouns if stem(noun) not in stems]
    if not nouns:
        return None
    original = next(t for t in tokens(text) if t.lower() == sorted(nouns)[0])
    for other in rng.sample(others, min(len(others), 8)):
        trap = re.sub(rf"\b{re.escape(original)}\b", other, text, count=1)
        if disagreements(text, trap, ("names",)):  # the new name reads as a name here too (not "How", not "Data")
            return trap
    return None


def scope_trap(text: str, rng: random.Random, pool: TrapPool) -> str | None:
    """The question widened (its own qualifier dropped) or narrowed (another's added, or "all" -> "the first")."""
    match = _QUALIFIER.search(text)
    if match and not _names_a_language(match.group(1)) and len(text[: match.start()].split()) >= 3:
        return text[: match.start()] + match.group(2)
    if re.search(r"\ball\b", text, re.IGNORECASE):
        return re.sub(r"\ball\b", "the first", text, count=1, flags=re.IGNORECASE)
    qualifiers = [q for q in pool.qualifiers if q.lower() not in text.lower()]
    if qualifiers:
        ending = re.search(r"\s*([?.!]*)\s*$", text)
        return text[: ending.start()] + " " + rng.choice(qualifiers) + ending.group(1)
    return None


def traps_of(text: str, rng: random.Random, pool: TrapPool = TrapPool(), kinds: tuple[str, ...] = TRAP_KINDS) -> list[tuple[str, str]]:
    """(kind, trap) for each kind of `kinds` whose rule applies to `text`; a trap equal to the text is dropped."""
    rules = {
        "negation": lambda: negation_trap(text, rng),
        "number": lambda: number_trap(text, rng),
        "entity": lambda: entity_trap(text, rng, pool),
        "scope": lambda: scope_trap(text, rng, pool),
    }
    made = []
    for kind in kinds:
        trap = rules[kind]()
        if trap is not None and re.sub(r"\s+", " ", trap).strip().lower() != text.strip().lower():
            made.append((kind, re.sub(r"\s+", " ", trap).strip()))
    return made
