"""Metrics against values worked out by hand."""
from __future__ import annotations

import numpy as np
import pytest

from hub.train import metrics as M


def test_confusion_and_accuracy():
    y_true = [0, 0, 1, 1, 2, 2, 2]
    y_pred = [0, 1, 1, 1, 2, 0, 2]
    cm = M.confusion_matrix(y_true, y_pred, 3)
    assert cm.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 2]]
    assert M.accuracy(y_true, y_pred) == pytest.approx(5 / 7)


def test_precision_recall_f1_by_hand():
    cm = M.confusion_matrix([0, 0, 1, 1, 2, 2, 2], [0, 1, 1, 1, 2, 0, 2], 3)
    stats = M.precision_recall_f1(cm)
    # class 0: tp 1, predicted 2, support 2; class 1: tp 2, predicted 3, support 2; class 2: tp 2, pred 2, support 3
    assert stats["precision"].tolist() == pytest.approx([1 / 2, 2 / 3, 1.0])
    assert stats["recall"].tolist() == pytest.approx([1 / 2, 1.0, 2 / 3])
    f1 = [0.5, 2 * (2 / 3) / (5 / 3), 2 * (2 / 3) / (5 / 3)]
    assert stats["f1"].tolist() == pytest.approx(f1)
    assert stats["f1_macro"] == pytest.approx(sum(f1) / 3)
    assert stats["precision_macro"] == pytest.approx((1 / 2 + 2 / 3 + 1) / 3)


def test_class_never_predicted_or_absent():
    cm = M.confusion_matrix([0, 0, 1], [0, 0, 0], 3)  # class 2 absent everywhere, class 1 never predicted
    stats = M.precision_recall_f1(cm)
    assert stats["precision"][1] == 0 and stats["recall"][1] == 0
    assert stats["recall_macro"] == pytest.approx((1 + 0) / 2)  # class 2 does not count


def test_top_k():
    scores = np.array([[0.1, 0.5, 0.4], [0.6, 0.3, 0.1], [0.2, 0.3, 0.5]])
    y = [2, 1, 0]
    assert M.top_k_accuracy(scores, y, 1) == 0
    assert M.top_k_accuracy(scores, y, 2) == pytest.approx(2 / 3)
    assert M.top_k_accuracy(scores, y, 3) == 1


def test_classification_report_has_per_class_and_confusion():
    cm = M.confusion_matrix([0, 1, 1], [0, 1, 0], 2)
    report = M.classification_report(cm, ["cat", "dog"], {5: 3}, loss_sum=1.5)
    assert report["accuracy"] == pytest.approx(2 / 3)
    assert report["top5_accuracy"] == 1.0 and report["loss"] == pytest.approx(0.5)
    assert report["per_class"]["dog"] == {"precision": 1.0, "recall": 0.5, "f1": pytest.approx(2 / 3), "support": 2}
    assert report["confusion"] == [[1, 0], [1, 1]]


def test_recall_at_k_by_hand():
    images = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    texts = np.array([[1.0, 0.1], [1.0, 0.9], [0.0, 1.0]])
    # cosine ranks: image 0 -> t0 (hit@1); image 1 -> t2, t1 (hit@2); image 2 -> t1, t0, t2 (hit@3)
    r = M.recall_at_k(images, texts, ks=(1, 2, 3))
    assert (r[1], r[2], r[3]) == (pytest.approx(1 / 3), pytest.approx(2 / 3), 1.0)


def test_identical_captions_count_as_hits():
    images = np.array([[1.0, 0.0], [0.9, 0.1]])
    texts = np.array([[0.0, 1.0], [1.0, 0.0]])
    plain = M.retrieval_report(images, texts, None, ks=(1,))
    same = M.retrieval_report(images, texts, ["a cat", "a cat"], ks=(1,))
    assert plain["i2t_recall@1"] == 0.5 and same["i2t_recall@1"] == 1.0


def test_wer_and_cer():
    assert M.edit_distance("kitten", "sitting") == 3
    refs = ["the cat sat on the mat", "hello world"]
    hyps = ["the cat sat on mat", "hello there world"]
    assert M.wer_counts(refs, hyps) == (2, 8)  # one deletion, one insertion
    assert M.wer(refs, hyps) == pytest.approx(0.25)
    assert M.wer(["A B"], ["a  b"]) == 0  # case and spacing do not count
    assert M.cer_counts(["abc"], ["abd"]) == (1, 3)
    with pytest.raises(ValueError):
        M.wer(["a"], [])


def test_direction():
    assert M.lower_is_better("wer") and M.lower_is_better("loss") and not M.lower_is_better("accuracy")
