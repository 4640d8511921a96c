"""What must agree between two prompts for one's answer to serve the other, read off the text by rule.

A cosine sees "Cancel my subscription" and "Don't cancel my subscription", "open on Sundays" and "closed on
Sundays", "flights on the 3rd" and "on the 5th" as nearly the same text. These are the facts an answer depends on
and that a rewording keeps, so they are compared exactly:

- `numbers`: every number with its unit or currency, normalised ("3rd", "third" and "3" are 3; "£10.99" is
  "10.99 gbp"; "5mg" and "5 mg" are "5 mg"; "3pm" is "15:00"; versions such as 3.8.1 as written);
- `dates`: weekdays, months (May and March only when capitalised: "may" is a verb) and relative days;
- `negation`: whether the prompt is negated (not, n't, never, no, without, cannot...), with the word each cue
  negates, so a guard can ask whether the other prompt says that word un-negated;
- `operations`: words of opposed pairs (enable/disable, open/closed, include/exclude, on/off, add/remove, ...),
  each as (pair, side);
- `names`: what the question is about by name, by class: known languages, libraries, tools, formats and operating
  systems (`tech`), code identifiers (snake_case, camelCase, dotted.names, call(), quoted literals: `code`), and
  proper nouns (capitalised words that do not start a sentence: `proper`);
- `content`: the content words (`cachetune.text.content_words`, stemmed; languages and code literals left out), so
  that a guard can see one prompt say everything the other says and more ("a remote git branch", "free parking").

`disagreements(a, b, guards)` names the guards whose facts differ. Each guard is built for precision (a rewording
must pass): `numbers`, `dates` and `names` refuse only a swap (each side has one the other lacks), not a detail
one side leaves out; `negation` refuses only when the word one side negates stands un-negated in the other;
`scope` refuses when one prompt's content words are a strict subset of the other's (narrowed or widened).
"""

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache

from cachetune.text import content_words

GUARDS = ("numbers", "dates", "negation", "operations", "names", "scope")

_NUMBER_WORDS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
    "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50,
    "hundred": 100, "thousand": 1000, "million": 1_000_000, "first": 1, "second": 2, "third": 3, "fourth": 4,
    "fifth": 5, "sixth": 6, "seventh": 7, "eighth": 8, "ninth": 9, "tenth": 10, "twice": 2, "once": 1,
    "single": 1, "double": 2, "triple": 3, "half": 0.5, "dozen": 12,
}  # fmt: skip
# "second" is a unit too ("wait a second"); as a count it is read as 2 only before a noun-ish word, see _numbers.
_CURRENCY_SYMBOLS = {"£": "gbp", "$": "usd", "€": "eur", "¥": "jpy", "₹": "inr"}
_CURRENCY_WORDS = {
    "gbp": "gbp", "pound": "gbp", "pounds": "gbp", "usd": "usd", "dollar": "usd", "dollars": "usd", "eur": "eur",
    "euro": "eur", "euros": "eur", "inr": "inr", "rupees": "inr", "yen": "jpy", "jpy": "jpy",
}  # fmt: skip
_UNITS = {
    "mg": "mg", "milligram": "mg", "milligrams": "mg", "g": "g", "gram": "g", "grams": "g", "kg": "kg",
    "kilogram": "kg", "kilograms": "kg", "mcg": "mcg", "ml": "ml", "l": "l", "litre": "l", "liter": "l",
    "litres": "l", "liters": "l", "lb": "lb", "lbs": "lb", "pounds-weight": "lb", "km": "km", "kilometers": "km",
    "kilometres": "km", "mile": "mile", "miles": "mile", "m": "m", "meter": "m", "metre": "m", "meters": "m",
    "cm": "cm", "mm": "mm", "inch": "inch", "inches": "inch", "ft": "ft", "feet": "ft", "%": "%", "percent": "%",
    "kb": "kb", "mb": "mb", "gb": "gb", "tb": "tb", "px": "px", "ms": "ms", "s": "s", "sec": "s", "secs": "s",
    "seconds": "s", "minute": "min", "minutes": "min", "min": "min", "mins": "min", "hour": "hour", "hours": "hour",
    "hr": "hour", "hrs": "hour", "day": "day", "days": "day", "week": "week", "weeks": "week", "month": "month",
    "months": "month", "year": "year", "years": "year", "yr": "year", "night": "night", "nights": "night",
    "bit": "bit", "bits": "bit", "byte": "byte", "bytes": "byte", "degrees": "degree", "degree": "degree",
    "c": "c", "f": "f", "x": "x", "times": "x", "am": "am", "pm": "pm",
}  # fmt: skip
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october", "november", "december")
_AMBIGUOUS_MONTHS = {"may", "march"}  # months only when capitalised
_RELATIVE_DAYS = {"today", "tomorrow", "yesterday", "tonight", "weekend", "weekends", "weekday", "weekdays", "morning", "evening"}

