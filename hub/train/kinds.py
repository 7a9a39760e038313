"""Training kinds that plugins bring: preparing a run and an evaluation for a :class:`TrainKind`.

A task without a built-in kind (``TaskInfo.train_kind``, see :func:`hub.train.api.task_kinds`) is trained by
the kind its plugin's adapter declares. The plugin is asked first for the model as saved (``labels=None``): its adapter's kind
reads the data (:func:`hub.train.data.read_kind_records`, with the usual bad-row rules) and
names the classes the data declares. When those differ from the model's own, the plugin is asked
again, with the data's classes, for a model with a new head. Everything after that (screening,
the loop, checkpoints, metrics.jsonl, the saved model) is the same as for the built-in kinds.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

from hub.errors import HubError, PluginError
from hub.train.adapter import DEFAULT_LR, TrainKind
from hub.train.plugin_adapter import get_adapter

@dataclass
class Prepared:
    """What a run starts from: the adapter, the training and validation rows, the classes, the bad rows."""

    adapter: object
    train: list
    val: list
    labels: list[str] | None
    problems: list[str]


def default_lr(kind) -> float:
    """The default learning rate of a built-in kind or of a plugin's TrainKind."""
    return kind.default_lr if isinstance(kind, TrainKind) else DEFAULT_LR[kind]


def saved_adapter(spec, task: str, device_manager):
    """The plugin's adapter for the model as saved; its kind must be a TrainKind (the task is not built in)."""
    adapter = get_adapter(spec, task, None, device_manager)
    if not isinstance(adapter.kind, TrainKind):
        raise PluginError(spec.plugin, f"plugin '{spec.plugin}' returned a '{adapter.kind}' adapter for task "
                                       f"'{task}', which the hub does not train; a plugin's own task needs a "
                                       "TrainKind (hub.train.adapter.TrainKind) saying how its data is read and "
                                       "measured; the plugin is at fault")
    return adapter


def prepare_kind(spec, task: str, data, val, metric: str | None, on_bad: str, val_fraction: float, seed: int,
                 device_manager) -> Prepared:
    """Read, split and check the data with the adapter's kind; rebuild the head for the data's classes."""
    from hub.train.data import stratified_split
    from hub.train.evaluation import resolve_metric
    from hub.train.loop import seed_everything

    seed_everything(seed)
    adapter = saved_adapter(spec, task, device_manager)
    kind = adapter.kind
    resolve_metric(kind, metric)  # an unknown --metric is refused before any data is read
    records, problems = read(kind, data, on_bad, "training")
    if val is not None:
        val_records, val_problems = read(kind, val, on_bad, "validation")
        problems = problems + val_problems
        train = records
    else:
        train, val_records = stratified_split(records, val_fraction, seed)
    labels = data_labels(kind, data, train)
    if val is not None and labels:
        check_same_labels(kind, val, data_labels(kind, val, val_records), labels, "the training data's")
    if labels and labels != adapter.labels:
        del adapter  # free the first model before building the second
        seed_everything(seed)  # the new head's initial weights depend on it
        adapter = get_adapter(spec, task, list(labels), device_manager)
    return Prepared(adapter, train, val_records, list(adapter.labels or labels or []) or None, problems)


def read(kind: TrainKind, path, on_bad: str, purpose: str):
    """(records, problems) read by ``kind``; skipped bad rows are named in a warning."""
    from hub.train.data import read_kind_records

    records, problems = read_kind_records(kind, path, on_bad, purpose)
    if problems:
        shown = "; ".join(problems[:5]) + (f"; ... {len(problems) - 5} more" if len(problems) > 5 else "")
        warnings.warn(f"skipped {len(problems)} bad {purpose} rows: {shown}", stacklevel=3)
    return records, problems


def data_labels(kind: TrainKind, path, records) -> list[str] | None:
    """The classes the data at ``path`` declares (None: the model's own)."""
    if kind.labels is None:
        return None
    labels = kind.labels(Path(path), records)
    return [str(x) for x in labels] if labels else None


def check_same_labels(kind: TrainKind, path, found: list[str] | None, expected: list[str], whose: str) -> None:
    """Refuse data whose declared classes differ from ``expected`` (naming both and the fix)."""
    if found and list(found) != list(expected):
        raise HubError(f"data '{path}' declares the {kind.name} classes {_names(found)}, but {whose} are "
                       f"{_names(expected)}; use the same classes in the same order")


def _names(labels: list[str]) -> str:
    shown = ", ".join(labels[:12])
    return f"[{shown}{', ...' if len(labels) > 12 else ''}] ({len(labels)})"


def evaluate_kind(spec, data, batch_size: int, device_manager, on_bad: str) -> dict:
    """Metrics of the model as saved on ``data`` read by its plugin's kind (for ``hub eval``)."""
    from hub.train.evaluation import evaluate_module, example_lengths, screen_records

    adapter = saved_adapter(spec, spec.task, device_manager)
    if adapter.new_head:
        raise HubError(f"the plugin '{spec.plugin}' did not load the trained {spec.task} head of '{spec.id}' "
                       "(it built a new one), so an evaluation would measure a random head. Check that the "
                       "model directory is complete (hub info), or re-save it with hub finetune")
    records, _ = read(adapter.kind, data, on_bad, "evaluation")
    if adapter.labels:
        check_same_labels(adapter.kind, data, data_labels(adapter.kind, data, records), adapter.labels,
                          f"the classes of model '{spec.id}'")
    records, problems = screen_records(adapter, records, on_bad, "evaluation")
    if problems:
        shown = "; ".join(problems[:5]) + (f"; ... {len(problems) - 5} more" if len(problems) > 5 else "")
        warnings.warn(f"skipped {len(problems)} evaluation rows that cannot be loaded: {shown}", stacklevel=3)
    module = adapter.module.to(device_manager.device).eval()
    return evaluate_module(adapter, module, records, device_manager, batch_size,
                           lengths=example_lengths(adapter, records))
