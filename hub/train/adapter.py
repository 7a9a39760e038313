"""The small interface between a plugin and the fine-tuning loop.

Data flow: the data module reads user files into :class:`Record` rows (reporting bad rows with
file and line). The adapter turns a record into an *example* (``load_example``: read and
preprocess one image / text / audio clip), a list of examples into a CPU batch (``collate``),
and a device batch into a loss (``loss``) or predictions (``predict``). ``save`` writes the
trained module in the library's own format into a new, empty directory, to which the core adds
``mmhub.yaml`` (``spec_fields``) before renaming it into place complete (:func:`hub.io.atomic_directory`),
so that the output directory is itself a model: ``hub run OUTDIR``.

Labels and heads (the ``trainable`` hook's ``labels``): given labels, the adapter builds the
model with a head for exactly those classes, keeping the checkpoint's own head when it was
trained for the same labels in the same order, and sets ``new_head`` when it initialised one.
``labels=None`` for a classification task asks for the model as it was saved, head included,
with ``adapter.labels`` read from the checkpoint; a checkpoint without a trained head for the
task raises :class:`NoHeadError`. ``hub eval`` relies on both to measure the saved model.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from hub.errors import HubError

KINDS = ("classification", "contrastive", "ctc")


@dataclass
class Record:
    """One row of training data, with where it came from (``file:line``) for error messages."""

    input: Any  # text, or a path to an image / audio file
    label: str | None = None  # class name (classification), None for contrastive
    text: str | None = None  # caption (contrastive) or transcript (ctc)
    where: str = ""
    length: int | None = None  # the example's length, once measured (tokens, samples)


class NoHeadError(HubError):
    """``trainable(labels=None)``: the checkpoint has no trained head for the task to keep."""


@dataclass
class TrainAdapter:
    """What a plugin supplies for fine-tuning one model on one task."""

    module: Any  # torch.nn.Module: backbone + task head, fp32, on the CPU
    kind: str  # one of KINDS
    load_example: Callable[[Record, bool], Any]  # (record, train) -> example; train enables augmentation
    collate: Callable[[list], dict]  # examples -> dict of CPU tensors ("labels" for classification)
    loss: Callable[[Any, dict], Any]  # (module, device batch) -> scalar loss tensor
    predict: Callable[[Any, dict], Any]  # (module, device batch) -> logits [B, C], or (img_emb, txt_emb)
    save: Callable[[Any, Any], None]  # (module, out_dir Path) -> weights + tokenizer/config in library format
    spec_fields: dict = field(default_factory=dict)  # mmhub.yaml fields (task, plugin, preprocess, ...)
    head_prefixes: tuple[str, ...] = ()  # parameter-name prefixes of the new task head
    blocks: Callable[[Any], list] | None = None  # backbone blocks in order, for "unfreeze last N"
    length: Callable[[Any], int] | None = None  # example -> length, for length-grouped batching
    labels: list[str] | None = None  # class names, index = class id
    new_head: bool = False  # the task head was initialised here, not loaded for these labels
