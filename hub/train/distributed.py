"""torch.distributed for the fine-tuning loop: one process per device, started by torchrun.

``torchrun`` (``python -m torch.distributed.run``) sets ``RANK``, ``WORLD_SIZE`` and
``LOCAL_RANK``; :func:`init_from_env` joins the process group (``nccl`` on CUDA, ``gloo`` on
the CPU), every rank starts from rank 0's weights, reads its share of each epoch
(``DistributedSampler``) and averages gradients before each optimiser step (as DDP does);
evaluation counts are summed with ``all_reduce`` and only rank 0 writes checkpoints, logs, the
plot and the final model. ``hub finetune --nproc N`` re-runs itself under torchrun on this
machine; for several machines run torchrun directly on each (``--nnodes``, ``--node_rank``,
``--master_addr``); ``--resume`` then needs the output directory on a shared filesystem.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass


@dataclass
class DistContext:
    """Where this process sits in the run (rank 0 of 1 when not distributed)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def env_world() -> tuple[int, int, int]:
    """(rank, world size, local rank) from torchrun's environment variables."""
    return (int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
            int(os.environ.get("LOCAL_RANK", 0)))


def init_from_env(device: str | None = None) -> DistContext:
    """Join the process group when launched by torchrun with ``WORLD_SIZE > 1``."""
    rank, world, local = env_world()
    if world <= 1:
        return DistContext()
    import torch
    import torch.distributed as dist

    use_cuda = torch.cuda.is_available() and (device is None or device.startswith("cuda"))
    backend = "nccl" if use_cuda else "gloo"
    if use_cuda:
        torch.cuda.set_device(local)
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return DistContext(rank, world, local, backend)


def device_for(ctx: DistContext, device: str | None) -> str | None:
    """Each rank's device: ``cuda:LOCAL_RANK`` on CUDA, else the requested device."""
    if ctx.enabled and ctx.backend == "nccl":
        return f"cuda:{ctx.local_rank}"
    if ctx.enabled and device is None:
        return "cpu"
    return device


def broadcast_parameters(module, ctx: DistContext) -> None:
    """Copy rank 0's parameters and buffers to every rank (all ranks start identical)."""
    if not ctx.enabled:
        return
    import torch.distributed as dist

    for tensor in [*module.parameters(), *module.buffers()]:
        dist.broadcast(tensor.data, src=0)


def average_gradients(module, ctx: DistContext, bucket_bytes: int = 32 * 2**20) -> None:
    """Average the gradients over ranks in a few flat all_reduce calls (DDP's arithmetic).

    Done after the last accumulation micro-batch instead of through a DDP wrapper, so that an
    adapter's ``loss`` may call any method of its module (``encode_image``...), and parameters
    a step does not use need no ``find_unused_parameters``. Gradients of trainable parameters
    that got none this step count as zeros, as in DDP.
    """
    if not ctx.enabled:
        return
    import torch
    import torch.distributed as dist

    params = [p for p in module.parameters() if p.requires_grad]
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    bucket, size = [], 0
    for p in params:
        bucket.append(p.grad)
        size += p.grad.numel() * p.grad.element_size()
        if size >= bucket_bytes:
            _reduce_bucket(bucket, ctx, dist)
            bucket, size = [], 0
    if bucket:
        _reduce_bucket(bucket, ctx, dist)


def _reduce_bucket(grads, ctx: DistContext, dist) -> None:
    from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors

    flat = _flatten_dense_tensors(grads)
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat /= ctx.world_size
    for grad, synced in zip(grads, _unflatten_dense_tensors(flat, grads)):
        grad.copy_(synced)


def all_reduce_sum(tensor, ctx: DistContext):
    """Sum ``tensor`` over ranks in place (a no-op when not distributed); returns it."""
    if ctx.enabled:
        import torch.distributed as dist

        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def gather_lists(items: list, ctx: DistContext) -> list:
    """Concatenate each rank's list, rank 0's first (every rank receives the whole)."""
    if not ctx.enabled:
        return list(items)
    import torch.distributed as dist

    parts = [None] * ctx.world_size
    dist.all_gather_object(parts, list(items))
    return [x for part in parts for x in part]


def broadcast(obj, ctx: DistContext):
    """Rank 0's ``obj`` on every rank."""
    if not ctx.enabled:
        return obj
    import torch.distributed as dist

    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier(ctx: DistContext) -> None:
    if ctx.enabled:
        import torch.distributed as dist

        dist.barrier()


def shutdown(ctx: DistContext) -> None:
    if ctx.enabled:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


def launch_command(nproc: int, finetune_args: list[str]) -> list[str]:
    """The torchrun command that runs ``hub finetune ARGS`` in ``nproc`` processes here."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc),
            "-m", "hub.cli", "finetune", *finetune_args]


def launch(nproc: int, finetune_args: list[str]) -> int:
    """Run ``launch_command`` and return its exit code."""
    import subprocess

    return subprocess.call(launch_command(nproc, finetune_args))
