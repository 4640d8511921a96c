from cachetune.text import clean_text, match_key


def test_clean_text_normalises_unicode_and_whitespace():
    assert clean_text("  Caf\u0065\u0301\n\tlatte\x07  ") == "Caf\u00e9 latte"


def test_match_key_ignores_case_punctuation_and_spacing():
    assert match_key("What is (are) Diabetes ?") == match_key("what is are diabetes") == "what is are diabetes"
    assert match_key("type 1 diabetes") != match_key("type 2 diabetes")
