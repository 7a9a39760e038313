"""What a run tells the user: a progress bar, ``metrics.jsonl`` and ``training_curves.png``.

``metrics.jsonl`` gets one JSON object per line: ``{"split": "train", "step", "epoch", "loss",
"lr", "samples_per_s"}`` every ``log_every`` optimiser steps (throughput counts the time of
training steps: loading, forward, backward and optimiser, not evaluations or checkpoints) and ``{"split": "val", "step",
"epoch", <metric>: value, ...}`` per evaluation. The plot is drawn from that file at the end,
so a resumed run plots its whole history. Only rank 0 reports.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

METRICS_FILE = "metrics.jsonl"
PLOT_FILE = "training_curves.png"


class Reporter:
    """Progress bar plus metrics.jsonl; a silent no-op when ``enabled`` is False (other ranks)."""

    def __init__(self, out_dir, total_steps: int, start_step: int = 0, enabled: bool = True,
                 log_every: int = 10, progress: bool = True):
        self.path = Path(out_dir) / METRICS_FILE
        self.enabled = enabled
        self.log_every = max(1, log_every)
        self.bar = None
        self._window: list[float] = []
        self._samples = 0
        self._seconds = 0.0
        if enabled and progress:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total_steps, initial=start_step, desc="finetune", unit="step",
                            dynamic_ncols=True, leave=True)

    def truncate_after(self, step: int) -> None:
        """Drop lines logged after ``step`` (a resumed run repeats them)."""
        if not self.enabled or not self.path.is_file():
            return
        kept = [line for line in self.path.read_text(encoding="utf-8").splitlines()
                if line.strip() and json.loads(line).get("step", 0) <= step]
        from hub.local import atomic_write_text

        atomic_write_text(self.path, "".join(line + "\n" for line in kept))

    def step(self, step: int, epoch: float, loss: float, lr: float, samples: int, seconds: float) -> None:
        """Record one optimiser step: ``samples`` examples (all ranks) in ``seconds``."""
        if not self.enabled:
            return
        self._window.append(loss)
        self._samples += samples
        self._seconds += seconds
        rate = self.throughput()
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.2e}", ex_s=f"{rate:.1f}", refresh=False)
        if step % self.log_every == 0:
            mean = sum(self._window) / len(self._window)
            self.log({"split": "train", "step": step, "epoch": round(epoch, 4), "loss": mean, "lr": lr,
                      "samples_per_s": rate})
            self._window.clear()

    def evaluation(self, step: int, epoch: float, metrics: dict) -> None:
        if not self.enabled:
            return
        from hub.train.metrics import scalar_metrics

        row = {"split": "val", "step": step, "epoch": round(epoch, 4), **scalar_metrics(metrics)}
        self.log(row)
        if self.bar is not None:
            shown = ", ".join(f"{k}={v:.4f}" for k, v in scalar_metrics(metrics).items() if k != "count")
            self.bar.write(f"step {step}: {shown}")

    def message(self, text: str) -> None:
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.write(text)
        else:
            import sys

            print(text, file=sys.stderr)

    def log(self, row: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(row) + "\n")

    def throughput(self) -> float:
        """Training examples per second of training-step time."""
        return self._samples / self._seconds if self._seconds > 0 else 0.0

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def read_history(path) -> list[dict]:
    path = Path(path)
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def plot_curves(metrics_path, out_png) -> Path | None:
    """Loss (train and val) and each validation metric against the step, as a PNG (Agg)."""
    rows = read_history(metrics_path)
    if not rows:
        return None
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    train = [r for r in rows if r.get("split") == "train"]
    val = [r for r in rows if r.get("split") == "val"]
    skip = {"split", "step", "epoch", "loss", "count", "lr", "samples_per_s"}
    names = sorted({k for r in val for k, v in r.items() if k not in skip and _finite(v)})
    fig = Figure(figsize=(10, 4))
    FigureCanvasAgg(fig)
    ax_loss = fig.add_subplot(1, 2, 1)
    ax_loss.plot([r["step"] for r in train], [r["loss"] for r in train], label="train loss")
    if any("loss" in r for r in val):
        ax_loss.plot([r["step"] for r in val if "loss" in r], [r["loss"] for r in val if "loss" in r],
                     marker="o", label="val loss")
    ax_loss.set_xlabel("step")
    ax_loss.set_ylabel("loss")
    ax_loss.legend()
    ax_metric = fig.add_subplot(1, 2, 2)
    for name in names:
        points = [(r["step"], r[name]) for r in val if _finite(r.get(name))]
        ax_metric.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=name)
    ax_metric.set_xlabel("step")
    ax_metric.set_title("validation")
    if names:
        ax_metric.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(str(out_png), dpi=100)
    return Path(out_png)


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
