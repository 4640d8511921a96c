"""Prompts, output parsing and the filters that decide what of an LLM's answer becomes training data."""

import json

from cachetune.synth.filters import filter_texts, parse_output
from cachetune.synth.prompts import load_prompt, output_schema
from cachetune.text import content_words


def test_prompt_has_worked_examples_then_the_query():
    prompt = load_prompt("medical")
    messages = prompt.messages("Is hepatitis C curable?", paraphrases=3, negatives=2)
    assert messages[0]["role"] == "system" and "type 1 -> type 2" in messages[0]["content"]
    assert [m["role"] for m in messages[1:-1]] == ["user", "assistant"] * len(prompt.examples)
    assert json.loads(messages[2]["content"]).keys() == {"paraphrases", "negatives"}
    assert messages[-1] == {"role": "user", "content": "Question: Is hepatitis C curable?\nWrite 3 paraphrases and 2 negatives."}
    assert prompt.version == "medical-v2"


def test_unknown_domain_uses_the_generic_prompt_and_counts_follow_the_flags():
    assert load_prompt("legal").version == "generic-v2"
    one = load_prompt("programming").messages("sort a dict", paraphrases=1, negatives=1)
    assert all(len(v) == 1 for v in json.loads(one[2]["content"]).values())
    schema = output_schema(4, 2)
    assert schema["properties"]["paraphrases"]["minItems"] == 4 == schema["properties"]["paraphrases"]["maxItems"]
    assert list(schema["properties"]) == ["paraphrases", "negatives"]


def test_paraphrases_only_leaves_negatives_out_of_the_prompt_and_the_schema():
    messages = load_prompt("programming").messages("sort a dict by value", paraphrases=3, negatives=0)
    assert "negatives" not in messages[0]["content"] and messages[0]["content"].endswith("Answer with JSON only.")
    assert all(json.loads(m["content"]).keys() == {"paraphrases"} for m in messages[2:-1:2])
    assert messages[-1]["content"] == "Question: sort a dict by value\nWrite 3 paraphrases."
    assert list(output_schema(3, 0)["properties"]) == ["paraphrases"] == output_schema(3, 0)["required"]
    assert parse_output('{"paraphrases": ["a", "b"]}') == (["a", "b"], [])


def test_parse_output_accepts_only_the_asked_shape():
    assert parse_output('{"paraphrases": ["a"], "negatives": ["b"]}') == (["a"], ["b"])
    for garbage in ("not json", '["a"]', '{"paraphrases": "a", "negatives": []}', '{"paraphrases": [1], "negatives": []}', ""):
        assert parse_output(garbage) is None, garbage


def test_filters_drop_copies_rewordings_and_junk_with_reasons():
    query = "How do I reverse a list in Python?"
    kept = filter_texts(
        query,
        [
            "how do I reverse a list in python",
            "Flip the order of a Python list",
            "flip the order of a python list!",
            "  ",
            "python flip list order " * 20,
        ],
        [
            "How to reverse a list in Python",
            "Flip the order of a Python list.",
            "How do I reverse a string in Python?",
            "reverse a string in python",
        ],
    )
    assert kept.paraphrases == ["Flip the order of a Python list"]
    assert kept.negatives == ["How do I reverse a string in Python?"]
    assert kept.rejects == {
        "paraphrase_equals_query": 1,
        "duplicate_paraphrase": 1,
        "empty": 1,
        "too_long": 1,
        "negative_rewords_query": 1,
        "negative_equals_paraphrase": 1,
        "duplicate_negative": 1,
    }


def test_content_words_keep_what_changes_an_answer():
    assert content_words("How do I reverse a list?") == content_words("reverse lists")
    assert content_words("symptoms of type 1 diabetes") != content_words("symptoms of type 2 diabetes")
    assert content_words("why is my build slow") != content_words("is my build slow")
    assert "not" in content_words("why does it not compile")
