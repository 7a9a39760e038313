"""What the transformers plugin's training modules share: the classification model with a head for new labels,
its transformer blocks, the loss and predictions, the text length limit, padding text batches, reading a clip.

Below :mod:`mmhub_transformers.train` (the dispatcher) and its task modules, which all import from here.
"""
from __future__ import annotations

from pathlib import Path

from hub.errors import InputError
from mmhub_transformers.loading import load_auto, read_json

HEAD_NAMES = ("classifier", "score", "pre_classifier", "projector")
# the architecture-name endings of checkpoints that carry a head for each task
HEAD_ARCHITECTURES = {
    "text-classification": ("ForSequenceClassification",),
    "token-classification": ("ForTokenClassification",),
    "audio-classification": ("ForAudioClassification", "ForSequenceClassification"),
}


def _generic(names) -> bool:
    return all(str(n) == f"LABEL_{i}" for i, n in enumerate(names))


def load_model(auto_name: str, directory: Path, labels: list[str], trust: bool):
    """(model, head prefixes, new_head): the model with a head for ``labels``.

    ``new_head`` is True when any head weight was initialised here, or when the checkpoint's head
    names other labels than ``labels`` (kept only as a starting point).
    """
    from transformers import AutoConfig
    from transformers.utils import logging

    saved = read_json(directory / "config.json").get("id2label") or {}
    saved_names = [saved.get(str(i)) for i in range(len(saved))]
    relabelled = bool(saved_names) and not _generic(saved_names) and saved_names != list(labels)
    config = AutoConfig.from_pretrained(str(directory), trust_remote_code=trust, num_labels=len(labels),
                                        id2label=dict(enumerate(labels)),
                                        label2id={name: i for i, name in enumerate(labels)})
    config.problem_type = "single_label_classification"
    verbosity = logging.get_verbosity()
    logging.set_verbosity_error()  # a new head is expected here; its prefixes go to the loop instead
    try:
        model, info = load_auto(auto_name, directory, trust, config=config, ignore_mismatched_sizes=True,
                                output_loading_info=True)
    finally:
        logging.set_verbosity(verbosity)
    fresh = list(info.get("missing_keys") or []) + [m[0] if isinstance(m, (list, tuple)) else m
                                                    for m in info.get("mismatched_keys") or []]
    return model.float().train(), head_prefixes(model, fresh), bool(fresh) or relabelled


def head_prefixes(model, fresh: list[str]) -> tuple[str, ...]:
    """Top-level head modules (classifier/score/pre_classifier/projector) plus anything newly initialised."""
    found = [name for name, _ in model.named_children() if name in HEAD_NAMES]
    for key in fresh:
        prefix = key.rsplit(".", 1)[0]
        if not any(prefix == p or prefix.startswith(p + ".") for p in found):
            found.append(prefix)
    return tuple(found)


def blocks(model) -> list:
    """The encoder's transformer layers in order (``encoder.layer(s)``), else the longest ModuleList.

    Looking for the encoder first matters for audio models, whose convolutional feature encoder
    can be a longer list than a small transformer's layers.
    """
    import torch

    model = getattr(model, "module", model)
    body = getattr(model, getattr(model, "base_model_prefix", ""), None) or model
    encoder = getattr(body, "encoder", None)
    for name in ("layers", "layer"):
        layers = getattr(encoder, name, None)
        if isinstance(layers, torch.nn.ModuleList) and len(layers):
            return list(layers)
    lists = [m for m in body.modules() if isinstance(m, torch.nn.ModuleList) and len(m) > 0]
    return list(max(lists, key=len)) if lists else list(body.children())


def unwrap(module):
    return getattr(module, "module", module)  # DistributedDataParallel


def predict(module, batch: dict):
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    return module(**inputs).logits


def loss(module, batch: dict):
    import torch.nn.functional as F

    logits = predict(module, batch).float()
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch["labels"].reshape(-1), ignore_index=-100)


def max_length(directory: Path, tokenizer, model, spec) -> int:
    """The spec's max_length, else the smallest of sentence-transformers', tokenizer's and model's limits."""
    if (spec.preprocess or {}).get("max_length"):
        return int(spec.preprocess["max_length"])
    limits = [read_json(directory / "sentence_bert_config.json").get("max_seq_length"),
              getattr(tokenizer, "model_max_length", None), getattr(model.config, "max_position_embeddings", None)]
    limits = [int(x) for x in limits if isinstance(x, int) and 0 < x < 1_000_000]
    return min(limits) if limits else 512


def collate_text(examples: list[dict], tokenizer) -> dict:
    """Pad every field to the longest example (pad id / 0 / -100 for per-token labels)."""
    import torch

    longest = max(len(ex["input_ids"]) for ex in examples)
    left = getattr(tokenizer, "padding_side", "right") == "left"
    pads = {"input_ids": tokenizer.pad_token_id or 0, "labels": -100}
    batch = {}
    for key in examples[0]:
        values = [ex[key] for ex in examples]
        if key == "labels" and not isinstance(values[0], list):
            batch[key] = torch.tensor(values, dtype=torch.long)
            continue
        pad = pads.get(key, 0)
        rows = [([pad] * (longest - len(v)) + list(v)) if left else (list(v) + [pad] * (longest - len(v)))
                for v in values]
        batch[key] = torch.tensor(rows, dtype=torch.long)
    return batch


def record_audio(record, rate: int):
    """The record's clip as a mono waveform at ``rate``; errors name the data row."""
    from hub.inputs import load_audio

    try:
        wave = load_audio(record.input, rate)
    except InputError as exc:
        raise InputError(f"{record.where}: {exc}") from None
    if wave.size == 0:
        raise InputError(f"{record.where}: the audio file '{record.input}' is empty")
    return wave
