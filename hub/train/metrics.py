"""Evaluation metrics in plain numpy: classification, retrieval, speech recognition, segmentation.

Classification metrics are computed from a confusion matrix plus top-k hit counts, which are
sums: under torch.distributed each rank counts its share and one ``all_reduce`` makes them
global. Conventions (as scikit-learn's ``zero_division=0``): a class never predicted has
precision 0, a class absent from the references has recall 0; macro averages are over the
classes that occur in the references or the predictions.
"""
from __future__ import annotations

import numpy as np

LOWER_IS_BETTER = ("loss", "wer", "cer")


def lower_is_better(metric: str) -> bool:
    return metric in LOWER_IS_BETTER or metric.endswith("_loss")


def confusion_matrix(y_true, y_pred, num_classes: int) -> np.ndarray:
    """``cm[i, j]`` counts rows of true class i predicted as class j."""
    y_true = np.asarray(y_true, dtype=np.int64).ravel()
    y_pred = np.asarray(y_pred, dtype=np.int64).ravel()
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    return cm


def accuracy(y_true, y_pred) -> float:
    y_true, y_pred = np.asarray(y_true).ravel(), np.asarray(y_pred).ravel()
    return float((y_true == y_pred).mean()) if y_true.size else 0.0


def top_k_hits(scores, y_true, k: int) -> int:
    """How many rows have their true class among the ``k`` highest scores."""
    scores = np.asarray(scores)
    y_true = np.asarray(y_true).ravel()
    k = min(k, scores.shape[1])
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    return int((top == y_true[:, None]).any(axis=1).sum())


def top_k_accuracy(scores, y_true, k: int) -> float:
    n = len(np.asarray(y_true).ravel())
    return top_k_hits(scores, y_true, k) / n if n else 0.0


def precision_recall_f1(cm: np.ndarray) -> dict:
    """Per-class precision/recall/F1/support and their macro averages from a confusion matrix."""
    cm = np.asarray(cm, dtype=np.float64)
    tp = np.diag(cm)
    predicted, support = cm.sum(axis=0), cm.sum(axis=1)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    present = (support > 0) | (predicted > 0)
    macro = (lambda v: float(v[present].mean()) if present.any() else 0.0)
    return {"precision": precision, "recall": recall, "f1": f1, "support": support.astype(np.int64),
            "precision_macro": macro(precision), "recall_macro": macro(recall), "f1_macro": macro(f1)}


def classification_report(cm, labels: list[str] | None = None, topk_hits: dict | None = None,
                          loss_sum: float | None = None) -> dict:
    """The metrics dict of one classification evaluation (scalars, per-class, confusion)."""
    cm = np.asarray(cm, dtype=np.int64)
    n = int(cm.sum())
    stats = precision_recall_f1(cm)
    names = labels or [str(i) for i in range(cm.shape[0])]
    out = {"accuracy": float(np.trace(cm) / n) if n else 0.0}
    for k, hits in sorted((topk_hits or {}).items()):
        out[f"top{k}_accuracy"] = hits / n if n else 0.0
    out.update(precision_macro=stats["precision_macro"], recall_macro=stats["recall_macro"],
               f1_macro=stats["f1_macro"])
    if loss_sum is not None:
        out["loss"] = loss_sum / n if n else 0.0
    out["count"] = n
    out["per_class"] = {name: {"precision": float(stats["precision"][i]), "recall": float(stats["recall"][i]),
                               "f1": float(stats["f1"][i]), "support": int(stats["support"][i])}
                        for i, name in enumerate(names)}
    out["confusion"] = cm.tolist()
    return out


