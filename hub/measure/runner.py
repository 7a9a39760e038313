"""``hub bench``: load time, latency at batch 1, throughput at the best batch size and peak memory, measured here.

Each figure is taken on the task's own sample inputs (:mod:`hub.measure.samples`) through the
pipeline a user runs (``hub.load``, uncached), so preprocessing and postprocessing are in it:

- load time: the first load in this process: importing the backbone library (torch itself is
  imported before), building the model and reading the weights;
- latency: one input per call, after a warm-up call, repeated; the median and the 90th percentile;
- throughput: inputs per second over a few batches at each batch size, after one warm-up batch;
  the best batch size is the one with the highest rate;
- peak memory: see :mod:`hub.measure.memory` (CUDA's counter on a GPU, RSS growth on a CPU).

The figures are stored for this machine (:mod:`hub.benchstore`) under the model, backend, effective
dtype and device kind, where ``--backend auto`` and ``hub recommend`` read them.
"""
from __future__ import annotations

import contextlib
import os
import statistics
import time
import warnings
from dataclasses import asdict, dataclass, field

from hub.errors import HubError
from hub.runtimes import AUTO, BACKENDS, TORCH, runtimes_reading
from hub.measure import DEFAULT_BATCH_SIZES, DEFAULT_REPEATS, DEFAULT_ROUNDS

MAX_BATCH_SIZE = 4096


@dataclass
class BenchResult:
    """What ``hub bench`` measured for one model, backend, dtype and device."""

    model: str
    model_key: str
    task: str
    device: str
    dtype: str
    backend: str
    load_s: float
    latency_ms_p50: float
    latency_ms_p90: float
    latency_repeats: int
    throughput: float
    best_batch_size: int
    throughput_by_batch: dict = field(default_factory=dict)  # batch size -> inputs per second
    peak_memory_bytes: int | None = None
    memory_measure: str = ""
    load_average: float | None = None  # runnable processes (1-minute mean) when measuring began
    cores: int | None = None
    store: str = ""
    load_made_export: bool = False  # the load exported the model on first use: load time and memory include it

    @property
    def busy(self) -> bool:
        """Whether other work competed for the cores: the figures are then pessimistic."""
        return bool(self.load_average and self.cores and self.load_average > self.cores)

    def figures(self) -> dict:
        """The figures kept in the store."""
        keep = ("load_s", "latency_ms_p50", "latency_ms_p90", "latency_repeats", "throughput", "best_batch_size",
                "peak_memory_bytes", "memory_measure", "load_average", "cores", "load_made_export")
        data = {k: getattr(self, k) for k in keep}
        data["throughput_by_batch"] = {str(k): v for k, v in self.throughput_by_batch.items()}
        return data

    def to_dict(self) -> dict:
        data = asdict(self)
        data["throughput_by_batch"] = {str(k): v for k, v in self.throughput_by_batch.items()}
        return data


def parse_batch_sizes(values) -> tuple[int, ...]:
    """Batch sizes from '1,8,32' strings (one or several); a HubError naming the bad one otherwise."""
    sizes: list[int] = []
    for text in values or ():
        for part in str(text).split(","):
            part = part.strip()
            if not part:
                raise HubError(f"--batch-size {text!r} has an empty entry; write sizes like 1,8,32")
            try:
                size = int(part)
            except ValueError:
                raise HubError(f"--batch-size {part!r} is not a whole number; write sizes like 1,8,32") from None
            if not 1 <= size <= MAX_BATCH_SIZE:
                raise HubError(f"--batch-size {size} is out of range; use sizes from 1 to {MAX_BATCH_SIZE}")
            if size not in sizes:
                sizes.append(size)
    return tuple(sorted(sizes)) or DEFAULT_BATCH_SIZES


def check_backend(backend: str | None) -> str:
    """The backend to measure: torch or a runtime (:mod:`hub.runtimes`); never 'auto'."""
    value = (backend or TORCH).strip().lower()
    measurable = ", ".join(b for b in BACKENDS if b != AUTO)
    if value == AUTO:
        raise HubError(f"--backend auto picks from what hub bench measured; bench one backend at a time: {measurable}")
    if value not in BACKENDS:
        raise HubError(f"--backend {value!r} is not a backend; use one of {measurable}")
    return value


def backend_for(spec, backend: str | None) -> str:
    """The backend to measure ``spec`` on: the one asked for, else an export's own runtime, else torch."""
    from hub.export.backends import exported

    info = exported(spec) or {}
    fmt = info.get("format")
    if backend is None:
        return check_backend(fmt or "torch")
    value = check_backend(backend)
    if fmt and value == "torch":
        runtimes = " or ".join(runtimes_reading(fmt))
        raise HubError(f"'{spec.id}' is an {fmt} export without torch weights; measure it with --backend {runtimes} "
                       f"(without --backend: {fmt})")
    return value


