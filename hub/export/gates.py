"""How close an export is to the fp32 torch model, and the gates it must pass.

Both pipelines run the same held-out inputs through their own pre- and postprocessing:
- embeddings (text-embedding, image-embedding, both CLIP towers): cosine similarity per input,
  reported as its minimum and mean; the gate is on the minimum (default 0.99);
- classifiers (text-classification, image-classification, CLIP zero-shot over held-out labels):
  top-1 agreement (share of inputs whose best label is the same; default gate 99%) and the largest
  absolute difference of any label's score.
"""
from __future__ import annotations

from dataclasses import dataclass

DEFAULT_MIN_COSINE = 0.99
DEFAULT_MIN_AGREEMENT = 0.99


@dataclass
class Gates:
    min_cosine: float = DEFAULT_MIN_COSINE
    min_agreement: float = DEFAULT_MIN_AGREEMENT

    def describe(self) -> str:
        return f"cosine >= {self.min_cosine}, top-1 agreement >= {self.min_agreement:.0%}"


def cosines(a, b) -> list[float]:
    """Cosine similarity of each row of ``a`` with the same row of ``b`` (lists or tensors)."""
    import torch

    a, b = torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64)
    return torch.nn.functional.cosine_similarity(a, b, dim=-1).tolist()


def embedding_figures(reference, candidate, prefix: str = "") -> dict:
    found = cosines(reference, candidate)
    return {f"{prefix}cosine_min": round(min(found), 6), f"{prefix}cosine_mean": round(sum(found) / len(found), 6)}


def classifier_figures(reference: list, candidate: list) -> dict:
    """Top-1 agreement and the largest score difference of two lists of Classification results."""
    agree = sum(r.labels[0].index == c.labels[0].index for r, c in zip(reference, candidate))
    delta = 0.0
    for r, c in zip(reference, candidate):
        theirs = {x.index: x.score for x in c.labels}
        delta = max(delta, max(abs(x.score - theirs.get(x.index, 0.0)) for x in r.labels))
    return {"top1_agreement": round(agree / len(reference), 6), "max_score_delta": round(delta, 6)}


def measure(task: str, reference, candidate, texts: list[str], images: list) -> dict:
    """The figures of ``candidate`` (an export's pipeline) against ``reference`` (fp32 torch) for ``task``, as its
    declaration's ``export`` says (see :class:`hub.tasks.TaskInfo`): on the texts or the images it takes."""
    from hub.tasks import TASKS

    info = TASKS[task]
    items = texts if info.inputs == "text" else images
    if info.export == "embedding":
        figures = embedding_figures(_vectors(reference(items)), _vectors(candidate(items)))
    elif info.export == "classification":
        top_k = 10 ** 6  # every label's score
        figures = classifier_figures(reference(items, top_k=top_k), candidate(items, top_k=top_k))
    else:  # CLIP ("image-text", "zero-shot"): both towers, and zero-shot over held-out labels
        figures = {**embedding_figures(reference.embed_images(images), candidate.embed_images(images), "image_"),
                   **embedding_figures(reference.embed_texts(texts), candidate.embed_texts(texts), "text_")}
        figures["cosine_min"] = min(figures["image_cosine_min"], figures["text_cosine_min"])
        if info.export == "zero-shot":
            labels = texts[:8]
            figures.update(classifier_figures(reference(images, labels=labels, templates=["{}"], top_k=len(labels)),
                                              candidate(images, labels=labels, templates=["{}"], top_k=len(labels))))
        return {**figures, "inputs": len(images) + len(texts)}
    return {**figures, "inputs": len(items)}


def _vectors(results) -> list[list[float]]:
    return [r.embedding for r in results]


def failures(figures: dict, gates: Gates) -> list[str]:
    """What misses its gate, in words (empty when the export passes)."""
    out = []
    if "cosine_min" in figures and figures["cosine_min"] < gates.min_cosine:
        out.append(f"cosine {figures['cosine_min']:.7f} < {gates.min_cosine}")
    if "top1_agreement" in figures and figures["top1_agreement"] < gates.min_agreement:
        out.append(f"top-1 agreement {figures['top1_agreement']:.1%} < {gates.min_agreement:.1%}")
    return out


def summary(figures: dict) -> str:
    """The figures in one line, e.g. 'cosine min 0.9991 (mean 0.9996), top-1 agreement 100%'."""
    parts = []
    if "cosine_min" in figures:
        mean = figures.get("cosine_mean", figures.get("image_cosine_mean"))
        parts.append(f"cosine min {figures['cosine_min']:.6f}" + (f" (mean {mean:.6f})" if mean is not None else ""))
    if "top1_agreement" in figures:
        parts.append(f"top-1 agreement {figures['top1_agreement']:.1%}, "
                     f"max score delta {figures['max_score_delta']:.4f}")
    return ", ".join(parts) + f" on {figures.get('inputs', '?')} held-out inputs"