_NOT_NAMES = {"i", "i'm", "i've", "i'd", "i'll", "ok", "okay", "hi", "hello", "thanks", "please", "yes", "no"}
_NEGATION_CUES = {"not", "no", "never", "without", "none", "nobody", "nothing", "neither", "nor", "cannot", "nowhere"}
# Words between a cue and what it negates ("do not even try", "never really worked").
_NEGATION_SKIP = {
    "a",
    "an",
    "the",
    "to",
    "be",
    "been",
    "even",
    "really",
    "yet",
    "any",
    "just",
    "always",
    "ever",
    "longer",
    "more",
    "get",
    "have",
}

# Opposed words: a prompt with one side and another with the other ask for opposite things.
OPPOSITES = (
    ("enable", "disable"), ("open", "close"), ("opened", "closed"), ("open", "closed"), ("include", "exclude"),
    ("on", "off"), ("add", "remove"), ("add", "delete"), ("add", "drop"), ("insert", "delete"), ("start", "stop"),
    ("install", "uninstall"), ("encode", "decode"), ("encrypt", "decrypt"), ("compress", "decompress"),
    ("zip", "unzip"), ("read", "write"), ("upload", "download"), ("import", "export"), ("push", "pull"),
    ("lock", "unlock"), ("show", "hide"), ("increase", "decrease"), ("increase", "reduce"), ("raise", "lower"),
    ("maximum", "minimum"), ("max", "min"), ("largest", "smallest"), ("biggest", "smallest"), ("highest", "lowest"),
    ("high", "low"), ("first", "last"), ("ascending", "descending"), ("before", "after"), ("above", "below"),
    ("upper", "lower"), ("uppercase", "lowercase"), ("left", "right"), ("begin", "end"), ("beginning", "end"),
    ("start", "end"), ("prefix", "suffix"), ("leading", "trailing"), ("horizontal", "vertical"), ("row", "column"),
    ("rows", "columns"), ("merge", "split"), ("join", "split"), ("concatenate", "split"), ("serialize", "deserialize"),
    ("buy", "sell"), ("deposit", "withdraw"), ("subscribe", "unsubscribe"), ("allow", "block"), ("allow", "deny"),
    ("accept", "reject"), ("approve", "reject"), ("pass", "fail"), ("win", "lose"), ("gain", "lose"),
    ("connect", "disconnect"), ("mount", "unmount"), ("expand", "collapse"), ("send", "receive"), ("input", "output"),
    ("plus", "minus"), ("add", "subtract"), ("multiply", "divide"), ("inner", "outer"), ("public", "private"),
    ("local", "global"), ("local", "remote"), ("sync", "async"), ("synchronous", "asynchronous"), ("true", "false"),
    ("forward", "backward"), ("next", "previous"), ("older", "newer"), ("oldest", "newest"), ("early", "late"),
    ("earlier", "later"), ("longer", "shorter"), ("longest", "shortest"), ("more", "less"), ("more", "fewer"),
    ("larger", "smaller"), ("bigger", "smaller"), ("faster", "slower"), ("hot", "cold"), ("warm", "cold"),
    ("morning", "night"), ("morning", "evening"), ("day", "night"), ("adult", "child"), ("adults", "children"),
    ("male", "female"), ("men", "women"), ("man", "woman"), ("hyper", "hypo"), ("hyperthyroidism", "hypothyroidism"),
    ("hypertension", "hypotension"), ("hyperglycemia", "hypoglycemia"), ("acute", "chronic"), ("benign", "malignant"),
    ("positive", "negative"), ("overdose", "deficiency"), ("raise", "reduce"), ("raise", "lower"), ("gain", "loss"),
    ("starting", "stopping"), ("arrival", "departure"), ("arrive", "depart"), ("inbound", "outbound"),
    ("domestic", "international"), ("refund", "charge"), ("credit", "debit"), ("income", "expense"), ("import", "export"),
    ("cancel", "keep"), ("cancel", "renew"), ("cancel", "book"), ("upgrade", "downgrade"), ("pause", "resume"),
    ("activate", "deactivate"), ("freeze", "unfreeze"), ("join", "leave"), ("lend", "borrow"), ("pay", "receive"),
    ("include", "omit"), ("with", "without"), ("inside", "outside"), ("over", "under"), ("min", "max"),
    ("top", "bottom"), ("head", "tail"), ("even", "odd"), ("odd", "even"), ("lazy", "eager"), ("shallow", "deep"),
    ("mutable", "immutable"), ("static", "dynamic"), ("valid", "invalid"), ("visible", "invisible"), ("set", "unset"),
    ("online", "offline"), ("login", "logout"), ("sign in", "sign out"), ("check in", "check out"),
)  # fmt: skip

