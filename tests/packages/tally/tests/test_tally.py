from tally import count_words, most_common


def test_count_words():
    assert count_words("a b a") == {"a": 2, "b": 1}


def test_most_common():
    assert most_common("b a b") == "b"
    assert most_common("") == ""
