"""What a run tells the user: a progress bar, ``metrics.jsonl`` and ``training_curves.png``.

``metrics.jsonl`` gets one JSON object per line: ``{"split": "train", "step", "epoch", "loss",
"lr", "samples_per_s"}`` every ``log_every`` optimiser steps (throughput counts the time of
training steps: loading, forward, backward and optimiser, not evaluations or checkpoints) and ``{"split": "val", "step",
"epoch", <metric>: value, ...}`` per evaluation. The plot is drawn from that file at the end,
so a resumed run plots its whole history. Only rank 0 reports.

Each record is appended and fsynced on its own (:func:`hub.io.append_line`), so a crash loses at
most the line being written. A resumed run reads the file back: when a line is damaged (half
written, edited, not JSON) the file is moved aside as ``metrics.jsonl.corrupt-<time>`` with a
warning and its readable lines are kept; a damaged log never stops a run.
"""
from __future__ import annotations

import json
import math
import time
import warnings
from pathlib import Path

from hub.io import append_line, atomic_path, atomic_write_text

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
        """Drop lines logged after ``step`` (a resumed run repeats them); a damaged log is set aside."""
        if not self.enabled or not self.path.is_file():
            return
        rows, bad = parse_history(self.path)
        if bad:
            aside = self.path.with_name(f"{self.path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
            self.path.rename(aside)
            warnings.warn(f"{self.path} had {len(bad)} unreadable line(s) (first: line {bad[0]}); moved it to "
                          f"{aside.name} and kept its {len(rows)} readable records", stacklevel=2)
        kept = [row for row in rows if _number(row.get("step")) <= step]
        atomic_write_text(self.path, "".join(json.dumps(row) + "\n" for row in kept))

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
        append_line(self.path, json.dumps(row))

    def throughput(self) -> float:
        """Training examples per second of training-step time."""
        return self._samples / self._seconds if self._seconds > 0 else 0.0

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def read_history(path) -> list[dict]:
    """The readable records of a metrics.jsonl file (damaged lines are left out)."""
    return parse_history(path)[0]


def parse_history(path) -> tuple[list[dict], list[int]]:
    """(records, numbers of the lines that are not JSON objects) of a metrics.jsonl file."""
    path = Path(path)
    if not path.is_file():
        return [], []
    rows, bad = [], []
    text = path.read_bytes().decode("utf-8", errors="replace")
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            row = None
        if isinstance(row, dict) and isinstance(row.get("step", 0), (int, float)):
            rows.append(row)
        else:
            bad.append(number)
    return rows, bad


def _number(value) -> float:
    return value if isinstance(value, (int, float)) else 0


def plot_curves(metrics_path, out_png) -> Path | None:
    """Loss (train and val) and each validation metric against the step, as a PNG (Agg)."""
    rows = read_history(metrics_path)
    if not rows:
        return None
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = [r for r in rows if _finite(r.get("step"))]
    train = [r for r in rows if r.get("split") == "train" and _finite(r.get("loss"))]
    val = [r for r in rows if r.get("split") == "val"]
    skip = {"split", "step", "epoch", "loss", "count", "lr", "samples_per_s"}
    names = sorted({k for r in val for k, v in r.items() if k not in skip and _finite(v)})
    fig = Figure(figsize=(10, 4))
    FigureCanvasAgg(fig)
    ax_loss = fig.add_subplot(1, 2, 1)
    ax_loss.plot([r["step"] for r in train], [r["loss"] for r in train], label="train loss")
    if any(_finite(r.get("loss")) for r in val):
        points = [(r["step"], r["loss"]) for r in val if _finite(r.get("loss"))]
        ax_loss.plot([p[0] for p in points], [p[1] for p in points], marker="o", label="val loss")
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
    with atomic_path(out_png) as tmp:
        fig.savefig(str(tmp), dpi=100, format="png")
    return Path(out_png)


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