# Known names by sight, lower-cased, by class (a trap swaps one for another of its class; a guard treats them alike).
TECH_CLASSES = {
    "language": """python java javascript typescript c c++ c# go rust ruby php perl r scala kotlin swift matlab julia haskell
        lua dart elixir erlang clojure fortran bash powershell""",
    "python-library": """numpy pandas scipy matplotlib seaborn plotly sklearn tensorflow keras pytorch django flask fastapi
        requests beautifulsoup selenium scrapy sqlalchemy pytest asyncio tkinter opencv pillow nltk spacy""",
    "web": "jquery react angular vue svelte node nodejs",
    "tool": "npm yarn pip conda virtualenv git docker kubernetes vim emacs vscode eclipse intellij xcode maven gradle",
    "format": "html css xml json yaml toml csv tsv xlsx excel pdf markdown latex",
    "system": "linux windows macos ubuntu debian centos android ios",
    "database": "mysql postgresql sqlite mongodb redis elasticsearch oracle cassandra dynamodb",
    "browser": "chrome firefox safari edge opera",
    "cloud": "aws azure gcp heroku vercel",
    "app": "outlook gmail slack zoom teams whatsapp paypal",
}
_TECH = frozenset(name for names in TECH_CLASSES.values() for name in names.split()) | frozenset(
    "python2 python3 js ts cpp csharp golang sh zsh shell sql regex scikit-learn torch jax pydantic unittest pyqt cv2 pil bs4 "
    "venv github gitlab k8s osx mac postgres mssql spark hadoop kafka airflow nginx apache tomcat spring hibernate junit "
    "dotnet .net lambda s3 ec2 iphone ipad macbook visa mastercard amex".split()
)

_LANGUAGES = frozenset(TECH_CLASSES["language"].split())
# Words a rewording adds without narrowing anything ("explain what X is", "is it possible to", "what does X mean").
_SCOPE_FILLER = frozenset(
    "s t explain mean meaning work works possible available offer tell know need want like help there someone anyone "
    "ok okay hi hello thanks thank way best good question ask".split()
)
LITERAL = re.compile(r"`[^`]+`|'[^'\s][^']*'|\"[^\"]+\"")
_SENTENCE_END = re.compile(r"[.!?:;]$")
_TOKEN = re.compile(
    r"`[^`]+`|'[^'\s][^']*'|\"[^\"]+\"|[£$€¥₹]\s?\d[\d,]*(?:\.\d+)?|\d+(?::\d\d)?(?:[.,]\d+)*(?:st|nd|rd|th)?%?|[\w+#]+(?:[.'’\-][\w+#]+)*(?:\(\))?|[^\w\s]"
)
_IDENTIFIER = re.compile(r"^(?:[A-Za-z_]\w*_\w*|[a-z]+[A-Z]\w*|[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+|\w+\(\))$")
_NUMBER = re.compile(r"^(\d[\d,]*(?:\.\d+)?)(st|nd|rd|th|%)?$")
_TIME = re.compile(r"^(\d{1,2}):(\d\d)$")
_VERSION = re.compile(r"^\d+(?:\.\d+){2,}$")


@dataclass(frozen=True)
class Facts:
    """The facts of one prompt (see the module's docstring)."""

    numbers: tuple[str, ...]  # sorted, with repeats: "3D ... three arrays" says 3 twice
    dates: tuple[str, ...]
    negated: tuple[str, ...]  # per negation cue, the word it negates ("cancel" in "don't cancel it"; "" for none)
    operations: frozenset[tuple[int, int]]  # (index of the opposed pair, side 0 or 1)
    names: frozenset[tuple[str, str]]  # (class, lower-cased name)
    words: frozenset[str]  # every lower-cased word and its stem, to ask whether the other prompt says a name at all
    content: frozenset[str]  # stemmed content words, languages and code literals left out

    @property
    def polarity(self) -> int:
        """1 when the prompt is negated an odd number of times."""
        return len(self.negated) % 2


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).replace("’", "'")


def stem(word: str) -> str:
    """A crude English stem, enough to match enable/enabled/enables/enabling, include/including and row/rows."""
    word = word.lower()
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 2 and word.endswith(suffix) and not word.endswith("ss"):
            word = word[: -len(suffix)]
            if len(word) > 3 and word[-1] == word[-2] and word[-1] not in "ls":
                word = word[:-1]  # stopped -> stop, but not called -> cal
            break
    return word[:-1] if len(word) > 3 and word.endswith("e") else word


