"""Zero-shot audio classification with CLAP: an audio clip scored against free-text labels.

The audio analogue of CLIP zero-shot image classification. Each label is written into the hypothesis
template ("This is a sound of {}."), the texts are embedded once per label set (cached), and
``softmax(logit_scale_a * audio @ text.T)`` over the labels scores each clip: the same numbers as
``ClapModel(...).logits_per_audio.softmax(-1)``.

Audio is read by :func:`hub.inputs.load_audio` and resampled to the feature extractor's rate (48 kHz).
Each clip goes through the feature extractor alone, with numpy's RNG fixed for the call: CLAP's
extractor crops clips longer than its window (10 s) at random and, in ``fusion`` mode, marks a random
clip of a batch as "longer"; alone and seeded, a clip gets the same features in any batch and on every run.
"""
from __future__ import annotations

from contextlib import contextmanager

from hub.errors import OptionError
from hub.options import LABELS, TOP_K, Option
from hub.tasks.results import Classification, LabelScore
from mmhub_transformers.speech import AudioPipeline

DEFAULT_TEMPLATE = "This is a sound of {}."
HYPOTHESIS_TEMPLATE = Option("hypothesis_template", str, DEFAULT_TEMPLATE, "the text each label is written into, "
                             "with {} where the label goes")
CROP_SEED = 0  # numpy seed for the feature extractor's random crops of long clips


def check_labels(labels) -> list[str]:
    """Candidate labels as a list of distinct, non-blank strings; OptionError naming the fix otherwise."""
    if labels is None:
        raise OptionError("zero-shot-audio-classification needs candidate labels: pass labels=['dog barking', "
                          "'rain'] (command line: --label 'dog barking' --label rain)")
    if not labels:
        raise OptionError("option 'labels' is empty; pass at least one label, e.g. labels=['dog barking', 'rain']")
    blank = [i for i, label in enumerate(labels) if not isinstance(label, str) or not label.strip()]
    if blank:
        raise OptionError(f"option 'labels' has an empty label (position {blank[0]}) in {labels!r}; every label "
                          "needs some words")
    labels = [label.strip() for label in labels]
    repeated = sorted({label for label in labels if labels.count(label) > 1})
    if repeated:
        raise OptionError(f"option 'labels' must hold distinct labels; repeated: {', '.join(repeated)}")
    return labels


def check_template(template: str) -> str:
    """A hypothesis template with exactly one '{}' where the label goes."""
    if template.count("{}") != 1 or template.replace("{}", "").count("{") or template.replace("{}", "").count("}"):
        raise OptionError(f"option 'hypothesis_template' needs one '{{}}' where the label goes (and no other "
                          f"braces), e.g. {DEFAULT_TEMPLATE!r}; got {template!r}")
    return template


@contextmanager
def seeded_numpy(seed: int):
    """numpy's global RNG seeded for the block, and put back as it was afterwards."""
    import numpy as np

    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


class ZeroShotAudioClassificationPipeline(AudioPipeline):
    """Score clips against labels: ``pipe(audio, labels=[...], hypothesis_template=..., top_k=...)``."""

    task = "zero-shot-audio-classification"
    auto_class = "AutoModel"
    call_options = (LABELS, HYPOTHESIS_TEMPLATE, TOP_K)

    def __init__(self, spec, model, device_manager, **kwargs):
        super().__init__(spec, model, device_manager, **kwargs)
        self._classifiers: dict = {}

    def check_options(self, options: dict) -> dict:
        return {**options, "labels": check_labels(options["labels"]),
                "hypothesis_template": check_template(options["hypothesis_template"])}

    def preprocess(self, items, **kwargs):
        import torch

        parts = [self.clip_features(wave) for wave in items]
        return {key: torch.cat([p[key] for p in parts]) for key in parts[0]}

    def clip_features(self, wave) -> dict:
        """The feature extractor's output for one clip, alone and with its random crops seeded."""
        with seeded_numpy(CROP_SEED):
            return dict(self.feature_extractor([wave], sampling_rate=self.sampling_rate, return_tensors="pt"))

    def text_embeddings(self, labels: list[str], template: str):
        """The normalised text embeddings of the filled template, one row per label (cached per label set)."""
        key = (tuple(labels), template)
        if key not in self._classifiers:
            texts = [template.format(label) for label in labels]
            encoded = self.tokenizer(texts, padding=True, return_tensors="pt")
            encoded = self.device_manager.to_device(dict(encoded))
            pooled = self.model.text_model(input_ids=encoded["input_ids"],
                                           attention_mask=encoded.get("attention_mask")).pooler_output
            embeds = self.model.text_projection(pooled)
            self._classifiers.clear()  # one label set at a time: a server may see many
            self._classifiers[key] = embeds / embeds.norm(p=2, dim=-1, keepdim=True)
        return self._classifiers[key]

    def forward(self, batch, labels=(), hypothesis_template=DEFAULT_TEMPLATE, **kwargs):
        import torch

        text = self.text_embeddings(list(labels), hypothesis_template)
        pooled = self.model.audio_model(input_features=batch["input_features"],
                                        is_longer=batch.get("is_longer")).pooler_output
        audio = self.model.audio_projection(pooled)
        audio = audio / audio.norm(p=2, dim=-1, keepdim=True)
        with torch.autocast(audio.device.type, enabled=False):
            logits = torch.matmul(audio.float(), text.float().t()) * self.model.logit_scale_a.exp().float()
            return logits.softmax(dim=-1)

    def postprocess(self, outputs, items, labels=(), top_k=TOP_K.default, **kwargs):
        k = min(top_k, len(labels))
        results = []
        for row in outputs.cpu().tolist():
            order = sorted(range(len(row)), key=lambda i: -row[i])[:k]
            results.append(Classification([LabelScore(labels[i], row[i], i) for i in order]))
        return results
