"""What a model costs to run here: measured by ``hub bench`` when it ran on this machine, else estimated.

Estimates are marked as such. Compute per input comes from the catalogue's published ``flops`` when
there is one, else from the parameter count (2 FLOPs per parameter per token, with a typical number
of tokens, patches or frames per input for the modality). The time per input divides that by this
machine's speed: what the models ``hub bench`` measured here did per second on this kind of device
(their median), or an assumed speed for the device kind when nothing was measured. Memory is the
weights (kept in fp32: 4 bytes per parameter) plus half again for activations and workspace.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

from hub import benchstore
from hub.published import gflops_per_input

TOKENS_PER_INPUT = {"nlp": 64, "vision": 196, "speech": 250, "crossmodal": 196}
ASSUMED_GFLOPS_PER_S = {"cpu": 50.0, "cuda": 10_000.0, "mps": 2_000.0}  # batch-1 speed when nothing was measured
BYTES_PER_PARAM = 4
WORKSPACE = 1.5


@dataclass
class Cost:
    """Latency at batch 1, throughput and memory of one model here, and where the figures come from."""

    latency_ms: float | None
    memory_bytes: float | None
    throughput: float | None
    measured: bool
    basis: str  # one phrase: how the figures were had

    @property
    def mark(self) -> str:
        return "measured" if self.measured else "estimate"

    def to_dict(self) -> dict:
        return {"latency_ms": self.latency_ms, "memory_bytes": self.memory_bytes, "throughput": self.throughput,
                "measured": self.measured, "basis": self.basis}


def measured_cost(model_key: str, device: str) -> Cost | None:
    """The fastest record ``hub bench`` stored for the model on this kind of device; None when none."""
    found = [r for r in benchstore.lookup(model_key, device=device)
             if benchstore.number(r.figures.get("latency_ms_p50")) is not None]
    if not found:
        return None
    best = min(found, key=lambda r: r.figures["latency_ms_p50"])
    when = time.strftime("%Y-%m-%d", time.gmtime(best.measured_at)) if best.measured_at else "an earlier run"
    return Cost(float(best.figures["latency_ms_p50"]), benchstore.number(best.figures.get("peak_memory_bytes")),
                best.throughput, True,
                f"measured here by hub bench ({best.device}, {best.dtype}, {best.backend}, {when})")


def gflops(spec) -> tuple[float | None, str]:
    """Compute per input in GFLOPs and where it comes from; (None, why) when neither FLOPs nor params are known."""
    published = gflops_per_input(spec.flops)
    if published is not None:
        return published, f"{figure_text(published)} GFLOPs per input (published)"
    if spec.params:
        tokens = TOKENS_PER_INPUT.get(spec.modality, 64)
        value = 2 * spec.params * tokens / 1e9
        basis = f"{figure_text(value)} GFLOPs per input from {spec.params / 1e6:.1f}M parameters x {tokens} tokens"
        return value, basis
    return None, "no FLOPs or parameter count in the catalogue"


def machine_speed(specs, device: str) -> tuple[float, str]:
    """GFLOP/s at batch 1 on this kind of device: the median over measured models, else an assumed figure."""
    rates = []
    for spec in specs:
        measured = measured_cost(benchstore.model_key(spec), device)
        work, _ = gflops(spec)
        if measured and work and measured.latency_ms:
            rates.append(work / (measured.latency_ms / 1000))
    if rates:
        speed = statistics.median(rates)
        return speed, f"at {speed:,.0f} GFLOP/s, this machine's speed on {len(rates)} measured model(s)"
    speed = ASSUMED_GFLOPS_PER_S.get(device, ASSUMED_GFLOPS_PER_S["cpu"])
    return speed, f"at an assumed {speed:,.0f} GFLOP/s for {device}"


def estimated_cost(spec, speed: tuple[float, str]) -> Cost:
    """Latency and memory from the compute and the parameter count, marked as an estimate."""
    work, work_basis = gflops(spec)
    latency = 1000 * work / speed[0] if work else None
    memory = spec.params * BYTES_PER_PARAM * WORKSPACE if spec.params else None
    basis = f"{work_basis}, {speed[1]}" if work else work_basis
    return Cost(latency, memory, None, False, basis)


def size_text(nbytes: float) -> str:
    """Bytes in decimal units, as --max-memory takes them: '850 kB', '190 MB', '2.41 GB'."""
    if nbytes < 1e6:
        return f"{nbytes / 1e3:.0f} kB"
    return f"{nbytes / 1e6:.0f} MB" if nbytes < 1e9 else f"{nbytes / 1e9:.2f} GB"


def figure_text(value: float) -> str:
    """A figure to three significant digits, without an exponent: '0.512', '38.8', '3,240'."""
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"


def cost_of(spec, device: str, speed: tuple[float, str]) -> Cost:
    """What ``hub bench`` measured for ``spec`` here, else the estimate."""
    return measured_cost(benchstore.model_key(spec), device) or estimated_cost(spec, speed)
