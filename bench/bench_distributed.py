"""Distributed training benchmark: 2 gloo processes on the CPU, the hub's DDP and FSDP2 against the old ways.

The model is a stack of MLP blocks (512 -> 2048 -> 512, 8 blocks, about 16.8M parameters) trained
with AdamW on random regression batches of 32 per rank, one torch thread per rank.

- throughput: the hub's DDP (:func:`hub.train.distributed.wrap_ddp`: buckets all-reduced while
  backward runs) against the hand-written all-reduce the loop used before (flat buckets reduced
  after backward; kept here, and only here, as :func:`old_average_gradients`). Examples per
  second over both ranks, median of the timed steps after warm-up.
- memory: model-state bytes per rank (parameters, gradients and AdamW state held by the rank)
  under FSDP2 (:class:`hub.train.sharded.Sharded`) against DDP, which keeps a full copy of each
  on every rank; the peak resident memory of each rank is in the notes.
"""
from __future__ import annotations

import os
import socket
import statistics
import time

from bench.common import Row

GROUP = "train: distributed (2 gloo processes, CPU)"
WIDTH, HIDDEN, BLOCKS, BATCH = 512, 2048, 8, 32


def run(quick: bool = False) -> list[Row]:
    steps = 6 if quick else 30
    results = {mode: _launch(mode, steps) for mode in ("old", "ddp", "fsdp")}
    old, ddp, fsdp = results["old"], results["ddp"], results["fsdp"]
    mb = 2**20
    note = f"{steps} steps, {BLOCKS} MLP blocks ({ddp['params'] / 1e6:.1f}M params), batch {BATCH} per rank"
    return [
        Row(GROUP, "hub finetune's DDP (bucketed, overlapped with backward)", ddp["rate"],
            "hand-written all-reduce after backward", old["rate"], "examples/s", ">= 1.0x", note),
        Row(GROUP, "FSDP2 (--shard): model-state memory per rank saved against DDP", ddp["state"] / fsdp["state"],
            "DDP (a full copy per rank)", 1.0, "x less memory", ">= 1.8x",
            f"{note}; model state per rank: DDP {ddp['state'] / mb:.0f} MB, FSDP2 {fsdp['state'] / mb:.0f} MB; "
            f"peak RSS per rank: DDP {ddp['rss'] / mb:.0f} MB, FSDP2 {fsdp['rss'] / mb:.0f} MB; "
            f"FSDP2 throughput {fsdp['rate']:.0f} examples/s",
            {"ddp_state_bytes": ddp["state"], "fsdp_state_bytes": fsdp["state"], "ddp_rss": ddp["rss"],
             "fsdp_rss": fsdp["rss"], "fsdp_rate": fsdp["rate"]}),
    ]


def _launch(mode: str, steps: int) -> dict:
    """Run ``mode`` on 2 spawned processes; rank 0's figures."""
    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = mp.get_context("spawn")
    box = ctx.Queue()
    mp.start_processes(_worker, args=(2, port, mode, steps, box), nprocs=2, join=True, start_method="spawn")
    return box.get(timeout=60)


def _worker(rank: int, world: int, port: int, mode: str, steps: int, box) -> None:
    """One rank: train ``steps`` timed steps (after 2 warm-up steps) in ``mode``; rank 0 puts its figures in ``box``."""
    import resource

    import torch
    import torch.distributed as dist

    from hub.train.distributed import DistContext

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.manual_seed(0)
    module = _model()
    step = _step(mode, module, DistContext(rank, world, rank, "gloo"))
    params = list(step.parameters())
    optimizer = torch.optim.AdamW(params, lr=1e-4)
    gen = torch.Generator().manual_seed(rank)
    times = []
    for i in range(steps + 2):
        batch = {"x": torch.randn(BATCH, WIDTH, generator=gen), "y": torch.randn(BATCH, WIDTH, generator=gen)}
        began = time.perf_counter()
        step(batch).backward()
        if mode == "old":
            old_average_gradients(module, world)
        optimizer.step()
        optimizer.zero_grad(set_to_none=False)  # keep gradients allocated: they count as model state
        if i >= 2:
            times.append(time.perf_counter() - began)
    state = _local_bytes(params) * 2 + sum(_local_bytes(list(s.values())) for s in optimizer.state.values())
    rate = BATCH * world / statistics.median(times)
    if rank == 0:
        box.put({"rate": rate, "state": state, "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                 "params": sum(p.numel() for p in module.parameters()) if mode != "fsdp" else 0})
    dist.barrier()
    dist.destroy_process_group()


def _step(mode: str, module, ctx):
    """The module that takes a batch and returns its loss: DDP, FSDP2, or plain (the old all-reduce's)."""
    import torch
    import torch.distributed as dist

    from hub.train.adapter import TrainAdapter
    from hub.train.distributed import step_module, wrap_ddp

    adapter = TrainAdapter(module=module, kind="classification", load_example=None, collate=None,
                           loss=lambda m, b: torch.nn.functional.mse_loss(m(b["x"]), b["y"]), predict=None,
                           save=None, blocks=lambda m: list(m))
    if mode == "ddp":
        return wrap_ddp(module, adapter, ctx, "cpu")
    if mode == "fsdp":
        from hub.train.sharded import Sharded

        return Sharded(module, adapter, ctx).root
    for p in module.parameters():
        dist.broadcast(p.data, src=0)
    return step_module(module, adapter)


def _model():
    from torch import nn

    return nn.Sequential(*[nn.Sequential(nn.Linear(WIDTH, HIDDEN), nn.GELU(), nn.Linear(HIDDEN, WIDTH))
                           for _ in range(BLOCKS)])


def _local_bytes(tensors) -> int:
    """Bytes this rank holds for ``tensors`` (a DTensor counts its local shard only)."""
    total = 0
    for t in tensors:
        if not hasattr(t, "numel"):
            continue
        local = t.to_local() if hasattr(t, "to_local") else t
        total += local.numel() * local.element_size()
    return total


def old_average_gradients(module, world_size: int, bucket_bytes: int = 32 * 2**20) -> None:
    """The loop's former gradient averaging: flat buckets all-reduced after the whole backward."""
    import torch
    import torch.distributed as dist
    from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors

    params = [p for p in module.parameters() if p.requires_grad]
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    buckets, bucket, size = [], [], 0
    for p in params:
        bucket.append(p.grad)
        size += p.grad.numel() * p.grad.element_size()
        if size >= bucket_bytes:
            buckets.append(bucket)
            bucket, size = [], 0
    if bucket:
        buckets.append(bucket)
    for grads in buckets:
        flat = _flatten_dense_tensors(grads)
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        flat /= world_size
        for grad, synced in zip(grads, _unflatten_dense_tensors(flat, grads)):
            grad.copy_(synced)
