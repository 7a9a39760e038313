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

A new kind of training: ``kind`` may be a :class:`TrainKind` instead of one of :data:`KINDS`.
The kind says how its data is read (``read``, with bad rows reported as ``file:line: problem``),
which classes the data declares (``labels``), and how a model is measured (``metrics``: a
:class:`hub.train.evaluation.SummedMetrics` whose counts are summed across ranks), with the
metric names ``--metric`` accepts. The adapter's ``collate``, ``loss``, ``predict`` and ``save``
serve it as for the built-in kinds, and the loop brings everything else. For a task trained by
a new kind, the ``trainable`` hook is first called with ``labels=None`` (the model as saved: its
kind tells how to read the data), then, when the data declares other classes, once more with them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from hub.errors import HubError
from hub.tasks.info import TRAIN_KINDS as KINDS  # the built-in kinds, which a task's declaration may name

DEFAULT_LR = {"classification": 5e-5, "contrastive": 1e-5, "ctc": 1e-4}  # a TrainKind brings its own


@dataclass
class Record:
    """One row of training data, with where it came from (``file:line``) for error messages."""

    input: Any  # text, or a path to an image / audio file
    label: str | None = None  # class name (classification), None for contrastive
    text: str | None = None  # caption (contrastive) or transcript (ctc)
    where: str = ""
    length: int | None = None  # the example's length, once measured (tokens, samples)
    target: Any = None  # a new kind's target, e.g. the path of a segmentation mask


class NoHeadError(HubError):
    """``trainable(labels=None)``: the checkpoint has no trained head for the task to keep."""


@dataclass
class TrainKind:
    """A kind of training a plugin brings: how its data is read and how a model is measured."""

    name: str  # e.g. "segmentation"; names the kind in messages
    read: Callable[[Path, str], tuple[list[Record], list[str]]]  # (data path, purpose) -> rows, problems
    metrics: Callable[[Any, str], Any]  # (adapter, device) -> a fresh SummedMetrics for one evaluation
    metric_names: tuple[str, ...]  # the scalar metrics it reports, usable with --metric
    default_metric: str  # picks the best checkpoint when --metric is not given
    lower_is_better: tuple[str, ...] = ()  # metric names where smaller is better (besides loss)
    labels: Callable[[Path, list[Record]], list[str] | None] | None = None  # classes the data declares
    default_lr: float = 1e-4

    def __post_init__(self) -> None:
        if self.default_metric not in self.metric_names:
            raise HubError(f"training kind '{self.name}': default_metric '{self.default_metric}' is not among "
                           f"its metric_names ({', '.join(self.metric_names)})")


def kind_name(kind) -> str:
    """The name of a built-in kind (a string) or of a :class:`TrainKind`."""
    return kind.name if isinstance(kind, TrainKind) else str(kind)


@dataclass
class TrainAdapter:
    """What a plugin supplies for fine-tuning one model on one task."""

    module: Any  # torch.nn.Module: backbone + task head, fp32, on the CPU
    kind: str | TrainKind  # one of KINDS, or a plugin's own TrainKind
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
