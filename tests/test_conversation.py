"""The context check of the gateway's lookup (cachetune.conversation), and the conversation set it is measured on."""

import pytest

from cachetune.conversation import context_key, context_refusal, stands_alone
from cachetune.evaluate.conversations import MUST_NOT_HIT, SHOULD_HIT, conversation_metrics, conversation_pairs

KETTLE = [("user", "I ordered a blue kettle, order 48213, and it arrived broken."), ("assistant", "I can refund the £34.")]


def test_a_first_message_and_a_standalone_one_are_keyed_as_without_context():
    for mode in ("none", "exact", "facts"):
        assert context_key(mode, [], "cancel it") == ""
        assert context_key(mode, KETTLE, "How do I reverse a list in Python without copying?") == ""
    assert not stands_alone("Please arrange that.") and not stands_alone("What should I eat?")
    with pytest.raises(ValueError, match="context mode 'all'"):
        context_key("all", KETTLE, "do it")


def test_exact_keys_a_follow_up_by_its_turns_small_talk_aside():
    key = context_key("exact", KETTLE, "Please arrange that.")
    assert key.startswith("exact:") and context_key("none", KETTLE, "Please arrange that.") == ""
    chatty = [("user", "Hi there!"), ("assistant", "Hello! How can I help you today?"), *[(r, t.upper()) for r, t in KETTLE]]
    assert context_key("exact", chatty, "Please arrange that.") == key
    other = [("user", "I ordered a red kettle, order 48213, and it arrived broken."), KETTLE[1]]
    assert context_key("exact", other, "Please arrange that.") != key


def test_facts_refuses_turns_that_change_negate_or_narrow_what_was_said():
    assert context_key("facts", KETTLE, "Please arrange that.") == "follow-up"
    reworded = [("user", "Order 48213 was a blue kettle and it came damaged."), ("assistant", "We can give you back the £34.")]
    assert context_refusal(KETTLE, reworded) is None
    assert (
        context_refusal(KETTLE, [("user", "I ordered a blue kettle, order 48271, and it arrived broken."), KETTLE[1]]) == "context:numbers"
    )
    assert context_refusal(KETTLE, [(KETTLE[0][0], KETTLE[0][1] + " I don't want a refund."), KETTLE[1]]) == "context:negation"
    assert context_refusal([("user", "My laptop is slow.")], [("user", "My phone is slow.")]) == "context:exact"  # no fact to compare


def test_the_conversation_set_has_every_kind_in_three_domains_and_only_context_modes_tell_them_apart():
    pairs = conversation_pairs()
    assert len(pairs) >= 150 and {p.domain for p in pairs} == {"customer_service", "programming", "medical"}
    assert all(sum(p.kind == kind for p in pairs) >= 25 for kind in SHOULD_HIT + MUST_NOT_HIT)
    assert all(2 <= len(p.new) <= 9 and p.new[-1][0] == "user" for p in pairs)
    assert {p.domain for p in conversation_pairs({"medical"})} == {"medical"}
    # With a threshold every pair passes on its last messages alone, only the context decides.
    vector_of = {text: [1.0] for p in pairs for text in (p.stored[-1][1], p.new[-1][1])}
    modes = conversation_metrics(pairs, {t: __import__("numpy").array(v) for t, v in vector_of.items()}, 0.5)["modes"]
    assert modes["none"]["wrong_hits"] == sum(p.kind in MUST_NOT_HIT for p in pairs)
    assert modes["exact"]["kinds"]["context_swapped"]["served"] == 0 and modes["exact"]["kinds"]["chatter"]["served"] > 0
