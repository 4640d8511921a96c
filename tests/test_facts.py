"""The facts a rewording keeps and a trap changes, the guards that compare them, and the rules that make traps."""

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cachetune.decision import Decider, VerifySettings
from cachetune.facts import GUARDS, disagreements, facts_of
from cachetune.synth.traps import TrapPool, traps_of

# (guard that must fire, stored prompt, new prompt)
TRAPS = [
    ("negation", "Cancel my subscription", "Don't cancel my subscription"),
    ("negation", "What happens if I take my antibiotics with food?", "What happens if I don't take my antibiotics with food?"),
    ("operations", "Is the store open on Sundays?", "Is the store closed on Sundays?"),
    ("operations", "How do I enable JavaScript in Chrome?", "How do I disable JavaScript in Chrome?"),
    ("operations", "Sort a list in ascending order", "Sort a list in descending order"),
    ("numbers", "Flights to Paris on the 3rd", "Flights to Paris on the 5th"),
    ("numbers", "What are the symptoms of type 1 diabetes?", "What are the symptoms of type 2 diabetes?"),
    ("numbers", "My plan renews at £10.99", "My plan renews at $10.99"),
    ("numbers", "How to install Python 3.8", "How to install Python 3.11"),
    ("dates", "Are you open on Saturday?", "Are you open on Sunday?"),
    ("names", "How do I reverse a list in Python?", "How do I reverse a list in Java?"),
    ("names", "Is hepatitis A contagious?", "Is hepatitis C contagious?"),
    ("names", "How do I cancel my Netflix subscription?", "How do I cancel my Spotify subscription?"),
    ("scope", "Is there parking at the hotel?", "Is there free parking at the hotel?"),
]
# The same question: no guard may refuse these.
REWORDINGS = [
    ("How do I reverse a list in Python?", "What's the way to reverse a Python list?"),
    ("Why does my code not work?", "Why doesn't my code work?"),
    ("meet at 3pm on Friday", "Can we meet at 15:00 on Friday?"),
    ("What is the dose of 5mg tablets", "dose of the 5 mg tablets"),
    ("How To Reverse A List", "reversing a list in python"),
    ("How to enable JavaScript in Chrome", "How do I turn on JavaScript in Chrome?"),
    ("Can I have two current accounts?", "is it allowed to hold more than one current account"),
    ("Python: sort a dict by value", "sort dictionary `d` by value"),
    ("Round a number to 2 decimal places", "round a float to two decimals"),
]


@pytest.mark.parametrize(("guard", "stored", "new"), TRAPS)
def test_each_guard_refuses_the_trap_it_is_for(guard, stored, new):
    assert guard in disagreements(stored, new)
    assert guard in disagreements(new, stored)  # whichever side was stored


@pytest.mark.parametrize(("stored", "new"), REWORDINGS)
def test_no_guard_refuses_a_rewording(stored, new):
    assert disagreements(stored, new) == []


def test_facts_normalise_numbers_units_currencies_and_times():
    facts = facts_of("My Flixora plan renews on the 14th at £10.99; take 5mg at 3pm, not 2 hours later")
    assert facts.numbers == ("10.99 gbp", "14", "15:00", "2 hour", "5 mg")
    assert ("proper", "flixora") in facts.names and facts.polarity == 1


def test_an_unknown_guard_is_refused_by_name():
    with pytest.raises(ValueError, match="unknown guard colour; known: numbers"):
        disagreements("a", "b", ("colour",))


# Words that exercise every guard: numbers and units, dates, negations, opposites, names, code, qualifiers.
VOCABULARY = (
    "How do I not don't cancel keep open closed enable disable 3rd 5 mg £10.99 3.8 two Monday May Python Java `df` "
    "Flixora the a list of rows in for children during pregnancy all first last ? , . '".split()
)
PROMPTS = st.text(max_size=120) | st.lists(st.sampled_from(VOCABULARY), max_size=14).map(" ".join)


@settings(max_examples=500, deadline=None)
@given(PROMPTS, PROMPTS)
def test_any_text_has_facts_and_every_guard_is_symmetric(first, second):
    assert disagreements(first, second, GUARDS) == disagreements(second, first, GUARDS)


@pytest.mark.parametrize(
    ("text", "kind", "guard"),
    [
        ("How do I enable JavaScript in Chrome?", "negation", "operations"),
        ("Why doesn't my code work?", "negation", "negation"),
        ("Flights to Paris on the 3rd", "number", "numbers"),
        ("install Python 3.8 on Ubuntu", "number", "numbers"),
        ("How do I reverse a list in Python?", "entity", "names"),
        ("What are the symptoms of flu in children?", "scope", "scope"),
    ],
)
def test_a_rule_made_trap_changes_what_its_kind_says(text, kind, guard):
    made = dict(traps_of(text, random.Random(0), TrapPool(), (kind,)))
    assert kind in made and made[kind] != text
    assert guard in disagreements(text, made[kind])


def test_traps_are_reproducible_and_take_names_and_qualifiers_from_the_corpus():
    pool = TrapPool.from_texts(["How do I pay with PayPal on Amazon?", "What are the side effects of aspirin during pregnancy?"])
    assert "Amazon" in pool.proper_nouns and "during pregnancy" in pool.qualifiers
    first = traps_of("Does Medicare cover dental implants?", random.Random(3), pool)
    assert first == traps_of("Does Medicare cover dental implants?", random.Random(3), pool)
    assert dict(first)["entity"] in ("Does PayPal cover dental implants?", "Does Amazon cover dental implants?")
    assert traps_of("ok", random.Random(0), pool, ("number", "entity")) == []  # nothing to change: no trap


def test_the_decision_skips_a_guarded_look_alike_for_the_true_repeat_below_it():
    decider = Decider(0.8, VerifySettings(guards=("numbers", "negation"), top_k=3, candidate_threshold=0.5))
    prompt = "How do I read the first 5 lines of a file in Python?"
    found = [
        ("How do I read the first 10 lines of a file in Python?", 0.95),  # a look-alike ranked first
        ("How can I read the first 5 lines of a file in Python?", 0.93),
        ("How can I read the first five lines from a file in python?", 0.90),
    ]
    verdict = decider.decide(prompt, found)
    assert (verdict.chosen, verdict.similarity) == (1, 0.93)
    assert [(r.index, r.reason) for r in verdict.refusals] == [(0, "guard:numbers"), (2, "outranked")]
    # Below the domain's threshold nothing is served, and every candidate says why.
    low = decider.decide(prompt, [(text, similarity - 0.2) for text, similarity in found])
    assert low.chosen is None and [r.reason for r in low.refusals] == ["guard:numbers", "threshold", "threshold"]
    # Without guards the cosine of the nearest entry decides, as before: the look-alike is served.
    assert Decider(0.8).decide(prompt, found).chosen == 0
