"""``finetune`` and ``evaluate``: the Python API behind ``hub finetune`` and ``hub eval``.

``finetune`` reads the data (:mod:`hub.train.data`; a plugin's own kind: :mod:`hub.train.kinds`),
asks the model's plugin for a :class:`TrainAdapter` through the ``trainable`` hook, runs the
:class:`Trainer`, and writes the output directory, which is itself a model (``hub run OUT``, ``hub info OUT``)::

    OUT/mmhub.yaml            catalogue fields: task, plugin, labels (under options), metrics
    OUT/<plugin's files>      the fine-tuned weights in the library's own format (adapter.save)
    OUT/metrics.json          the validation metrics of those weights (per class, confusion)
    OUT/metrics.jsonl         the training log; OUT/training_curves.png its plot
    OUT/checkpoints/          resumable checkpoints (``resume=True`` / ``--resume``)
    OUT/.mmhub-run            the run marker and lock (which directories a run may use: hub.train.outdir)

The weights saved are those of the best evaluation by ``metric`` (the last weights when there
is no validation data). Without ``val`` a stratified ``val_fraction`` of the data is held out.
"""
from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path

from hub.errors import HubError
from hub.train.config import with_training_parameters
from hub.train.plugin_adapter import get_adapter

def task_kinds() -> dict[str, tuple[str, str]]:
    """task -> (built-in kind, what the data rows hold), from each task's declaration (``TaskInfo.train_kind``):
    the rows hold the task's inputs, or for the contrastive kind an image with its text."""
    from hub.tasks import TASKS

    return {name: (info.train_kind, "image" if info.train_kind == "contrastive" else info.inputs)
            for name, info in TASKS.items() if info.train_kind}


@dataclass
class FinetuneResult:
    out_dir: Path
    metric: str
    metrics: dict  # validation metrics of the saved weights
    best_metric: float | None
    best_step: int | None
    steps: int
    epochs: int
    stopped_early: bool
    train_rows: int
    val_rows: int
    throughput: float  # training examples per second
    problems: list[str] = field(default_factory=list)  # bad rows skipped
    metrics_file: Path | None = None
    plot: Path | None = None
    checkpoint: Path | None = None


def task_kind(task: str) -> tuple[str, str]:
    kinds = task_kinds()
    if task not in kinds:
        raise HubError(f"task '{task}' cannot be fine-tuned; trainable tasks: {', '.join(kinds)}. "
                       "Pass --task with one of them")
    return kinds[task]


def _read(path, kind, inputs, text_column, label_column, on_bad, what):
    from hub.train.data import read_records

    records, problems = read_records(path, kind, inputs, text_column=text_column, label_column=label_column,
                                     on_bad=on_bad, purpose=what)
    if problems:
        shown = "; ".join(problems[:5]) + (f"; ... {len(problems) - 5} more" if len(problems) > 5 else "")
        warnings.warn(f"skipped {len(problems)} bad {what} rows: {shown}", stacklevel=3)
    return records, problems


def _default_out(spec_id: str, task: str) -> Path:
    return Path("runs") / f"{re.sub(r'[^A-Za-z0-9_.-]+', '-', spec_id).strip('-')}-{task}"


