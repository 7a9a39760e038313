"""Exact match and F1 of extractive question answering, as the official SQuAD evaluation script defines them.

No maintained package computes them offline (the ``evaluate`` library fetches its ``squad`` script from the
network), so they are written here after the SQuAD v1.1 / v2.0 scripts: both texts are normalised (lower
case, punctuation and the articles a/an/the removed, whitespace collapsed); exact match is 1 when the
normalised texts are equal; F1 is the harmonic mean of the precision and recall of their shared tokens (a
multiset). A question scores the best over its gold answers. An unanswerable question (SQuAD v2: no gold
answers) scores 1 when the prediction is empty, else 0, for both metrics.
"""
from __future__ import annotations

import re
import string
from collections import Counter

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCTUATION = set(string.punctuation)


def normalize_answer(text: str) -> str:
    """Lower case, without punctuation, articles and extra whitespace (SQuAD's ``normalize_answer``)."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


def f1(prediction: str, gold: str) -> float:
    """Token-overlap F1 of the normalised texts; when either has no tokens, 1 if both have none, else 0."""
    predicted, wanted = normalize_answer(prediction).split(), normalize_answer(gold).split()
    if not predicted or not wanted:
        return float(predicted == wanted)
    shared = sum((Counter(predicted) & Counter(wanted)).values())
    if shared == 0:
        return 0.0
    precision, recall = shared / len(predicted), shared / len(wanted)
    return 2 * precision * recall / (precision + recall)


def score(prediction: str, golds: list[str]) -> tuple[float, float]:
    """(exact match, F1) of one prediction: the best over the gold answers; no gold answers means unanswerable."""
    golds = [g for g in golds if normalize_answer(g)] or [""]
    return max(exact_match(prediction, g) for g in golds), max(f1(prediction, g) for g in golds)
