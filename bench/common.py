"""Shared pieces of the benchmarks: timing, a result row, and the machine description.

Each ``bench/bench_*.py`` module defines ``run(quick: bool) -> list[Row]``; ``python -m bench.run``
runs them all in one process and writes BENCHMARKS.md. Every figure is measured side by side with
its anchor in the same run and reported as a ratio; tests never assert timings.
"""
from __future__ import annotations

import os
import platform
import statistics
import subprocess
import time
from dataclasses import dataclass, field


@dataclass
class Row:
    """One benchmark line: our figure beside its anchor, and the target ratio."""

    group: str
    name: str
    ours: float
    anchor_name: str
    anchor: float
    unit: str  # "s" (lower is better) or e.g. "texts/s" (higher is better)
    target: str = ""  # e.g. ">= 1.0x" or "<= 0.12 s"
    notes: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def lower_is_better(self) -> bool:
        return self.unit == "s"

    @property
    def meets_target(self) -> str:
        """"yes"/"no" for targets written as ">= 1.5x", "<= 0.12 s" or ">= 99%"; "" otherwise."""
        import re

        found = re.fullmatch(r"\s*(>=|<=)\s*([0-9.]+)\s*(x|s|%)\s*", self.target or "")
        if not found:
            return ""
        op, number, unit = found.group(1), float(found.group(2)), found.group(3)
        value = self.ratio if unit == "x" else self.ours
        ok = value >= number if op == ">=" else value <= number
        return "yes" if ok else "no"

    @property
    def ratio(self) -> float:
        """How many times better we are than the anchor (>1 is better)."""
        if not self.ours or not self.anchor:
            return float("nan")
        return self.anchor / self.ours if self.lower_is_better else self.ours / self.anchor


def timed(fn, repeat: int = 5, warmup: int = 1) -> float:
    """Median wall time of ``fn()`` over ``repeat`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def command_time(cmd: list[str], repeat: int = 7, env: dict | None = None) -> float:
    """Median wall time of running ``cmd`` as a fresh process."""
    full_env = {**os.environ, **(env or {})}

    def once():
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, env=full_env)

    return timed(once, repeat=repeat, warmup=1)


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    import torch

    return (f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, torch {torch.__version__}, "
            f"{torch.get_num_threads()} torch threads")