@with_training_parameters
def finetune(model_id: str, data, val=None, task: str | None = None, out=None, resume: bool = False,
             overwrite: bool = False, on_bad_rows: str = "skip", text_column: str = "text", label_column: str = "label",
             val_fraction: float = 0.2, **training) -> FinetuneResult:
    """Fine-tune ``model_id`` on ``data``; returns the final metrics and where things were written.

    ``out`` is checked, created and locked first (:mod:`hub.train.outdir`): ``resume`` continues the
    run in it, ``overwrite`` moves what is there aside and starts over. A task outside
    :func:`task_kinds` is trained by the kind its plugin's adapter brings (:mod:`hub.train.kinds`).
    ``shard`` shards the model over the processes of a distributed run with FSDP2 (:mod:`hub.train.sharded`).

    ``training`` takes the training parameters, each a field of :class:`~hub.train.config.TrainConfig` with its
    default (``epochs=3``, ``lr``, ``batch_size``, ...: the signature lists them); one that is not a field, or a
    value out of its bounds, is refused before anything is read.
    """
    from hub.api import get_spec
    from hub.device import DeviceManager
    from hub.train.distributed import device_for, init_from_env
    from hub.train.evaluation import resolve_metric
    from hub.train.kinds import default_lr, prepare_kind
    from hub.train.config import make_config
    from hub.train.loop import Trainer
    from hub.train.outdir import check_space

    config = make_config(training)
    device, seed = config.device, config.seed
    spec = get_spec(str(model_id), task)
    task = spec.task
    if task in task_kinds():  # an unknown --metric is refused before any data is read
        resolve_metric(task_kinds()[task][0], config.metric)
    out = Path(out) if out else _default_out(spec.id, task)
    with _check_out(out, spec, {"model": str(model_id), "task": task, "data": str(data),
                                "val": None if val is None else str(val)}, resume, overwrite):
        ctx = init_from_env(device)
        dm = DeviceManager(device_for(ctx, device), config.precision)
        if task in task_kinds():
            prep = _prepare(spec, task, data, val, text_column, label_column, on_bad_rows, val_fraction, seed, dm)
        else:
            prep = prepare_kind(spec, task, data, val, config.metric, on_bad_rows, val_fraction, seed, dm)
        adapter, labels = prep.adapter, prep.labels
        config = replace(config, lr=config.lr or default_lr(adapter.kind), device=device_for(ctx, device))
        if ctx.is_main:
            check_space(out, adapter.module, config.keep_checkpoints)
        train, val_records, unloadable = _screen(adapter, prep.train, prep.val, on_bad_rows)
        problems = prep.problems + unloadable
        run_args = {"model": spec.id, "task": task, "data": str(data), "val": None if val is None else str(val),
                    "text_column": text_column, "label_column": label_column, "val_fraction": val_fraction,
                    "world_size": ctx.world_size}
        trainer = Trainer(adapter, train, val_records, config, out, dm, ctx, resume=resume, run_args=run_args)
        result = trainer.fit()
        if ctx.is_main:
            _write_model(out, adapter, trainer.module, spec, task, labels, trainer.metric, result, len(train), data)
        from hub.train.distributed import barrier

        barrier(ctx)
    return FinetuneResult(out_dir=out, metric=trainer.metric, metrics=result.metrics, best_metric=result.best_metric,
                          best_step=result.best_step, steps=result.step, epochs=result.epoch,
                          stopped_early=result.stopped_early, train_rows=len(train), val_rows=len(val_records),
                          throughput=result.throughput, problems=problems, metrics_file=out / "metrics.jsonl",
                          plot=out / "training_curves.png", checkpoint=result.best_checkpoint or result.last_checkpoint)


def _prepare(spec, task, data, val, text_column, label_column, on_bad_rows, val_fraction, seed, dm):
    """A built-in kind: the data read and split, its labels checked, and the plugin's adapter for them."""
    from hub.train.data import check_val_labels, label_names, stratified_split
    from hub.train.kinds import Prepared
    from hub.train.loop import seed_everything

    kind, inputs = task_kind(task)
    records, problems = _read(data, kind, inputs, text_column, label_column, on_bad_rows, "training")
    if val is not None:
        val_records, val_problems = _read(val, kind, inputs, text_column, label_column, on_bad_rows, "validation")
        problems = problems + val_problems
        train = records
    else:
        train, val_records = stratified_split(records, val_fraction, seed)
    labels = label_names(train) if kind == "classification" else None
    if labels is not None:
        if len(labels) < 2:
            raise HubError(f"training data '{data}' has {len(labels)} class(es); classification needs at least 2")
        val_records, label_problems = check_val_labels(val_records, labels, on_bad_rows)
        if label_problems:
            warnings.warn(f"skipped {len(label_problems)} validation rows with unknown labels: "
                          f"{'; '.join(label_problems[:3])}", stacklevel=3)
    seed_everything(seed)  # the new head's initial weights depend on it
    adapter = get_adapter(spec, task, labels, dm)
    return Prepared(adapter, train, val_records, labels, problems)


def _screen(adapter, train, val, on_bad_rows: str):
    """(train, val, problems): rows whose example cannot be loaded are skipped and reported up front."""
    from hub.train.evaluation import screen_records

    train, problems = screen_records(adapter, train, on_bad_rows, "training")
    val, val_problems = screen_records(adapter, val, on_bad_rows, "validation") if val else (val, [])
    if problems or val_problems:
        _warn_skipped(problems + val_problems, "training and validation")
    return train, val, problems + val_problems


def _check_out(out: Path, spec, info: dict, resume: bool, overwrite: bool):
    """Check, create and lock ``out`` (the first process of a distributed run does it; see hub.train.outdir)."""
    import contextlib

    from hub.train.distributed import env_world
    from hub.train.outdir import open_run

    if env_world()[0] != 0:
        return contextlib.nullcontext()
    return open_run(out, spec, info, resume=resume, overwrite=overwrite)


