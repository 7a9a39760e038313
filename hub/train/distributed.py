"""torch.distributed for the fine-tuning loop: one process per device, started by torchrun.

``torchrun`` (``python -m torch.distributed.run``) sets ``RANK``, ``WORLD_SIZE`` and
``LOCAL_RANK``; :func:`init_from_env` joins the process group (``nccl`` on CUDA, ``gloo`` on
the CPU) and every rank reads its share of each epoch (``DistributedSampler``). The module is
wrapped in torch's ``DistributedDataParallel`` (:func:`wrap_ddp`), which starts from rank 0's
weights and averages gradients in buckets that are all-reduced while backward still runs; with
``--shard`` it is sharded with FSDP2 instead (:mod:`hub.train.sharded`). Either way the wrapped
module is a :func:`step_module` whose forward is the adapter's own ``loss(module, batch)``, so an
adapter may call any method of its module (``encode_image``...) and plugins see no change.
Evaluation counts and the logged loss are reduced over ranks; only rank 0 writes logs, the plot
and the final model (and, without ``--shard``, the checkpoints). ``hub finetune --nproc N``
re-runs itself under torchrun on this machine; for several machines run torchrun directly on
each (``--nnodes``, ``--node_rank``, ``--master_addr``); ``--resume`` then needs the output
directory on a shared filesystem.
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


_STEP_CLASS = None


def step_module(module, adapter):
    """An ``nn.Module`` holding ``module`` whose forward is ``adapter.loss`` (``predict=True``: ``adapter.predict``).

    DDP and FSDP hook the forward of the module they wrap; wrapping this one instead of the
    adapter's module lets ``loss`` call whatever methods it likes while the hooks still run.
    """
    global _STEP_CLASS
    if _STEP_CLASS is None:
        import torch

        class AdapterStep(torch.nn.Module):
            def __init__(self, inner, loss, predict):
                super().__init__()
                self.module = inner
                self._loss, self._predict = loss, predict

            def forward(self, batch, predict: bool = False):
                return (self._predict if predict else self._loss)(self.module, batch)

        _STEP_CLASS = AdapterStep
    return _STEP_CLASS(module, adapter.loss, adapter.predict)


def wrap_ddp(module, adapter, ctx: DistContext, device: str, find_unused: bool = False):
    """``DistributedDataParallel`` over :func:`step_module`: call it with a batch to get the loss.

    ``find_unused`` (see :func:`has_unused_parameters`) lets steps leave some trainable
    parameters without gradients, at the cost of a walk over the autograd graph each step.
    """
    import torch
    from torch.nn.parallel import DistributedDataParallel

    ids = [torch.device(device).index or 0] if str(device).startswith("cuda") else None
    return DistributedDataParallel(step_module(module, adapter), device_ids=ids, find_unused_parameters=find_unused,
                                   gradient_as_bucket_view=True)


def has_unused_parameters(module, loss_of_a_batch, ctx: DistContext) -> bool:
    """Whether one step's loss leaves a trainable parameter of ``module`` without a gradient, on any rank.

    ``loss_of_a_batch()`` loads a batch and returns its loss; the random generators and the
    module's buffers (batch-norm statistics) are put back afterwards, so the run is unchanged.
    """
    import torch

    from hub.train import checkpoint as ckpt

    params = [p for p in module.parameters() if p.requires_grad]
    rng, buffers = ckpt.rng_state(), [b.detach().clone() for b in module.buffers()]
    try:
        grads = torch.autograd.grad(loss_of_a_batch(), params, allow_unused=True)
        unused = any(g is None for g in grads)
    finally:
        with torch.no_grad():
            for buf, saved in zip(module.buffers(), buffers):
                buf.copy_(saved)
        ckpt.set_rng_state(rng)
    return mean_over_ranks(float(unused), ctx) > 0


def mean_over_ranks(value: float, ctx: DistContext) -> float:
    """The mean of ``value`` over ranks (``value`` itself when not distributed)."""
    if not ctx.enabled:
        return value
    import torch

    device = f"cuda:{ctx.local_rank}" if ctx.backend == "nccl" else "cpu"
    box = torch.tensor([float(value)], dtype=torch.float64, device=device)
    all_reduce_sum(box, ctx)
    return float(box.item()) / ctx.world_size


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
    """Run ``launch_command`` through torchrun's launcher in this process and return the exit code.

    The ranks say themselves why they stop (bad input: one ``Error:`` line, exit code 2); torchrun's
    own report of a failed rank, a traceback, is kept back, and a rank killed or crashed is named in
    one line instead. Returns 2 when a rank refused its input, else the first failure's code (1 for a signal).
    """
    import logging

    from torch.distributed.elastic.multiprocessing import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    os.environ.setdefault("OMP_NUM_THREADS", "1")  # torchrun's own default, without its banner
    elastic = logging.getLogger("torch.distributed.elastic")
    level = elastic.level
    elastic.setLevel(logging.CRITICAL)
    try:
        run(parse_args(launch_command(nproc, finetune_args)[3:]))
    except ChildFailedError as exc:
        codes = {rank: failure.exitcode for rank, failure in exc.failures.items()}
        if 2 in codes.values():
            return 2
        rank, code = min(codes.items())
        print(f"Error: rank {rank} of {nproc} stopped with exit code {code}"
              f"{' (killed by a signal)' if code < 0 else ''}; its messages are above", file=sys.stderr)
        return code if code > 0 else 1
    except SignalException as exc:  # Ctrl-C or a kill of this launcher: the ranks were stopped with it
        print(f"Stopped by {exc.sigval.name}; resume with --resume", file=sys.stderr)
        return 128 + int(exc.sigval)
    finally:
        elastic.setLevel(level)
    return 0
