"""CLIP pipelines: zero-shot image classification and image-text similarity.

Zero-shot: every label is written into every template; the text embeddings are normalised,
averaged over templates and renormalised (open_clip's ``build_zero_shot_classifier``), and
``softmax(logit_scale * image @ classifier)`` scores the labels (a sigmoid with ``logit_bias`` for
SigLIP-style models). The classifier is cached per (labels, templates).

Similarity: one :class:`~hub.tasks.results.Similarity` per image, so that results line up with the
inputs as for every other task. Each holds the image's embedding (``image_embeddings``, one row), the
embeddings of all ``texts`` (``text_embeddings``; left empty with ``embeddings=False``), the image's
row of cosine similarities (``matrix``, one row, in ``texts`` order) and the ``top_k`` texts by
cosine similarity (``top_k``, one row of label/score/index). The whole image x text matrix of a
batch is ``[r.matrix[0] for r in results]``.
"""
from __future__ import annotations

from hub.errors import OptionError
from hub.options import LABELS, TEXTS, TOP_K, Option
from hub.tasks.results import Classification, LabelScore, Similarity
from mmhub_openclip.clip import ClipPipeline, check_texts

# A small CLIP-style prompt ensemble: cheap to encode, and better than the bare label.
DEFAULT_TEMPLATES = (
    "a photo of a {}.",
    "a blurry photo of a {}.",
    "a close-up photo of a {}.",
    "a photo of the small {}.",
    "a photo of the large {}.",
    "a bright photo of a {}.",
)
NAMED_TEMPLATES = ("default", "openai", "simple", "none")
TEMPLATES = Option("templates", list, None, "prompt templates with {} where the label goes, ensembled; or a named "
                   "set: default (6 photo prompts), openai (80 ImageNet prompts), simple, none (the bare label)",
                   callables=True)
EMBEDDINGS = Option("embeddings", bool, True, "include the image and text embeddings in the results")


def resolve_templates(templates) -> tuple:
    """Templates as a tuple of format strings or callables; a name picks a known set."""
    if isinstance(templates, (list, tuple)) and len(templates) == 1 and templates[0] in NAMED_TEMPLATES:
        templates = templates[0]  # a name given as a list of one (-o templates=openai)
    if templates is None or templates == "default":
        return DEFAULT_TEMPLATES
    if templates == "none":
        return ("{}",)
    if templates in ("openai", "simple"):
        import open_clip

        found = open_clip.OPENAI_IMAGENET_TEMPLATES if templates == "openai" else open_clip.SIMPLE_IMAGENET_TEMPLATES
        return tuple(found)
    if isinstance(templates, str):
        templates = [templates]
    if not isinstance(templates, (list, tuple)) or not templates:
        raise OptionError(f"templates must be a non-empty list of strings like 'a photo of a {{}}.', or one of "
                         f"{', '.join(NAMED_TEMPLATES)}; got {templates!r}")
    for template in templates:
        if not callable(template) and not (isinstance(template, str) and ("{}" in template or "{c}" in template)):
            raise OptionError(f"template {template!r} has no '{{}}' (or '{{c}}') where the label goes, "
                             f"e.g. 'a photo of a {{}}.'")
    return tuple(templates)


def fill(template, label: str) -> str:
    """The text for ``label`` in ``template`` ('{}' or '{c}' marks the place)."""
    if callable(template):
        return template(label)
    try:
        return template.format(label, c=label)
    except (KeyError, IndexError, ValueError) as exc:
        raise OptionError(f"template {template!r} cannot be filled ({exc}); use '{{}}' or '{{c}}' for the label") from None


def check_labels(labels) -> list[str]:
    """Candidate labels as a list of distinct non-empty strings ('cat,dog' is split on commas)."""
    if labels is None:
        raise OptionError("zero-shot-image-classification needs candidate labels: pass labels=['cat', 'dog'] "
                         "(command line: --label cat --label dog)")
    if isinstance(labels, str):
        labels = [part.strip() for part in labels.split(",") if part.strip()]
    labels = check_texts(labels, "labels", allow_empty=False)
    repeated = sorted({label for label in labels if labels.count(label) > 1})
    if repeated:
        raise OptionError(f"labels must be distinct; repeated: {', '.join(repeated)}")
    return labels


class ZeroShotImageClassificationPipeline(ClipPipeline):
    """Score images against free-text labels: ``pipe(images, labels=[...], templates=..., top_k=...)``."""

    task = "zero-shot-image-classification"
    call_options = (LABELS, TEMPLATES, TOP_K)

    def check_options(self, options: dict) -> dict:
        return {**options, "labels": check_labels(options["labels"]),
                "templates": resolve_templates(options["templates"])}

    def classifier(self, labels: list[str], templates: tuple):
        """The (D, labels) zero-shot weights: template-ensembled, normalised text embeddings."""
        def build():
            texts = [fill(template, label) for label in labels for template in templates]
            embeddings = self.text_features(texts).reshape(len(labels), len(templates), -1).mean(dim=1)
            return (embeddings / embeddings.norm(dim=1, keepdim=True)).T

        return self.cached(("zero-shot", tuple(labels), templates), build)

    def forward(self, pixels, labels=(), templates=(), **kwargs):
        import torch

        features = self.image_features(pixels)
        weights = self.classifier(labels, templates)
        scale, bias = self.scale_and_bias()
        with torch.autocast(features.device.type, enabled=False):
            logits = scale * features @ weights
            return torch.sigmoid(logits + bias) if bias is not None else logits.softmax(dim=-1)

    def postprocess(self, outputs, items, labels=(), top_k=TOP_K.default, **kwargs):
        k = min(top_k, len(labels))
        results = []
        for row in outputs.cpu().tolist():
            order = sorted(range(len(row)), key=lambda i: -row[i])[:k]
            results.append(Classification([LabelScore(labels[i], row[i], i) for i in order]))
        return results


class ImageTextSimilarityPipeline(ClipPipeline):
    """Compare images with texts: ``pipe(images, texts=[...], top_k=..., embeddings=True)``."""

    task = "image-text-similarity"
    call_options = (TEXTS, TOP_K.but(help="how many of the best-matching texts to list per image, best first "
                                          "(all of them when there are fewer)"), EMBEDDINGS)

    def check_options(self, options: dict) -> dict:
        if options["texts"] is None:
            raise OptionError("image-text-similarity needs texts to compare the images with: pass "
                             "texts=['a dog', 'a cat'] (command line: --text 'a dog' --text 'a cat')")
        return {**options, "texts": check_texts(options["texts"], "texts", allow_empty=False)}

    def forward(self, pixels, texts=(), **kwargs):
        import torch

        features = self.image_features(pixels)
        text = self.cached(("texts", tuple(texts)), lambda: self.text_features(list(texts)))
        with torch.autocast(features.device.type, enabled=False):
            return features, text, features @ text.T

    def postprocess(self, outputs, items, texts=(), top_k=TOP_K.default, embeddings=True, **kwargs):
        features, text, matrix = (t.cpu() for t in outputs)
        k = min(top_k, len(texts))
        text_rows = text.tolist() if embeddings else []
        results = []
        for feature, row in zip(features.tolist(), matrix.tolist()):
            order = sorted(range(len(row)), key=lambda i: -row[i])[:k]
            results.append(Similarity(image_embeddings=[feature] if embeddings else [], text_embeddings=text_rows,
                                      matrix=[row], top_k=[[LabelScore(texts[i], row[i], i) for i in order]]))
        return results

