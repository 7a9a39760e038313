"""The Trainer: the one loop that fine-tunes any plugin's :class:`TrainAdapter`.

One optimiser step = ``grad_accum`` micro-batches of ``batch_size`` examples per rank. The data
order is a function of (seed, epoch) only (:mod:`hub.train.batching`), and every checkpoint is
taken right after an optimiser step, recording the epoch and how many micro-batches of it are
done: a resumed run restores weights, optimiser, scheduler, grad scaler and RNG states, skips
those batches, and ends with the same weights as a run that was never interrupted.

Evaluation runs every ``eval_every`` steps and at each epoch end; a checkpoint is written at
each evaluation, at each epoch end and every ``save_every`` steps. The checkpoint with the best
validation metric is kept apart (``checkpoints/best``); at the end its weights are the ones
saved as the output model (without validation data: the last weights).

With several processes the adapter's module is wrapped by torch DDP, or sharded by FSDP2 with
``shard`` (:mod:`hub.train.distributed`, :mod:`hub.train.sharded`); ``self.module`` stays the
adapter's own module (for FSDP, the gathered full module once training ends).
"""
from __future__ import annotations

import math
import random
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

from hub.errors import HubError
from hub.train import checkpoint as ckpt
from hub.train.batching import epoch_batches
from hub.train.config import TrainConfig  # the training parameters, listed there once
from hub.train.distributed import (DistContext, barrier, broadcast_parameters, has_unused_parameters, mean_over_ranks,
                                   wrap_ddp)
from hub.train.evaluation import ExampleSet, evaluate_module, example_lengths, is_lower_better, resolve_metric
from hub.train.metrics import scalar_metrics
from hub.train.optim import apply_freezing, clip_gradients, make_optimizer, make_scheduler
from hub.train.report import METRICS_FILE, PLOT_FILE, Reporter, plot_curves


@dataclass
class TrainResult:
    step: int
    epoch: int
    metrics: dict = field(default_factory=dict)  # validation metrics of the saved weights
    best_metric: float | None = None
    best_step: int | None = None
    stopped_early: bool = False
    last_checkpoint: Path | None = None
    best_checkpoint: Path | None = None
    throughput: float = 0.0  # training examples per second (all ranks)


def seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class Trainer:
    """Fine-tunes ``adapter.module`` on ``train`` records, evaluating on ``val`` records."""

    def __init__(self, adapter, train, val, config: TrainConfig, out_dir, device_manager=None,
                 ctx: DistContext | None = None, resume: bool = False, run_args: dict | None = None):
        from hub.device import DeviceManager

        config.check()
        if config.lr is None:
            raise HubError("TrainConfig.lr is None: a Trainer needs the learning rate (hub.train.finetune fills in "
                           "the kind's default)")
        if not train:
            raise HubError("no training rows left; check the data (and the bad-row report)")
        self.adapter, self.train_records, self.val_records = adapter, list(train), list(val or [])
        self.cfg, self.out = config, Path(out_dir)
        self.ckpt_dir = self.out / "checkpoints"
        self.dm = device_manager or DeviceManager(config.device, config.precision)
        self.ctx = ctx or DistContext()
        self.resume = resume
        self.run_args = {**asdict(config), **(run_args or {})}
        self.run_args.pop("progress", None)
        self.metric = resolve_metric(adapter.kind, config.metric)
        if config.patience and not self.val_records:
            raise HubError("patience (early stopping) needs validation data; pass --val or drop --patience")
        self.step = self.epoch = self.batch_in_epoch = self.bad_evals = 0
        self.best: float | None = None
        self.best_step: int | None = None
        self.best_metrics: dict | None = None
        self.last_eval_step = -1
        self.stopped = False  # early stopping triggered (kept in checkpoints)

    # -- set-up ------------------------------------------------------------------------------
    def _setup(self) -> None:
        import torch

        cfg = self.cfg
        seed_everything(cfg.seed)
        apply_freezing(self.adapter, cfg.freeze_backbone, cfg.unfreeze_last)
        self.module = self.adapter.module.train()
        if not (cfg.shard and self.ctx.enabled):  # fully_shard moves each unit to the device as it shards it
            self.module = self.module.to(self.dm.device)
        self.lengths = example_lengths(self.adapter, self.train_records) if cfg.group_by_length else None
        self.val_lengths = example_lengths(self.adapter, self.val_records) if self.val_records else None
        self._wrap()
        n_batches = len(self._batches(0))
        self.steps_per_epoch = math.ceil(n_batches / cfg.grad_accum)
        self.total_steps = cfg.epochs * self.steps_per_epoch
        if cfg.max_steps:
            self.total_steps = min(self.total_steps, cfg.max_steps)
        self.optimizer = make_optimizer(self.module, self.adapter.head_prefixes, cfg.lr, cfg.head_lr_mult,
                                        cfg.weight_decay)
        self.scheduler = make_scheduler(self.optimizer, self.total_steps, cfg.schedule, cfg.warmup)
        kind = self.dm.device.split(":")[0]
        self.scaler = torch.amp.GradScaler(kind, enabled=self.dm.dtype == "fp16")

    def _wrap(self) -> None:
        """DDP (or FSDP2 with ``shard``) around the module when distributed; nothing otherwise."""
        self.ddp = self.sharded = None
        if not self.ctx.enabled:
            if self.cfg.shard:
                warnings.warn("--shard needs several processes (--nproc N, or torchrun); training unsharded",
                              stacklevel=4)
            return
        if self.cfg.shard:
            from hub.train.sharded import Sharded

            self.sharded = Sharded(self.module, self.adapter, self.ctx)
        else:
            unused = has_unused_parameters(self.module, self._probe_loss, self.ctx)
            self.ddp = wrap_ddp(self.module, self.adapter, self.ctx, self.dm.device, find_unused=unused)

    def _probe_loss(self):
        """The loss of this rank's first batch (DDP asks whether every trainable parameter gets a gradient)."""
        examples = ExampleSet(self.adapter, self.train_records, True)
        batch = self.dm.to_device(self.adapter.collate([examples[i] for i in self._batches(0)[0]]))
        with self.dm.autocast():
            return self.adapter.loss(self.module, batch).float()

    def _loss(self, batch, sync: bool):
        """The adapter's loss of ``batch``; gradients are averaged over ranks when ``sync``."""
        import contextlib

        if self.sharded is not None:
            return self.sharded.loss(batch, sync)
        if self.ddp is not None:
            with contextlib.nullcontext() if sync else self.ddp.no_sync():
                return self.ddp(batch)
        return self.adapter.loss(self.module, batch)

    def _measure(self) -> dict:
        """Validation metrics, the same on every rank; each rank measures its share of the rows.

        Under FSDP every forward gathers weights from all ranks, so the ranks must run the same
        batches in step: each runs all of them (through the sharded root) and sums nothing.
        """
        if self.sharded is not None:
            return evaluate_module(self.sharded.eval_adapter(self.adapter), self.sharded.root, self.val_records,
                                   self.dm, self.cfg.batch_size, DistContext(), self.val_lengths)
        return evaluate_module(self.adapter, self.module, self.val_records, self.dm, self.cfg.batch_size, self.ctx,
                               self.val_lengths)

    def _batches(self, epoch: int) -> list[list[int]]:
        return epoch_batches(len(self.train_records), self.cfg.batch_size, self.cfg.seed, epoch, self.lengths,
                             self.ctx.rank, self.ctx.world_size)

    def _restore(self) -> None:
        found, state, problems = ckpt.latest_loadable(self.ckpt_dir, move_aside=self.ctx.is_main)
        for problem in problems:
            if self.ctx.is_main:
                warnings.warn(f"skipped an unreadable checkpoint: {problem}", stacklevel=3)
        if found is None:
            self._say(f"no checkpoint in {self.ckpt_dir}; starting from the beginning")
            return
        diffs = ckpt.argument_differences(state.get("args", {}), self.run_args)
        if diffs:
            message = (f"resuming from {found} with different arguments: {'; '.join(diffs)} (the checkpoint's "
                       "optimiser state and learning rates are kept)")
            if self.ctx.is_main:
                warnings.warn(message, stacklevel=3)
        if (self.sharded is not None) != (found / "sharded").is_dir():
            saved, now = ("with", "without") if self.sharded is None else ("without", "with")
            raise HubError(f"checkpoint '{found}' was saved {saved} --shard (on several processes) and this run is "
                           f"{now} it; resume it the way it was started, or start over with --overwrite")
        if self.sharded is not None:
            self.sharded.load(found, self.optimizer)
        else:
            ckpt.load_weights(self.module, found, self.dm.device)
            self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        ckpt.set_rng_state(state["rng"])
        self.step, self.epoch, self.batch_in_epoch = state["step"], state["epoch"], state["batch_in_epoch"]
        self.best, self.best_step = state.get("best"), state.get("best_step")
        self.bad_evals = state.get("bad_evals", 0)
        self.last_eval_step = state.get("last_eval_step", -1)
        self.stopped = bool(state.get("stopped", False))
        self._say(f"resumed from {found.name}: epoch {self.epoch}, step {self.step}")

    def _state(self) -> dict:
        return {"step": self.step, "epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch,
                "optimizer": {} if self.sharded else self.optimizer.state_dict(),  # sharded: in its DCP folder
                "scheduler": self.scheduler.state_dict(),
                "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else {},
                "rng": ckpt.rng_state(), "best": self.best, "best_step": self.best_step,
                "bad_evals": self.bad_evals, "last_eval_step": self.last_eval_step, "stopped": self.stopped,
                "metric": self.metric,
                "args": self.run_args}

    # -- the loop ----------------------------------------------------------------------------
    def fit(self) -> TrainResult:
        self._setup()
        if self.resume:
            self._restore()
        self.reporter = Reporter(self.out, self.total_steps, self.step, self.ctx.is_main, self.cfg.log_every,
                                 self.cfg.progress)
        if self.resume:
            self.reporter.truncate_after(self.step)
        try:
            while self.epoch < self.cfg.epochs and self.step < self.total_steps and not self.stopped:
                self._run_epoch()
        finally:
            self.reporter.close()
        return self._finish(self.stopped)

    def _run_epoch(self) -> bool:
        """Train the rest of the current epoch; True when early stopping triggered."""
        batches = self._batches(self.epoch)
        accum = self.cfg.grad_accum
        stream = self._stream(batches[self.batch_in_epoch:])
        for start in range(self.batch_in_epoch, len(batches), accum):
            group = batches[start:start + accum]
            began = time.perf_counter()
            self._optimizer_step([next(stream) for _ in group], sum(len(b) for b in group), began)
            self.batch_in_epoch = min(start + accum, len(batches))
            if self.batch_in_epoch >= len(batches):
                break  # the epoch end below evaluates and saves
            last = self.step >= self.total_steps  # max_steps reached mid-epoch
            stop = self._after_step(epoch_end=last)
            if stop or last:
                return stop
        self.epoch += 1
        self.batch_in_epoch = 0
        return self._after_step(epoch_end=True)

    def _stream(self, batches: list[list[int]]):
        """Collated CPU batches in order; loaded here, or by DataLoader workers when asked."""
        examples = ExampleSet(self.adapter, self.train_records, True)
        if self.cfg.num_workers <= 0:
            return (self.adapter.collate([examples[i] for i in b]) for b in batches)
        from torch.utils.data import DataLoader

        seed = self.cfg.seed * 1000 + self.epoch
        return iter(DataLoader(examples, batch_sampler=batches, collate_fn=self.adapter.collate,
                               num_workers=self.cfg.num_workers, worker_init_fn=_WorkerSeed(seed)))

    def _optimizer_step(self, cpu_batches: list, n_examples: int, began: float) -> None:
        import torch

        losses = []
        for i, cpu_batch in enumerate(cpu_batches):
            batch = self.dm.to_device(cpu_batch)
            with self.dm.autocast():
                loss = self._loss(batch, sync=i == len(cpu_batches) - 1)
            if not torch.isfinite(loss):
                raise HubError(f"the loss became {loss.item()} at step {self.step}; lower the learning rate "
                               "(--lr) or use --precision fp32")
            self.scaler.scale(loss.float() / len(cpu_batches)).backward()
            losses.append(float(loss.detach()))
        self.scaler.unscale_(self.optimizer)
        if self.sharded is not None:
            self.sharded.clip(self.cfg.max_grad_norm)
        else:
            clip_gradients(self.module, self.cfg.max_grad_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        lr = self.optimizer.param_groups[0]["lr"]
        self.reporter.step(self.step, self._epoch_float(), mean_over_ranks(sum(losses) / len(losses), self.ctx), lr,
                           n_examples * self.ctx.world_size, time.perf_counter() - began)

    def _epoch_float(self) -> float:
        return self.epoch + self.batch_in_epoch / max(1, self.steps_per_epoch * self.cfg.grad_accum)

    def _after_step(self, epoch_end: bool) -> bool:
        """Evaluate and checkpoint when due; True when early stopping triggered."""
        cfg = self.cfg
        due_eval = bool(self.val_records) and (epoch_end or (cfg.eval_every and self.step % cfg.eval_every == 0))
        improved, stop = False, False
        if due_eval and self.last_eval_step != self.step:
            improved, stop = self._evaluate()
        due_save = epoch_end or due_eval or (cfg.save_every and self.step % cfg.save_every == 0)
        if due_save:
            self._save(best=improved)
        return stop

    def _evaluate(self) -> tuple[bool, bool]:
        metrics = self._measure()
        self.last_eval_step = self.step
        if self.metric not in metrics:
            raise HubError(f"metric '{self.metric}' was not computed (this task gives: "
                           f"{', '.join(scalar_metrics(metrics))}); choose one of those with --metric")
        self.reporter.evaluation(self.step, self._epoch_float(), metrics)
        value = float(metrics[self.metric])
        lower = is_lower_better(self.adapter.kind, self.metric)
        improved = self.best is None or (value < self.best if lower else value > self.best)
        if improved:
            self.best, self.best_step, self.best_metrics, self.bad_evals = value, self.step, metrics, 0
        else:
            self.bad_evals += 1
        stop = self.stopped = bool(self.cfg.patience) and self.bad_evals >= self.cfg.patience
        if stop:
            self.reporter.message(f"early stopping: no better {self.metric} for {self.bad_evals} evaluations "
                                  f"(best {self.best:.4f} at step {self.best_step})")
        return improved, stop

    def _save(self, best: bool) -> None:
        if self.sharded is not None:  # every rank writes its shards
            self.sharded.save(self.ckpt_dir, self.optimizer, self._state(), best, self.cfg.keep_checkpoints)
            return
        if self.ctx.is_main:
            ckpt.save_checkpoint(self.ckpt_dir, self.module, self._state(), best=best,
                                 keep=self.cfg.keep_checkpoints)
        barrier(self.ctx)

    # -- the end -----------------------------------------------------------------------------
    def _finish(self, stopped: bool) -> TrainResult:
        """Put the best weights back (when there was validation) and plot; rank 0 writes."""
        best_path = ckpt.pointer(self.ckpt_dir, "best") if self.val_records else None
        metrics: dict = {}
        if self.val_records:
            if best_path is not None and self.best_step != self.step:
                best_path = self._load_best(best_path)
            metrics = self.best_metrics
            if metrics is None:  # the best was found before a resume: measure it again
                metrics = self._measure()
        if self.ctx.is_main:
            plot_curves(self.out / METRICS_FILE, self.out / PLOT_FILE)
        barrier(self.ctx)
        if self.sharded is not None:
            self.module = self.sharded.full_module()  # rank 0: the whole trained module; others: None
        if self.module is not None:
            self.module.eval()
        return TrainResult(step=self.step, epoch=self.epoch, metrics=metrics, best_metric=self.best,
                           best_step=self.best_step, stopped_early=stopped,
                           last_checkpoint=ckpt.pointer(self.ckpt_dir, "last"), best_checkpoint=best_path,
                           throughput=self.reporter.throughput())

    def _load_best(self, path: Path) -> Path | None:
        """Load the best checkpoint's weights; when they cannot be read, warn and keep the last ones."""
        from hub.train.distributed import broadcast

        problem = None
        if self.sharded is not None:
            try:
                ckpt.check_weights(path)
            except HubError as exc:
                problem = str(exc)
            problem = broadcast(problem, self.ctx)  # every rank must take the same way (collectives)
            if problem is None:
                self.sharded.load(path)
                return path
            if self.ctx.is_main:
                warnings.warn(f"the best checkpoint cannot be read ({problem}); the model is saved with the "
                              "last weights instead", stacklevel=3)
            self.best_metrics = None
            return None
        if self.ctx.is_main:
            try:
                ckpt.check_weights(path)
                ckpt.load_weights(self.module, path, self.dm.device)
            except HubError as exc:
                problem = str(exc)
                warnings.warn(f"the best checkpoint cannot be read ({problem}); the model is saved with the "
                              "last weights instead", stacklevel=3)
        problem = broadcast(problem, self.ctx)
        broadcast_parameters(self.module, self.ctx)
        if problem is None:
            return path
        self.best_metrics = None  # measured again on the weights that are kept
        return None

    def _say(self, text: str) -> None:
        if self.ctx.is_main:
            import sys

            print(text, file=sys.stderr)


class _WorkerSeed:
    """Seeds python/numpy/torch in each DataLoader worker from (seed, epoch, worker id)."""

    def __init__(self, base: int):
        self.base = base

    def __call__(self, worker_id: int) -> None:
        seed_everything(self.base * 100 + worker_id)
