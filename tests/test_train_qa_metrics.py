"""SQuAD exact match and F1 (hub.train.qa_metrics) on cases checked by hand against the official script's rules."""
import pytest

from hub.train.qa_metrics import exact_match, f1, normalize_answer, score


@pytest.mark.parametrize("text, normal", [
    ("The Eiffel Tower!", "eiffel tower"),
    ("  an   apple, a pear ", "apple pear"),
    ("Theatre", "theatre"),  # 'the' only as a word
    ("U.S.A.", "usa"),
    ("", ""),
])
def test_normalisation(text, normal):
    assert normalize_answer(text) == normal


@pytest.mark.parametrize("prediction, gold, em, f", [
    ("Paris", "paris", 1.0, 1.0),
    ("the city of Paris", "Paris", 0.0, 2 * (1 / 3) * 1 / (1 / 3 + 1)),  # 1 shared of 3 predicted, 1 gold: 0.5
    ("born in 1879", "1879 in Ulm", 0.0, 2 / 3),  # 2 shared (in, 1879) of 3 and 3 tokens
    ("new york new york", "new york", 0.0, 2 * 0.5 * 1.0 / 1.5),  # shared tokens count as a multiset
    ("London", "Paris", 0.0, 0.0),
    ("the", "a", 1.0, 1.0),  # both normalise to no tokens
    ("the", "Paris", 0.0, 0.0),
])
def test_exact_match_and_f1(prediction, gold, em, f):
    assert exact_match(prediction, gold) == em
    assert f1(prediction, gold) == pytest.approx(f)


def test_a_question_scores_its_best_gold_answer_and_unanswerable_ones_want_nothing():
    assert score("Denver Broncos", ["Broncos", "Denver Broncos", "the Broncos"]) == (1.0, 1.0)
    assert score("Broncos team", ["Denver Broncos", "Carolina"]) == (0.0, pytest.approx(0.5))
    assert score("", []) == (1.0, 1.0) and score("Paris", []) == (0.0, 0.0)
    assert score("", ["the"]) == (1.0, 1.0)  # a gold answer that normalises to nothing counts as none
