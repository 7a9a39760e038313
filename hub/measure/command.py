"""``hub bench``: the click command. Only click is imported here, so the CLI stays fast to start."""
from __future__ import annotations

import json

import click

from hub.measure import DEFAULT_REPEATS, DEFAULT_ROUNDS


@click.command("bench")
@click.argument("model_id", metavar="MODEL")
@click.option("--task", help="The task to measure it for, when the model serves several (default: its own).")
@click.option("--batch-size", "batch_sizes", multiple=True, metavar="N[,N...]",
              help="Batch sizes to try for throughput, e.g. 1,8,32 (repeatable; default 1,8,32).")
@click.option("--dtype", type=click.Choice(["auto", "fp32", "bf16", "fp16"]), help="Dtype policy (default auto).")
@click.option("--backend", help="What runs the forward pass: torch (default; an export's own runtime for an exported "
                                   "directory), or another runtime the hub offers.")
@click.option("--device", help="cpu, cuda, cuda:N or mps (default: the best available).")
@click.option("--repeats", type=click.IntRange(1, 10_000), default=DEFAULT_REPEATS, show_default=True,
              help="Timed single-input calls for the latency figures.")
@click.option("--rounds", type=click.IntRange(1, 1_000), default=DEFAULT_ROUNDS, show_default=True,
              help="Timed batches per batch size for the throughput figures.")
@click.option("--no-store", is_flag=True, help="Print the figures without storing them for this machine.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def bench_cmd(model_id, task, batch_sizes, dtype, backend, device, repeats, rounds, no_store, as_json):
    """Measure MODEL on this machine: load time, latency at batch 1 (median, p90), throughput at the best
    batch size, peak memory. The figures are stored per machine for --backend auto and hub recommend."""
    from hub.errors import WriteError
    from hub.measure.runner import bench, parse_batch_sizes

    sizes = parse_batch_sizes(batch_sizes)  # a bad size fails before anything loads
    try:
        result = bench(model_id, sizes, dtype=dtype, backend=backend, device=device, repeats=repeats,
                       rounds=rounds, progress=not as_json, store=not no_store, task=task)
    except WriteError as exc:  # measured, but the store could not take the figures: print them, then the error
        if getattr(exc, "result", None) is None:
            raise
        show(exc.result, as_json, unstored="not stored (see the error below)")
        raise
    show(result, as_json)


def show(result, as_json: bool, unstored: str = "not stored (--no-store)") -> None:
    """The figures on stdout: JSON, or the aligned table."""
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
        return
    for line in result_lines(result, unstored):
        click.echo(line)


def result_lines(result, unstored: str = "not stored (--no-store)") -> list[str]:
    """The figures as aligned 'name  value' lines, then throughput per batch size."""
    from hub.recommend.cost import size_text  # decimal units, as hub recommend shows them and --max-memory takes

    best = result.best_batch_size
    rows = [
        ("model", f"{result.model} ({result.task})"),
        ("ran on", f"{result.device}, {result.dtype}, backend {result.backend}"),
        ("load", f"{result.load_s:.2f} s" + (" (with the export made on first use, as is peak memory: measure again "
                                              "for the load alone)" if result.load_made_export else "")),
        ("latency", f"batch 1: median {result.latency_ms_p50:.1f} ms, p90 {result.latency_ms_p90:.1f} ms "
                    f"({result.latency_repeats} calls)"),
        ("throughput", f"{result.throughput:.1f} inputs/s at batch {best} (the best of "
                       f"{', '.join(str(k) for k in result.throughput_by_batch)})"),
        ("peak memory", f"{size_text(result.peak_memory_bytes)} ({result.memory_measure})"
         if result.peak_memory_bytes is not None else "not measured"),
        ("stored in", result.store or unstored),
    ]
    if result.load_average is not None:
        rows.insert(-1, ("machine load", f"{result.load_average:g} runnable on {result.cores} cores"
                         + (" (busy: other work competed, so these figures are pessimistic)" if result.busy else "")))
    width = max(len(name) for name, _ in rows)
    lines = [f"{name.ljust(width)}  {value}" for name, value in rows]
    lines.append("")
    lines.append("BATCH  INPUTS/S")
    lines += [f"{str(size).ljust(5)}  {rate:.1f}{'  (best)' if size == best else ''}"
              for size, rate in result.throughput_by_batch.items()]
    return lines