@lru_cache(maxsize=1)
def _opposites_by_stem() -> dict[str, list[tuple[int, int]]]:
    by_stem: dict[str, list[tuple[int, int]]] = {}
    for number, pair in enumerate(OPPOSITES):
        for side, word in enumerate(pair):
            by_stem.setdefault(" ".join(stem(part) for part in word.split()), []).append((number, side))
    return by_stem


def tokens(text: str) -> list[str]:
    """The prompt's tokens: quoted literals, amounts, numbers, words (with inner dots, dashes and apostrophes), punctuation."""
    return _TOKEN.findall(_fold(text))


def _normal_number(digits: str) -> str:
    value = float(digits.replace(",", ""))
    return str(int(value)) if value.is_integer() else f"{value:g}"


def _numbers(words: list[str], lower: list[str]) -> list[str]:
    found = []
    for index, token in enumerate(words):
        word = lower[index]
        after = lower[index + 1] if index + 1 < len(lower) else ""
        unit = _UNITS.get(after) or _CURRENCY_WORDS.get(after)
        if token[:1] in _CURRENCY_SYMBOLS and len(token) > 1:
            found.append(f"{_normal_number(token[1:].strip())} {_CURRENCY_SYMBOLS[token[0]]}")
        elif _VERSION.match(token):
            found.append(token)
        elif match := _TIME.match(token):
            hour = int(match.group(1)) + (12 if after == "pm" and int(match.group(1)) < 12 else 0)
            found.append(f"{hour:02d}:{match.group(2)}")
        elif match := _NUMBER.match(token):
            number = _normal_number(match.group(1))
            if match.group(2) == "%":
                unit = "%"
            if unit in ("am", "pm"):
                found.append(f"{int(float(number)) % 12 + (12 if unit == 'pm' else 0):02d}:00")
            else:
                found.append(f"{number} {unit}" if unit else number)
        elif match := re.fullmatch(r"[a-z]+-(\d+(?:\.\d+)?)", word):  # utf-16, covid-19, x86-64: the number is the point
            found.append(_normal_number(match.group(1)))
        elif word in _NUMBER_WORDS and not (word == "second" and (not after or after in _UNITS or after in ("one",))):
            if word in ("one", "once", "single") and after not in _UNITS:
                continue  # "more than one", "once I have", "a single list": a pronoun or a manner, not a count to compare
            value = _NUMBER_WORDS[word]
            found.append(f"{value:g} {unit}" if unit and not isinstance(unit, int) else f"{value:g}")
    return found


def _dates(words: list[str], lower: list[str]) -> list[str]:
    found = []
    for token, word in zip(words, lower):
        if word in _WEEKDAYS or word.rstrip("s") in _WEEKDAYS:
            found.append(word.rstrip("s") if word.rstrip("s") in _WEEKDAYS else word)
        elif word in _MONTHS and (word not in _AMBIGUOUS_MONTHS or token[:1].isupper()):
            found.append(word)
        elif word in _RELATIVE_DAYS:
            found.append(word.rstrip("s"))
    return found


def _negated(lower: list[str]) -> tuple[str, ...]:
    found = []
    for index, word in enumerate(lower):
        if word in _NEGATION_CUES or word.endswith("n't"):
            if word == "no" and index + 1 < len(lower) and lower[index + 1] in ("module", "attribute", "such", "matter"):
                continue  # error messages ("No module named x") and idioms, not a negated request
            target = ""
            for following in lower[index + 1 : index + 5]:
                if following in _NEGATION_SKIP or following in _NEGATION_CUES:
                    continue
                if re.match(r"^\w", following):
                    target = stem(following)
                break
            found.append(target)
    return tuple(found)


def _operations(lower: list[str]) -> set[tuple[int, int]]:
    by_stem = _opposites_by_stem()
    stems = [stem(word) for word in lower]
    found = set()
    for index, word_stem in enumerate(stems):
        for key in (word_stem, f"{word_stem} {stems[index + 1]}" if index + 1 < len(stems) else None):
            if key in by_stem:
                found.update(by_stem[key])
    return found


