"""The ranking behind ``hub recommend``: models for a task, a data size and a compute budget, each rank explained.

Accuracy is the catalogue's published figure with its source (:mod:`hub.published`). Cost is what
``hub bench`` measured on this machine, else an estimate marked as one (:mod:`hub.recommend.cost`).
Models over ``max_latency_ms`` or ``max_memory_gb`` are excluded, with the figure that excludes them.
The rest are ranked by the task's most common published metric, best first; models without it follow,
fastest first. Only the catalogue and the store are read: nothing here imports torch.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from hub.published import accuracy_text, metric_name
from hub.recommend.advice import data_advice
from hub.recommend.cost import Cost, cost_of, figure_text, machine_speed, size_text


@dataclass
class Choice:
    """One catalogue model judged for the job: its accuracy, cost, and whether and why it fits."""

    id: str
    accuracy: dict | None
    cost: Cost
    excluded: list[str] = field(default_factory=list)
    rank: int | None = None
    why: str = ""  # how it compares with the first
    unchecked: list[str] = field(default_factory=list)  # limits its cost could not be checked against

    def to_dict(self) -> dict:
        return {"rank": self.rank, "id": self.id, "accuracy": self.accuracy, "cost": self.cost.to_dict(),
                "excluded": self.excluded, "why": self.why, "unchecked": self.unchecked, "line": self.line()}

    def line(self) -> str:
        """The one-line explanation: accuracy with its source, cost marked measured or estimate, fit."""
        head = f"{self.rank}. {self.id}" if self.rank else f"-  {self.id}"
        verdict = f"excluded: {'; '.join(self.excluded)}" if self.excluded else self.why
        if self.unchecked:
            verdict += f" ({' and '.join(self.unchecked)} not checked: cost unknown)"
        return f"{head}: {accuracy_text(self.accuracy)}; {cost_text(self.cost)}; {verdict}"


@dataclass
class Recommendation:
    """The answer of ``hub recommend``: the fitting models ranked, the excluded ones, and the data advice."""

    task: str
    device: str
    advice: str | None
    ranked: list[Choice]
    excluded: list[Choice]
    constraints: dict

    def to_dict(self) -> dict:
        return {"task": self.task, "device": self.device, "advice": self.advice, "constraints": self.constraints,
                "ranked": [c.to_dict() for c in self.ranked], "excluded": [c.to_dict() for c in self.excluded]}

    def lines(self) -> list[str]:
        """The text ``hub recommend`` prints: a heading, one line per rank, the excluded, the advice, a note."""
        latency, memory = self.constraints.get("max_latency_ms"), self.constraints.get("max_memory_gb")
        limits = [f"{figure_text(latency)} ms per input" if latency is not None else None,
                  f"{memory:g} GB" if memory is not None else None]
        within = " and ".join(x for x in limits if x)
        out = [f"Models for {self.task} on {self.device}" + (f" within {within}" if within else "") + ":"]
        out += [c.line() for c in self.ranked] or ["(no model fits: loosen the limits, or see the excluded ones)"]
        if self.excluded:
            out += ["", "Excluded:"] + [c.line() for c in self.excluded]
        if self.advice:
            out += ["", f"Data: {self.advice}"]
        if any(not c.cost.measured for c in self.ranked + self.excluded):
            out += ["", "Costs marked 'estimate' come from FLOPs or parameters; 'hub bench MODEL' measures them here."]
        return out


def cost_text(cost: Cost) -> str:
    """'40 ms per input, 90 inputs/s batched, 300 MB (measured: ...)', or why the cost is unknown."""
    if cost.latency_ms is None and cost.memory_bytes is None:
        return f"cost unknown ({cost.basis})"
    parts = []
    if cost.latency_ms is not None:
        parts.append(f"{figure_text(cost.latency_ms)} ms per input")
    if cost.throughput is not None:
        parts.append(f"{figure_text(cost.throughput)} inputs/s batched")
    if cost.memory_bytes is not None:
        parts.append(size_text(cost.memory_bytes))
    return f"{', '.join(parts)} ({cost.mark}: {cost.basis})"


def default_device() -> str:
    """The device kind the hub would pick, judged without torch: cuda or mps when the machine has one."""
    from hub import benchstore

    gpu = benchstore.gpu_name()
    if gpu is None:
        return "cpu"
    return "mps" if gpu == "Apple MPS" else "cuda"


def recommend(task: str, examples: int | None = None, max_latency_ms: float | None = None,
              max_memory_gb: float | None = None, device: str | None = None) -> Recommendation:
    """Rank the installed catalogue's models for ``task`` on this machine (see the module docstring)."""
    from hub.api import list_models
    from hub.benchstore import device_kind
    from hub.device import check_device
    from hub.tasks import resolve_task

    task = resolve_task(task)  # an unknown task names the closest ones
    kind = device_kind(check_device(device) or default_device())
    specs = list_models(task=task)
    speed = machine_speed(specs, kind)
    choices = [Choice(s.id, s.accuracy, cost_of(s, kind, speed)) for s in specs]
    for choice in choices:
        choice.excluded = _exclusions(choice.cost, max_latency_ms, max_memory_gb)
        choice.unchecked = [name for name, limit, figure in (("latency", max_latency_ms, choice.cost.latency_ms),
                                                              ("memory", max_memory_gb, choice.cost.memory_bytes))
                            if limit is not None and figure is None]
    fitting = _ranked([c for c in choices if not c.excluded])
    limits = {"max_latency_ms": max_latency_ms, "max_memory_gb": max_memory_gb}
    return Recommendation(task, kind, data_advice(task, examples), fitting,
                          [c for c in choices if c.excluded], limits)