def segmentation_report(cm, labels: list[str] | None = None) -> dict:
    """Per-pixel metrics from a confusion matrix of pixels (true x predicted): mIoU, pixel accuracy.

    A class's IoU is ``tp / (tp + fp + fn)``; ``miou`` and ``mean_class_accuracy`` average over the
    classes that occur in the references or the predictions (a class absent from both has no IoU).
    """
    cm = np.asarray(cm, dtype=np.float64)
    tp = np.diag(cm)
    support, predicted = cm.sum(axis=1), cm.sum(axis=0)
    union = support + predicted - tp
    iou = np.divide(tp, union, out=np.zeros_like(tp), where=union > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    present, total = union > 0, float(cm.sum())
    names = labels or [str(i) for i in range(cm.shape[0])]
    return {"miou": float(iou[present].mean()) if present.any() else 0.0,
            "pixel_accuracy": float(tp.sum() / total) if total else 0.0,
            "mean_class_accuracy": float(recall[support > 0].mean()) if (support > 0).any() else 0.0,
            "pixels": int(total),
            "per_class": {name: {"iou": float(iou[i]), "accuracy": float(recall[i]), "pixels": int(support[i])}
                          for i, name in enumerate(names)},
            "confusion": cm.astype(np.int64).tolist()}


def recall_at_k(query_emb, item_emb, ks=(1, 5), query_groups=None, item_groups=None) -> dict:
    """Recall@k retrieving ``item_emb`` rows for each ``query_emb`` row by cosine similarity.

    Query i's correct items are those whose group equals its group (default: item i only), so
    identical captions of different images count as correct.
    """
    q = _normalise(np.asarray(query_emb, dtype=np.float64))
    d = _normalise(np.asarray(item_emb, dtype=np.float64))
    sims = q @ d.T
    qg = np.arange(len(q)) if query_groups is None else np.asarray(query_groups)
    ig = np.arange(len(d)) if item_groups is None else np.asarray(item_groups)
    order = np.argsort(-sims, axis=1, kind="stable")
    hits = ig[order] == qg[:, None]
    return {k: float(hits[:, :k].any(axis=1).mean()) if len(q) else 0.0 for k in ks}


def retrieval_report(image_emb, text_emb, texts: list[str] | None = None, ks=(1, 5)) -> dict:
    """Image->text and text->image recall@k, and their mean ``recall@k`` per k."""
    groups = None
    if texts is not None:  # identical captions are interchangeable
        ids: dict[str, int] = {}
        groups = np.array([ids.setdefault(t, len(ids)) for t in texts])
    i2t = recall_at_k(image_emb, text_emb, ks, groups, groups)
    t2i = recall_at_k(text_emb, image_emb, ks, groups, groups)
    out = {}
    for k in ks:
        out[f"recall@{k}"] = (i2t[k] + t2i[k]) / 2
        out[f"i2t_recall@{k}"], out[f"t2i_recall@{k}"] = i2t[k], t2i[k]
    out["count"] = len(np.asarray(image_emb))
    return out


def _normalise(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def edit_distance(ref: list, hyp: list) -> int:
    """Levenshtein distance between two sequences (substitutions, insertions, deletions)."""
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, start=1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, start=1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1]


def _words(text: str) -> list[str]:
    return text.lower().split()


def wer(references: list[str], hypotheses: list[str]) -> float:
    """Word error rate: total word edits over total reference words (corpus level)."""
    errors, words = wer_counts(references, hypotheses)
    return errors / words if words else 0.0


def wer_counts(references, hypotheses) -> tuple[int, int]:
    """(word edits, reference words): sums that can be reduced across ranks."""
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} hypotheses")
    errors = sum(edit_distance(_words(r), _words(h)) for r, h in zip(references, hypotheses))
    return errors, sum(len(_words(r)) for r in references)


def cer_counts(references, hypotheses) -> tuple[int, int]:
    """(character edits, reference characters), case-insensitive, spaces normalised."""
    norm = (lambda t: " ".join(_words(t)))
    errors = sum(edit_distance(list(norm(r)), list(norm(h))) for r, h in zip(references, hypotheses))
    return errors, sum(len(norm(r)) for r in references)


def scalar_metrics(metrics: dict) -> dict:
    """The float/int entries only (what goes into metrics.jsonl and the plot)."""
    return {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