def _names(words: list[str], lower: list[str]) -> set[tuple[str, str]]:
    found = set()
    alphabetic = [token for token in words if token[:1].isalpha()]
    title_case = sum(token[:1].isupper() for token in alphabetic) > len(alphabetic) / 2  # "How To Sort A List": no names
    for index, token in enumerate(words):
        word = lower[index]
        if token[:1] in "`'\"" and len(token) > 2:
            found.add(("code", token[1:-1].strip().lower()))
        elif word in _TECH or word.rstrip(".") in _TECH:
            found.add(("tech", word.rstrip(".")))
        elif _IDENTIFIER.match(token) and not re.match(r"^\d", token):
            found.add(("code", word))
        elif (
            not title_case
            and token[:1].isupper()
            and index > 0
            and not _SENTENCE_END.search(words[index - 1])
            and words[index - 1] not in ('"', "'", "(", "-")
        ):
            if word not in _NOT_NAMES and word.rstrip("s") not in _WEEKDAYS and word not in _MONTHS and not re.match(r"^\d", token):
                found.add(("proper", word))
    return found


@lru_cache(maxsize=4096)
def facts_of(text: str) -> Facts:
    """The facts of `text` (see the module's docstring); cached, since a check compares one prompt with several."""
    words = [t for t in tokens(text) if t.strip()]
    lower = [t.lower() for t in words]
    plain = [w for w in lower if re.match(r"^[\w`'\"]", w)]
    return Facts(
        numbers=tuple(sorted(_numbers(words, lower))),
        dates=tuple(sorted(_dates(words, lower))),
        negated=_negated(["none_value" if token == "None" else word for token, word in zip(words, lower)]),  # Python's None is no negation
        operations=frozenset(_operations(lower)),
        names=frozenset(_names(words, lower)),
        words=frozenset(plain) | frozenset(stem(w) for w in plain) | frozenset(w.strip("`'\"") for w in plain),
        content=frozenset(stem(w) for w in content_words(LITERAL.sub(" ", text)) if w not in _LANGUAGES and w not in _SCOPE_FILLER),
    )


def _swap(mine: tuple[str, ...], theirs: tuple[str, ...]) -> bool:
    """Each side has a value the other lacks (counted with repeats): a changed value, not one a side leaves out."""
    a, b = Counter(mine), Counter(theirs)
    return bool(a - b) and bool(b - a)


def _names_swapped(a: Facts, b: Facts) -> bool:
    """Within one class of name, each side names something the other does not say at all (in any case or form)."""
    for kinds in (("tech", "proper"), ("code",)):  # a known name and a capitalised one are one class: "hepatitis A" / "C"
        only_a = {name for k, name in a.names if k in kinds and name not in b.words and stem(name) not in b.words}
        only_b = {name for k, name in b.names if k in kinds and name not in a.words and stem(name) not in a.words}
        if only_a and only_b:
            return True
    return False


def _negation_differs(a: Facts, b: Facts) -> bool:
    """One side negates a word the other says without negating it ("don't cancel it" / "cancel it")."""
    if a.polarity == b.polarity:
        return False
    negated, plain = (a, b) if a.polarity else (b, a)
    return any(target and target not in plain.negated and target in plain.words for target in negated.negated)


def _operations_opposed(a: Facts, b: Facts) -> bool:
    """One side says one word of an opposed pair, the other the other word, and neither says both."""

    def sides(facts: Facts) -> dict[int, set[int]]:
        found: dict[int, set[int]] = {}
        for pair, side in facts.operations:
            found.setdefault(pair, set()).add(side)
        return found

    sides_a, sides_b = sides(a), sides(b)
    return any(len(said) == 1 and len(sides_b.get(pair, ())) == 1 and said != sides_b[pair] for pair, said in sides_a.items())


def _scope_differs(a: Facts, b: Facts) -> bool:
    """One prompt says everything the other says, and more: narrowed ("free parking") or widened."""
    return bool(a.content) and bool(b.content) and a.content != b.content and (a.content < b.content or b.content < a.content)


_CHECKS = {
    "numbers": lambda a, b: _swap(a.numbers, b.numbers),
    "dates": lambda a, b: _swap(a.dates, b.dates),
    "negation": _negation_differs,
    "operations": _operations_opposed,
    "names": _names_swapped,
    "scope": _scope_differs,
}


def disagreements(first: str, second: str, guards: tuple[str, ...] | list[str] = GUARDS) -> list[str]:
    """The guards (of `guards`, in their order) whose facts differ between the two prompts; [] when all agree.

    Raises:
        ValueError: a guard that is not one of GUARDS.
    """
    unknown = [guard for guard in guards if guard not in _CHECKS]
    if unknown:
        raise ValueError(f"unknown guard {', '.join(unknown)}; known: {', '.join(GUARDS)}")
    a, b = facts_of(first), facts_of(second)
    return [guard for guard in guards if _CHECKS[guard](a, b)]
