"""``hub finetune --shard``: FSDP2 (``torch.distributed.fsdp.fully_shard``) for models beyond one device.

Each rank keeps only its shard of every parameter, gradient and optimiser state; a block's full
weights are gathered just before its forward and backward and freed after. The units sharded on
their own are the adapter's backbone ``blocks`` (else every member of an ``nn.ModuleList``); the
rest (embeddings, head) is sharded as one unit around :func:`hub.train.distributed.step_module`.

Checkpoints are sharded too (``torch.distributed.checkpoint``, DCP)::

    step-00000120/sharded/       every rank's shards of the weights and the optimiser state
    step-00000120/state.pt       position, scheduler, RNG, best metric, run arguments (rank 0)

written into one temporary folder that rank 0 renames into place once every rank has written
(:func:`hub.io.atomic_directory`), so a crash leaves the previous checkpoint. A resumed run may
use another number of processes: DCP reshards on load. At the end the full weights are gathered
on rank 0 into an ordinary module (built on the ``meta`` device before sharding, so it costs no
memory until then), which is saved as a normal model directory. Evaluation runs every validation
batch on every rank, in step, since each forward gathers weights from all of them.
"""
from __future__ import annotations

import contextlib
import copy
from pathlib import Path

from hub.train.checkpoint import SHARDED


class Sharded:
    """The FSDP2-wrapped step module of one run, and what the loop does differently with it."""

    def __init__(self, module, adapter, ctx):
        import torch
        from torch.distributed.fsdp import fully_shard

        from hub.train.distributed import step_module

        self.ctx = ctx
        self.skeleton = meta_copy(module) if ctx.is_main else None
        self.units = shard_units(module, adapter)
        for unit in self.units:
            fully_shard(unit)
        self.root = fully_shard(step_module(module, adapter))
        self._torch = torch

    def loss(self, batch, sync: bool = True):
        """The loss of ``batch``; with ``sync=False`` gradients are kept local (accumulation)."""
        self.root.set_requires_gradient_sync(sync)
        return self.root(batch)

    def eval_adapter(self, adapter):
        """The adapter as evaluation sees it: ``predict`` runs through the sharded root."""
        import dataclasses

        return dataclasses.replace(adapter, predict=lambda root, batch: root(batch, predict=True))

    def clip(self, max_norm: float | None) -> None:
        if max_norm and max_norm > 0:
            params = [p for p in self.root.parameters() if p.grad is not None]
            if params:
                self._torch.nn.utils.clip_grad_norm_(params, max_norm)

    def full_module(self):
        """Every rank gathers; rank 0 gets an ordinary module with the trained weights (others None)."""
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        full = get_model_state_dict(self.root, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
        if not self.ctx.is_main:
            return None
        inner = {k[len("module."):]: v for k, v in full.items() if k.startswith("module.")}
        self.skeleton.load_state_dict(inner, strict=True, assign=True)
        return self.skeleton.eval()

    # -- checkpoints -------------------------------------------------------------------------
    def save(self, root, optimizer, state: dict, best: bool, keep: int) -> None:
        """Every rank writes its shards into rank 0's temporary folder; rank 0 publishes it."""
        import torch
        import torch.distributed.checkpoint as dcp
        from torch.distributed.checkpoint.state_dict import get_state_dict

        from hub.io import atomic_directory
        from hub.train import checkpoint as ckpt
        from hub.train.distributed import barrier, broadcast

        model_sd, optim_sd = get_state_dict(self.root, optimizer)
        name = ckpt.step_name(int(state["step"]))
        writer = atomic_directory(Path(root) / name) if self.ctx.is_main else contextlib.nullcontext()
        with writer as stage:
            stage = Path(broadcast(str(stage) if stage else None, self.ctx))
            dcp.save({"model": model_sd, "optimizer": optim_sd}, checkpoint_id=str(stage / SHARDED))
            barrier(self.ctx)
            if self.ctx.is_main:
                with open(stage / ckpt.STATE, "wb") as fh:
                    torch.save({k: v for k, v in state.items() if k != "optimizer"}, fh)
        if self.ctx.is_main:
            ckpt.publish(root, name, best, keep)
        barrier(self.ctx)

    def load(self, path, optimizer=None) -> None:
        """Load checkpoint ``path``'s sharded weights (and the optimiser state, when given)."""
        import torch.distributed.checkpoint as dcp
        from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

        if optimizer is None:
            from torch.distributed.checkpoint.state_dict import get_model_state_dict, set_model_state_dict

            model_sd = get_model_state_dict(self.root)
            dcp.load({"model": model_sd}, checkpoint_id=str(Path(path) / SHARDED))
            set_model_state_dict(self.root, model_sd)
            return
        model_sd, optim_sd = get_state_dict(self.root, optimizer)
        dcp.load({"model": model_sd, "optimizer": optim_sd}, checkpoint_id=str(Path(path) / SHARDED))
        set_state_dict(self.root, optimizer, model_state_dict=model_sd, optim_state_dict=optim_sd)


def shard_units(module, adapter) -> list:
    """The submodules sharded on their own: the adapter's backbone blocks, else ModuleList members."""
    from torch import nn

    if adapter.blocks is not None:
        units = list(adapter.blocks(module))
    else:
        units = [child for m in module.modules() if isinstance(m, nn.ModuleList) for child in m]
    return [u for u in units if any(True for _ in u.parameters())]


def meta_copy(module):
    """A copy of ``module`` whose parameters live on the ``meta`` device (buffers are copied)."""
    import torch

    memo = {}
    for param in module.parameters():
        if id(param) not in memo:
            memo[id(param)] = torch.nn.Parameter(torch.empty_like(param, device="meta"),
                                                 requires_grad=param.requires_grad)
    return _cpu_buffers(copy.deepcopy(module, memo))


def _cpu_buffers(module):
    for sub in module.modules():
        for name, buf in list(sub._buffers.items()):
            if buf is not None:
                sub._buffers[name] = buf.detach().to("cpu")
    return module