def _write_model(out: Path, adapter, module, spec, task, labels, metric, result, n_train, data) -> None:
    """The model files (plugin's weights, metrics.json, mmhub.yaml last), all appearing in ``out`` at once.

    They are written into a new directory beside ``out`` (``adapter.save`` gets that fresh, empty
    directory), which then takes the place of ``out`` keeping the run's other files (checkpoints,
    log, plot, marker): see :func:`hub.io.atomic_directory`.
    """
    from hub.io import atomic_directory, atomic_write_json
    from hub.local import write_card
    from hub.train.metrics import scalar_metrics

    fields = {"task": task, "plugin": spec.plugin, "arch": spec.arch, "license": spec.license,
              "params": sum(int(p.numel()) for p in module.parameters()), "preprocess": dict(spec.preprocess or {})}
    fields.update(adapter.spec_fields or {})
    scores = scalar_metrics(result.metrics)
    summary = f"; validation {metric} {scores[metric]:.4f}" if metric in scores else ""
    fields["description"] = (f"{spec.id} fine-tuned for {task} on {Path(str(data)).name} "
                             f"({n_train} rows, {result.step} steps{summary})")
    options = dict(fields.get("options") or {})
    options.update(base_model=spec.id, metric=metric, metrics=scores)
    if labels:
        options["labels"] = list(labels)
    fields["options"] = options
    with atomic_directory(out, carry_over=True) as stage:
        adapter.save(module, stage)
        atomic_write_json(stage / "metrics.json", result.metrics)
        write_card(stage, {k: v for k, v in fields.items() if v not in (None, "", {}, [])})


def evaluate(model_or_dir: str, data, task: str | None = None, batch_size: int = 32, precision: str = "auto",
             device: str | None = None, text_column: str = "text", label_column: str = "label",
             on_bad_rows: str = "skip") -> dict:
    """Metrics of a model (catalogue id or fine-tuned directory), as saved, on labelled ``data``.

    A classifier is measured with its own head and labels; data with labels the model lacks is
    refused. A model without a head for the task (a base model) gets a new, untrained one, with
    a warning. Rows whose files cannot be loaded are skipped and reported (``on_bad_rows``).
    """
    from hub.api import get_spec
    from hub.device import DeviceManager
    from hub.train.data import check_model_labels
    from hub.train.evaluation import evaluate_module, example_lengths, screen_records

    spec = get_spec(str(model_or_dir), task)
    if spec.task not in task_kinds():  # a plugin's own kind of training reads and measures it
        from hub.train.kinds import evaluate_kind

        return evaluate_kind(spec, data, batch_size, DeviceManager(device, precision), on_bad_rows)
    kind, inputs = task_kind(spec.task)
    records, _ = _read(data, kind, inputs, text_column, label_column, on_bad_rows, "evaluation")
    saved = (spec.options or {}).get("labels")
    if kind == "classification" and saved:  # a hub finetune output: refuse before loading anything
        check_model_labels(records, list(saved), data, spec.id)
    dm = DeviceManager(device, precision)
    adapter = eval_adapter(spec, kind, records, dm)
    if kind == "classification":
        check_model_labels(records, adapter.labels, data, spec.id)
    records, problems = screen_records(adapter, records, on_bad_rows, "evaluation")
    if problems:
        _warn_skipped(problems, "evaluation")
    module = adapter.module.to(dm.device).eval()
    return evaluate_module(adapter, module, records, dm, batch_size, lengths=example_lengths(adapter, records))


def eval_adapter(spec, kind: str, records, device_manager):
    """The model as saved, head included; a model without a head for the task gets a new one, with a warning."""
    from hub.train.adapter import NoHeadError
    from hub.train.data import label_names

    saved = list((spec.options or {}).get("labels") or []) or None
    try:
        adapter = get_adapter(spec, spec.task, saved if kind == "classification" else None, device_manager)
    except NoHeadError as exc:
        labels = label_names(records)
        warnings.warn(f"{exc}; evaluating a new, untrained head for the data's {len(labels)} labels, so these "
                      "metrics are those of a random head (fine-tune it first: hub finetune)", stacklevel=3)
        return get_adapter(spec, spec.task, labels, device_manager)
    if adapter.new_head or (kind == "classification" and not adapter.labels):
        raise HubError(f"the plugin '{spec.plugin}' did not load the trained {spec.task} head of '{spec.id}' "
                       "(it built a new one), so an evaluation would measure a random head. Check that the "
                       "model directory is complete (hub info), or re-save it with hub finetune")
    return adapter


def _warn_skipped(problems: list[str], what: str) -> None:
    shown = "; ".join(problems[:5]) + (f"; ... {len(problems) - 5} more" if len(problems) > 5 else "")
    warnings.warn(f"skipped {len(problems)} {what} rows that cannot be loaded: {shown}", stacklevel=3)
