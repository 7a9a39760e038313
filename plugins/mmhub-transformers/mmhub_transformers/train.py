"""Fine-tuning transformers models: text classification, token classification, audio classification.

:func:`trainable` also sends the other tasks to their own modules (``train_ctc``, ``train_seq2seq``,
``train_pairs``, ``train_caption``, ``train_qa``); what they share is in :mod:`mmhub_transformers.train_common`.

The body comes from the spec's weights directory (any ``save_pretrained`` directory, a
sentence-transformers directory such as the shipped MiniLM, or a hub id); the task head is
built for the new labels (``num_labels``, ``id2label``, ``label2id``) and is new whenever the
checkpoint has none or one of another size (``new_head`` also says so when the checkpoint's head
names other labels). With ``labels=None`` the model is taken as saved, head and ``id2label``
included, which is what ``hub eval`` measures. Batches are padded to their longest example.

Token classification: each example is a list of words with one tag per word; a word's tag goes
to its first sub-token, the other sub-tokens and special tokens get -100 (ignored by the loss).
Audio classification: clips are read and resampled by :func:`hub.inputs.load_audio`, cut to
``preprocess.max_seconds`` (default 30; a random window when training), and the convolutional
feature encoder of wav2vec2-style models stays frozen (the usual recipe for small data sets).

The output is ``save_pretrained`` of the model plus its tokenizer / feature extractor; nothing
else of the input directory is carried over (a sentence-transformers ``modules.json`` would
make the output look like an embedding model).
"""
from __future__ import annotations

import random
from pathlib import Path

from hub.errors import HubError, InputError
from mmhub_transformers.loading import load_tokenizer, read_json, weights_dir
from mmhub_transformers.train_common import (HEAD_ARCHITECTURES, blocks, collate_text, load_model, loss,
                                             max_length, predict, record_audio, unwrap)

AUTO = {
    "text-classification": "AutoModelForSequenceClassification",
    "token-classification": "AutoModelForTokenClassification",
    "audio-classification": "AutoModelForAudioClassification",
}
DEFAULT_MAX_SECONDS = 30.0


def trainable(spec, task, num_labels, labels, device_manager):
    """A TrainAdapter for ``spec`` on ``task``, or None for tasks this plugin does not train."""
    if task == "speech-recognition":  # CTC: mmhub_transformers.train_ctc
        from mmhub_transformers import train_ctc

        return train_ctc.trainable(spec, weights_dir(spec), bool((spec.options or {}).get("trust_remote_code")))
    if task in ("translation", "summarization"):  # seq2seq: mmhub_transformers.train_seq2seq
        from mmhub_transformers import train_seq2seq

        trust = bool((spec.options or {}).get("trust_remote_code"))
        return train_seq2seq.trainable(spec, task, weights_dir(spec), trust)
    if task in ("zero-shot-classification", "text-ranking"):  # pair classification: mmhub_transformers.train_pairs
        from mmhub_transformers import train_pairs

        return train_pairs.trainable(spec, task, labels)
    if task == "image-captioning":  # teacher-forced captions: mmhub_transformers.train_caption
        from mmhub_transformers import train_caption

        return train_caption.trainable(spec, weights_dir(spec), bool((spec.options or {}).get("trust_remote_code")))
    if task == "question-answering":  # extractive QA: mmhub_transformers.train_qa
        from mmhub_transformers import train_qa

        return train_qa.trainable(spec, weights_dir(spec), bool((spec.options or {}).get("trust_remote_code")))
    if task not in AUTO:
        return None
    directory = weights_dir(spec)
    if labels is None and num_labels is None:  # the model as saved, head included
        labels = saved_labels(directory, task, spec.id)
        num_labels = len(labels)
    if not num_labels or num_labels < 2:
        raise HubError(f"{task} needs at least 2 classes to fine-tune '{spec.id}', got {num_labels}")
    labels = list(labels) if labels else [f"LABEL_{i}" for i in range(num_labels)]
    trust = bool((spec.options or {}).get("trust_remote_code"))
    model, heads, new_head = load_model(AUTO[task], directory, labels, trust)
    if task == "audio-classification":
        adapter = _audio_adapter(spec, task, directory, model, heads, labels, trust)
    else:
        adapter = _text_adapter(spec, task, directory, model, heads, labels, trust)
    adapter.new_head = new_head
    return adapter


def saved_labels(directory: Path, task: str, name: str) -> list[str]:
    """The class names of the checkpoint's own head (``id2label``); NoHeadError when it has none."""
    from hub.train.adapter import NoHeadError

    config = read_json(directory / "config.json")
    architectures = config.get("architectures") or []
    if architectures and not any(str(a).endswith(HEAD_ARCHITECTURES[task]) for a in architectures):
        raise NoHeadError(f"'{name}' has no trained {task} head (its architecture is {', '.join(architectures)})")
    id2label = config.get("id2label") or {}
    try:
        return [str(id2label[str(i)]) for i in range(len(id2label))]
    except KeyError:
        raise HubError(f"the config.json of '{name}' has an id2label without consecutive ids 0..N-1; "
                       "fix its id2label") from None