def bench(model: str, batch_sizes=DEFAULT_BATCH_SIZES, dtype: str | None = None, backend: str | None = None,
          device: str | None = None, repeats: int = DEFAULT_REPEATS, rounds: int = DEFAULT_ROUNDS,
          progress: bool = False, store: bool = True, task: str | None = None) -> BenchResult:
    """Measure ``model`` on this machine and store the figures (unless ``store`` is False)."""
    from hub import api, benchstore
    from hub.device import requested
    from hub.errors import WriteError

    requested(device, dtype)  # a bad device or dtype fails before anything loads
    if backend is not None:
        check_backend(backend)  # a bad backend fails before the model is looked up
    spec = api.get_spec(model, task)
    backend = backend_for(spec, backend)
    sizes = parse_batch_sizes([",".join(map(str, batch_sizes))])
    if store:
        benchstore.check_writable()  # figures that could not be stored are not taken
    steps = _Steps(progress, 1 + repeats + len(sizes), spec.id)
    try:
        result = _measure(model, spec, sizes, dtype, backend, device, repeats, rounds, steps, task)
    finally:
        steps.close()
    result.model_key = benchstore.model_key(spec)
    if store:
        try:
            benchstore.record(result.model_key, result.backend, result.dtype, result.figures(), device=result.device)
        except WriteError as exc:  # the store broke while measuring (e.g. the disk filled): the figures go with it
            exc.result = result
            raise
        result.store = str(benchstore.store_path())
    return result


def _measure(model, spec, sizes, dtype, backend, device, repeats, rounds, steps, task=None) -> BenchResult:
    """Load, warm up and time the pipeline, all inside the peak-memory watch."""
    from hub import api
    from hub.device import get_device_manager
    from hub.measure.memory import PeakMemory
    from hub.measure.samples import sample_inputs, sample_options

    dm = get_device_manager(device, dtype)
    dm.plan  # torch is imported and the device chosen before anything is timed or counted
    busy = _load_average()
    with PeakMemory(dm.device) as memory:
        start = time.perf_counter()
        with _first_use_export() as exported_now:
            pipeline = api.load(model, device=device, dtype=dtype, task=task, cache=False, backend=backend)
        _sync(dm.device)
        load_s = time.perf_counter() - start
        steps.advance("loaded")
        inputs = sample_inputs(pipeline, max(max(sizes) * rounds, repeats))
        options = sample_options(pipeline)
        latencies = _latencies(pipeline, inputs, options, repeats, dm.device, steps)
        rates = {size: _throughput(pipeline, inputs, options, size, rounds, dm.device, steps) for size in sizes}
    best = max(rates, key=lambda s: rates[s])
    ran = pipeline.device_manager
    return BenchResult(
        model=spec.id, model_key=spec.id, task=pipeline.task, device=ran.device, dtype=ran.dtype, backend=backend,
        load_s=round(load_s, 4), latency_ms_p50=round(statistics.median(latencies), 3),
        latency_ms_p90=round(_percentile(latencies, 90), 3), latency_repeats=len(latencies),
        throughput=round(rates[best], 3), best_batch_size=best,
        throughput_by_batch={k: round(v, 3) for k, v in rates.items()},
        peak_memory_bytes=memory.peak_bytes, memory_measure=memory.how, load_average=busy, cores=os.cpu_count(),
        load_made_export=bool(exported_now))


@contextlib.contextmanager
def _first_use_export():
    """Yield a list that, after the block, holds the hub's notices of an export made on first use (a runtime
    backend for a model without one yet); every warning is shown as usual."""
    found: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield found
    for warning in caught:
        if "on first use" in str(warning.message):  # hub.export.backends.cached_export's notice
            found.append(str(warning.message))
        warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)


def _load_average() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except (OSError, AttributeError):
        return None


def _latencies(pipeline, inputs, options, repeats, device, steps) -> list[float]:
    """Milliseconds per single-input call, ``repeats`` of them after one warm-up call."""
    pipeline(inputs[0], **options)  # warm-up: first-call allocations and kernel choices are not latency
    _sync(device)
    out = []
    for i in range(repeats):
        start = time.perf_counter()
        pipeline(inputs[i % len(inputs)], **options)
        _sync(device)
        out.append(1000 * (time.perf_counter() - start))
        steps.advance("latency")
    return out


def _throughput(pipeline, inputs, options, size, rounds, device, steps) -> float:
    """Inputs per second over ``rounds`` batches of ``size``, after one warm-up batch."""
    pipeline(inputs[:size], batch_size=size, **options)  # warm-up batch
    _sync(device)
    items = inputs[:size * rounds]
    start = time.perf_counter()
    pipeline(items, batch_size=size, **options)
    _sync(device)
    steps.advance(f"batch {size}")
    return len(items) / max(time.perf_counter() - start, 1e-9)


def _percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * pct / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize(device)


class _Steps:
    """A progress bar over the measurement's steps (on stderr, only on a terminal)."""

    def __init__(self, enabled: bool, total: int, label: str):
        self.bar = None
        if enabled:
            import sys

            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=f"bench {label}", unit="step", file=sys.stderr, leave=False,
                            disable=None)

    def advance(self, stage: str) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(stage, refresh=False)
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