def _exclusions(cost: Cost, max_latency_ms: float | None, max_memory_gb: float | None) -> list[str]:
    out = []
    if max_latency_ms is not None and cost.latency_ms is not None and cost.latency_ms > max_latency_ms:
        out.append(f"latency {figure_text(cost.latency_ms)} ms ({cost.mark}) > {figure_text(max_latency_ms)} ms")
    if max_memory_gb is not None and cost.memory_bytes is not None and cost.memory_bytes > max_memory_gb * 1e9:
        out.append(f"memory {size_text(cost.memory_bytes)} ({cost.mark}) > {max_memory_gb:g} GB")
    return out


def _ranked(choices: list[Choice]) -> list[Choice]:
    """Best published figure of the task's main metric first; then the rest, fastest first."""
    metric = _main_metric(choices)
    slow = float("inf")

    def key(c: Choice):
        scored = c.accuracy is not None and c.accuracy["metric"] == metric
        return (not scored, -(c.accuracy["value"] if scored else 0), c.cost.latency_ms or slow, c.id)

    ordered = sorted(choices, key=key)
    for rank, choice in enumerate(ordered, 1):
        choice.rank = rank
        choice.why = _why(choice, ordered[0], metric)
    return ordered


def _main_metric(choices: list[Choice]) -> str | None:
    counts = Counter(c.accuracy["metric"] for c in choices if c.accuracy)
    return counts.most_common(1)[0][0] if counts else None


def _why(choice: Choice, first: Choice, metric: str | None) -> str:
    """Why it ranks where it does, against the first model."""
    scored = choice.accuracy is not None and choice.accuracy["metric"] == metric
    if choice is first:
        if scored:
            return f"fits; the highest {metric_name(metric)} that fits"
        return "fits; the fastest that fits (no fitting model has a published figure to rank by)"
    if not scored:
        return f"fits; ranked after the models with a published {metric_name(metric)}, by speed" if metric \
            else "fits; ranked by speed"
    gap = first.accuracy["value"] - choice.accuracy["value"]
    speedup = _speedup(choice.cost, first.cost)
    return f"fits; {gap:.1f} points below #1" + (f", {speedup}" if speedup else "")


def _speedup(cost: Cost, first: Cost) -> str:
    if not cost.latency_ms or not first.latency_ms:
        return ""
    ratio = first.latency_ms / cost.latency_ms
    if ratio >= 1.05:
        return f"{ratio:.2g}x faster"
    if ratio <= 0.95:
        return f"{1 / ratio:.2g}x slower"
    return "about as fast"