# -- text --------------------------------------------------------------------------------------------------------
def _text_adapter(spec, task, directory, model, heads, labels, trust):
    from hub.train.adapter import TrainAdapter

    tokenizer = load_tokenizer(directory, trust)
    if task == "token-classification" and not getattr(tokenizer, "is_fast", False):
        raise HubError(f"token classification needs a fast tokenizer (word alignment); '{spec.id}' has a slow one")
    limit = max_length(directory, tokenizer, model, spec)
    index = {name: i for i, name in enumerate(labels)}
    encode = _token_example if task == "token-classification" else _text_example

    def load_example(record, train: bool):
        return encode(tokenizer, record, index, limit)

    def save(module, out_dir) -> None:
        """save_pretrained of model and tokenizer, all appearing at once (hub.io.atomic_directory)."""
        from hub.io import atomic_directory

        with atomic_directory(out_dir, carry_over=True) as out:
            unwrap(module).save_pretrained(str(out))
            tokenizer.save_pretrained(str(out))

    return TrainAdapter(
        module=model, kind="classification", load_example=load_example,
        collate=lambda examples: collate_text(examples, tokenizer), loss=loss, predict=predict, save=save,
        spec_fields={"task": task, "plugin": "transformers", "preprocess": {"max_length": limit},
                     "description": f"{spec.id} fine-tuned for {task} on {len(labels)} labels"},
        head_prefixes=heads, blocks=blocks, length=lambda ex: len(ex["input_ids"]), labels=labels)


def _text_example(tokenizer, record, index: dict, limit: int) -> dict:
    if not isinstance(record.input, str):
        raise InputError(f"{record.where}: text classification takes a text, got {type(record.input).__name__}")
    example = dict(tokenizer(record.input, truncation=True, max_length=limit))
    example["labels"] = index.get(record.label, -100)
    return example


def _token_example(tokenizer, record, index: dict, limit: int) -> dict:
    """Word tags on the first sub-token of each word; -100 on the rest and on special tokens."""
    if not isinstance(record.input, list) or not isinstance(record.label, list):
        raise InputError(f"{record.where}: token classification takes a list of tokens with a list of tags")
    encoded = tokenizer(record.input, is_split_into_words=True, truncation=True, max_length=limit)
    tags, previous = [], None
    for word in encoded.word_ids():
        tags.append(-100 if word is None or word == previous else index.get(record.label[word], -100))
        previous = word
    example = dict(encoded)
    example["labels"] = tags
    return example


# -- audio -------------------------------------------------------------------------------------------------------
def _audio_adapter(spec, task, directory, model, heads, labels, trust):
    from transformers import AutoFeatureExtractor

    from hub.train.adapter import TrainAdapter

    extractor = AutoFeatureExtractor.from_pretrained(str(directory), trust_remote_code=trust)
    rate = int(getattr(extractor, "sampling_rate", 16000))
    limit = int(float((spec.preprocess or {}).get("max_seconds", DEFAULT_MAX_SECONDS)) * rate)
    index = {name: i for i, name in enumerate(labels)}
    if hasattr(model, "freeze_feature_encoder"):
        model.freeze_feature_encoder()

    def load_example(record, train: bool):
        wave = record_audio(record, rate)
        start = random.randint(0, len(wave) - limit) if train and len(wave) > limit else 0
        return wave[start:start + limit], index.get(record.label, -100)

    def collate(examples: list) -> dict:
        import torch

        mask = getattr(extractor, "return_attention_mask", False)
        padding = "max_length" if getattr(extractor, "n_samples", None) else True  # Whisper: its fixed window
        batch = dict(extractor([w for w, _ in examples], sampling_rate=rate, padding=padding, return_tensors="pt",
                               return_attention_mask=mask))
        batch["labels"] = torch.tensor([y for _, y in examples], dtype=torch.long)
        return batch

    def save(module, out_dir) -> None:
        """save_pretrained of model and feature extractor, all appearing at once (hub.io.atomic_directory)."""
        from hub.io import atomic_directory

        with atomic_directory(out_dir, carry_over=True) as out:
            unwrap(module).save_pretrained(str(out))
            extractor.save_pretrained(str(out))

    return TrainAdapter(
        module=model, kind="classification", load_example=load_example, collate=collate, loss=loss,
        predict=predict, save=save,
        spec_fields={"task": task, "plugin": "transformers",
                     "description": f"{spec.id} fine-tuned for {task} on {len(labels)} labels"},
        head_prefixes=heads, blocks=blocks, length=lambda ex: len(ex[0]), labels=labels)
