"""The training parameters, listed once: :class:`TrainConfig`.

Each field carries what the rest of the hub needs to offer it: its help text, its bounds or choices. ``hub finetune``
builds one option per field from them (:mod:`hub.train.commands`), ``hub.train.finetune`` takes each as a keyword
with the field's default (its signature is built from the fields), and :meth:`TrainConfig.check` refuses a value
out of bounds by name, so the CLI and the Python API accept the same values. Only dataclasses and the hub's
errors are imported here, so ``hub finetune --help`` stays fast.
"""
from __future__ import annotations

import math
from dataclasses import Field, dataclass, field, fields

from hub.errors import HubError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
SCHEDULES = ("constant", "linear", "cosine")


def param(default, help: str, *, low: float | None = None, open_low: bool = False,
          choices: tuple[str, ...] | None = None, cli: bool = True) -> Field:
    """A TrainConfig field: ``low`` is the smallest value (excluded when ``open_low``), ``choices`` the values a
    text field takes; ``cli=False`` keeps it out of ``hub finetune`` (set from the Python API only)."""
    return field(default=default, metadata={"help": help, "low": low, "open_low": open_low, "choices": choices,
                                            "cli": cli})


@dataclass
class TrainConfig:
    """Everything that shapes a run (saved in checkpoints and compared on resume)."""

    epochs: int = param(3, "Passes over the training data.", low=1)
    lr: float | None = param(None, "Backbone learning rate; the new head gets --head-lr-mult times it "
                                   "(default: the kind's, 5e-5; CLIP 1e-5, CTC 1e-4).", low=0, open_low=True)
    batch_size: int = param(32, "Examples per device.", low=1)
    grad_accum: int = param(1, "Micro-batches per optimiser step.", low=1)
    precision: str = param("auto", "auto: bf16 autocast where fast (CUDA bf16, AMX CPUs), fp16 + grad scaling, "
                                   "or fp32.", choices=PRECISIONS)
    device: str | None = param(None, "cpu, cuda, cuda:N or mps (default: HUB_DEVICE, else the best available; "
                                     "each process of a distributed run takes its own GPU).")
    freeze_backbone: bool = param(False, "Train the new head only.")
    unfreeze_last: int | None = param(None, "Train the head and the last N backbone blocks.", low=0)
    seed: int = param(0, "Seeds the data order, the validation split and the new head.")
    eval_every: int | None = param(None, "Evaluate every N steps (always at each epoch end).", low=1)
    save_every: int | None = param(None, "Write a checkpoint every N steps (always at each evaluation).", low=1)
    patience: int | None = param(None, "Stop after N evaluations without improvement.", low=1)
    metric: str = param("accuracy", "Metric that picks the best checkpoint: accuracy, f1_macro, loss, recall@1, "
                                    "wer, or one the plugin's own kind of training reports (e.g. miou for "
                                    "image-segmentation).")
    schedule: str = param("linear", "Learning-rate schedule after warmup.", choices=SCHEDULES)
    warmup: float = param(0.1, "Warmup steps (a value below 1 is a fraction of all steps).", low=0)
    weight_decay: float = param(0.01, "AdamW weight decay (not applied to biases and norms).", low=0)
    max_grad_norm: float | None = param(1.0, "Clip the gradients' norm to this.", low=0, open_low=True)
    head_lr_mult: float = param(10.0, "The new head's learning rate, as a multiple of --lr.", low=0, open_low=True)
    group_by_length: bool = param(True, "Batch examples of similar length together (less padding).")
    max_steps: int | None = param(None, "Stop after this many optimiser steps.", low=1)
    num_workers: int = param(0, "DataLoader worker processes; exact resume (same augmentations) holds with 0.", low=0)
    keep_checkpoints: int = param(2, "The newest N checkpoints are kept, older ones deleted (the best one is kept apart).",
                                  low=1)
    log_every: int = param(10, "Write a metrics.jsonl line every N optimiser steps.", low=1)
    progress: bool = param(True, "Show a progress bar on stderr.", cli=False)
    shard: bool = param(False, "Shard weights, gradients and optimiser state over the processes (FSDP2), for "
                               "models beyond one device's memory; checkpoints are saved sharded.")

    def check(self) -> None:
        """Refuse, by name, a value of the wrong type, out of its bounds or not among its choices."""
        for f in fields(self):
            check_value(f, getattr(self, f.name))


def config_fields() -> dict[str, Field]:
    """TrainConfig's fields by name, in declaration order."""
    return {f.name: f for f in fields(TrainConfig)}


_TYPES = {"int": int, "float": float, "str": str, "bool": bool}
_WHAT = {int: "a whole number", float: "a number", str: "a text", bool: "true or false"}


def value_type(f: Field) -> tuple[type, bool]:
    """(the type of field ``f``'s values, whether it may be None), from its annotation."""
    names = [part.strip() for part in str(f.type).split("|")]
    return _TYPES[names[0]], "None" in names


def check_value(f: Field, value) -> None:
    """Refuse ``value`` for field ``f`` in one line naming the field and what it takes."""
    kind, optional = value_type(f)
    if value is None:
        if optional:
            return
        raise HubError(f"{f.name} must be {_WHAT[kind]}, got None")
    numeric = (int, float) if kind is float else kind
    if isinstance(value, bool) != (kind is bool) or not isinstance(value, numeric):
        raise HubError(f"{f.name} must be {_WHAT[kind]}, got {value!r}")
    if kind is float and not math.isfinite(value):
        raise HubError(f"{f.name} must be a finite number, got {value!r}")
    low, open_low = f.metadata.get("low"), f.metadata.get("open_low")
    if low is not None and (value < low or (open_low and value == low)):
        raise HubError(f"{f.name} must be {'above' if open_low else 'at least'} {low:g}, got {value!r}")
    choices = f.metadata.get("choices")
    if choices and value not in choices:
        raise HubError(f"{f.name} must be one of {', '.join(choices)}, got {value!r}")


def make_config(overrides: dict) -> TrainConfig:
    """A TrainConfig from keyword overrides, checked: an unknown name is refused with the valid ones."""
    known = config_fields()
    unknown = sorted(set(overrides) - set(known))
    if unknown:
        from hub.options import unknown_option_error

        raise unknown_option_error(unknown, list(known), "finetune", what="training parameter")
    config = TrainConfig(**overrides)
    config.check()
    return config


def with_training_parameters(function):
    """Give ``function``, which takes the training parameters as ``**training``, the signature that names each
    TrainConfig field as a keyword with its default (what ``help()``, editors and ``inspect`` show)."""
    import inspect

    signature = inspect.signature(function)
    kept = [p for p in signature.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    named = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=f.default, annotation=f.type)
             for name, f in config_fields().items()]
    function.__signature__ = signature.replace(parameters=kept + named)
    return function
