"""Published figures in catalogue entries: a model's accuracy and its compute, each with its source.

``accuracy: {metric: imagenet-top1, value: 80.4, source: "timm results/results-imagenet.csv"}`` is the
quality its authors or a benchmark published (a percentage, higher is better); ``note`` may add the
conditions (image size, protocol). ``flops: {gmacs: 4.11, source: "..."}`` (or ``gflops``) is the compute
per input at the stated size. Both are data with their sources, shown by ``hub info`` and used by
``hub recommend``; nothing here imports more than the standard library.
"""
from __future__ import annotations

METRIC_NAMES = {
    "imagenet-top1": "ImageNet top-1",
    "imagenet-zeroshot-top1": "ImageNet zero-shot top-1",
    "mteb-average": "MTEB average",
}
ACCURACY_KEYS = {"metric", "value", "source", "note"}
FLOPS_KEYS = {"gflops", "gmacs", "source", "note"}


def _real(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _text(value) -> bool:
    return isinstance(value, str) and bool(value.strip())


def accuracy_problem(data: dict) -> str | None:
    """Why ``data`` is not a valid accuracy entry; None when it is."""
    unknown = sorted(set(data) - ACCURACY_KEYS)
    if unknown:
        return f"unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(sorted(ACCURACY_KEYS))}"
    for key in ("metric", "source"):
        if not _text(data.get(key)):
            return f"'{key}' is required and must be non-empty text (where the figure was published)"
    value = data.get("value")
    if not _real(value) or not 0 <= value <= 100:
        return f"'value' must be a percentage between 0 and 100, got {value!r}"
    if data.get("note") is not None and not _text(data.get("note")):
        return "'note' must be non-empty text when given"
    return None


def flops_problem(data: dict) -> str | None:
    """Why ``data`` is not a valid compute entry; None when it is."""
    unknown = sorted(set(data) - FLOPS_KEYS)
    if unknown:
        return f"unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(sorted(FLOPS_KEYS))}"
    given = [k for k in ("gflops", "gmacs") if k in data]
    if len(given) != 1:
        return "give exactly one of 'gflops' or 'gmacs' (per input)"
    value = data[given[0]]
    if not _real(value) or value <= 0:
        return f"'{given[0]}' must be a positive number, got {value!r}"
    if not _text(data.get("source")):
        return "'source' is required and must be non-empty text (where the figure was published)"
    return None


def metric_name(metric: str) -> str:
    return METRIC_NAMES.get(metric, metric)


def accuracy_text(accuracy: dict | None) -> str:
    """'ImageNet top-1 80.4 (timm results-imagenet.csv)'; 'no published accuracy' when there is none."""
    if not accuracy:
        return "no published accuracy in the catalogue"
    return f"{metric_name(accuracy['metric'])} {accuracy['value']:g} ({accuracy['source']})"


def gflops_per_input(flops: dict | None) -> float | None:
    """Floating-point operations per input in billions (2 per multiply-accumulate); None when not published."""
    if not flops:
        return None
    return float(flops["gflops"]) if "gflops" in flops else 2.0 * float(flops["gmacs"])


def field_text(key: str, data: dict) -> str:
    """How ``hub info`` shows an accuracy or flops field: the figure, its conditions, its source."""
    note = f", {data['note']}" if data.get("note") else ""
    if key == "accuracy":
        return f"{metric_name(data['metric'])} {data['value']:g}{note} ({data['source']})"
    unit = "GMACs" if "gmacs" in data else "GFLOPs"
    return f"{data.get('gmacs', data.get('gflops')):g} {unit} per input{note} ({data['source']})"
