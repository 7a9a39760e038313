"""Optimiser, parameter groups, freezing and learning-rate schedules.

- AdamW; no weight decay on biases and normalisation weights (any parameter with fewer than two
  dimensions, or a name containing ``bias``/``norm``).
- Discriminative learning rates: parameters under ``adapter.head_prefixes`` (the new task head)
  get ``lr * head_lr_mult``; the pretrained backbone gets ``lr``.
- ``freeze_backbone`` trains the head only; ``unfreeze_last=N`` trains the head plus the last N
  of ``adapter.blocks(module)``.
- Schedules: ``constant``, ``linear`` (to 0) and ``cosine`` (to 0), each after a linear warmup of
  ``warmup`` steps (a value below 1 is a fraction of the total steps).
"""
from __future__ import annotations

import math

from hub.errors import HubError

SCHEDULES = ("constant", "linear", "cosine")


def is_head(name: str, head_prefixes) -> bool:
    return any(name == p or name.startswith(p if p.endswith(".") else p + ".") for p in head_prefixes)


def no_decay(name: str, param) -> bool:
    lowered = name.lower()
    return param.ndim < 2 or "bias" in lowered or "norm" in lowered


def apply_freezing(adapter, freeze_backbone: bool = False, unfreeze_last: int | None = None) -> dict:
    """Set ``requires_grad``; returns counts of trainable and frozen parameters."""
    module = adapter.module
    if unfreeze_last is not None and unfreeze_last < 0:
        raise HubError(f"unfreeze_last must be 0 or more, got {unfreeze_last}")
    if (freeze_backbone or unfreeze_last is not None) and not adapter.head_prefixes:
        raise HubError("this model's adapter names no task head (head_prefixes), so its backbone cannot be "
                       "frozen; train without --freeze-backbone/--unfreeze-last")
    if freeze_backbone or unfreeze_last is not None:
        for name, param in module.named_parameters():
            param.requires_grad_(is_head(name, adapter.head_prefixes))
    if unfreeze_last:
        if adapter.blocks is None:
            raise HubError("this model's adapter does not list its backbone blocks, so --unfreeze-last "
                           "cannot choose them; use --freeze-backbone or train everything")
        blocks = list(adapter.blocks(module))
        if unfreeze_last > len(blocks):
            raise HubError(f"--unfreeze-last {unfreeze_last} but the backbone has only {len(blocks)} blocks")
        for block in blocks[len(blocks) - unfreeze_last:]:
            for param in block.parameters():
                param.requires_grad_(True)
    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    total = sum(p.numel() for p in module.parameters())
    if trainable == 0:
        raise HubError("no parameter is left to train; unfreeze some blocks (--unfreeze-last N)")
    return {"trainable": trainable, "frozen": total - trainable}


def param_groups(module, head_prefixes=(), lr: float = 1e-4, head_lr_mult: float = 1.0,
                 weight_decay: float = 0.01) -> list[dict]:
    """AdamW parameter groups: (backbone|head) x (decay|no decay), trainable parameters only."""
    buckets: dict[tuple[bool, bool], list] = {}
    names: dict[tuple[bool, bool], list[str]] = {}
    for name, param in module.named_parameters():
        if not param.requires_grad:
            continue
        key = (is_head(name, head_prefixes), no_decay(name, param))
        buckets.setdefault(key, []).append(param)
        names.setdefault(key, []).append(name)
    groups = []
    for head in (False, True):
        for nd in (False, True):
            if (head, nd) in buckets:
                groups.append({"params": buckets[(head, nd)], "names": names[(head, nd)],
                               "lr": lr * (head_lr_mult if head else 1.0),
                               "weight_decay": 0.0 if nd else weight_decay,
                               "group": f"{'head' if head else 'backbone'}{'/no_decay' if nd else ''}"})
    return groups


def make_optimizer(module, head_prefixes=(), lr: float = 1e-4, head_lr_mult: float = 1.0,
                   weight_decay: float = 0.01):
    import torch

    groups = param_groups(module, head_prefixes, lr, head_lr_mult, weight_decay)
    try:  # the fused kernel (CPU, CUDA, MPS) is several times faster than the per-tensor loops
        return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.999), eps=1e-8, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.999), eps=1e-8)


def warmup_steps(warmup: float, total_steps: int) -> int:
    if warmup < 0:
        raise HubError(f"warmup must be 0 or more, got {warmup}")
    return int(round(warmup * total_steps)) if warmup < 1 else int(warmup)


def lr_factor(step: int, total_steps: int, schedule: str = "linear", warmup: int = 0) -> float:
    """Multiplier of the base learning rate for optimiser step ``step`` (0-based)."""
    if schedule not in SCHEDULES:
        raise HubError(f"unknown schedule '{schedule}'; valid: {', '.join(SCHEDULES)}")
    if warmup > 0 and step < warmup:
        return (step + 1) / (warmup + 1)
    if schedule == "constant":
        return 1.0
    span = max(1, total_steps - warmup)
    progress = min(1.0, (step - warmup) / span)
    if schedule == "linear":
        return max(0.0, 1.0 - progress)
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def make_scheduler(optimizer, total_steps: int, schedule: str = "linear", warmup: float = 0.0):
    """A LambdaLR stepping once per optimiser step (its state_dict holds only numbers)."""
    import torch

    n_warm = warmup_steps(warmup, total_steps)
    lr_factor(0, total_steps, schedule, n_warm)  # validates the schedule name now

    def factor(step: int) -> float:
        return lr_factor(step, total_steps, schedule, n_warm)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def clip_gradients(module, max_norm: float | None) -> float | None:
    """Clip the global gradient norm; returns the norm before clipping (None when off)."""
    import torch

    if not max_norm or max_norm <= 0:
        return None
    params = [p for p in module.parameters() if p.grad is not None]
    if not params:
        return None
    return float(torch.nn.utils.clip_grad_norm_(params, max_norm))
