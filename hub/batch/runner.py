"""Running a batch: the chunks of this shard, in this process or in ``--nproc`` worker processes.

A worker loads the pipeline once and, chunk by chunk, turns lines into inputs as ``hub run`` does
(a text task's line is its text; an image or audio task's line is a file path; a plugin's own
kind of input is read by the task's loader), runs them and writes the chunk's part. A line that
cannot be used (unreadable, a missing file, a corrupt image) gets an ``error`` row instead of stopping
millions of others. Workers on a CUDA
machine take GPUs round robin; on the CPU they share the cores.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass

from hub.batch.plan import CHUNK, JSONL_SUFFIXES, Plan, input_identity, parse_line, parse_shard, prepare, read_chunks
from hub.errors import HubError, InputError


@dataclass
class Job:
    """What every worker needs (picklable, for spawned processes)."""

    model_id: str
    task: str | None = None
    device: str | None = None
    dtype: str | None = None
    backend: str | None = None
    batch_size: int | None = None
    options: dict | None = None  # -o KEY=VALUE strings and flags, converted by the model's option contract
    trust_remote_code: bool = False


@dataclass
class Outcome:
    """What one call did: the rows merged into OUT, the chunks still missing, the chunks written here."""

    rows: int | None  # rows in OUT once merged; None while other shards' chunks are missing
    missing: int  # chunks not written yet
    done_here: int  # chunks this call wrote


def run_batch(job: Job, input_file, output, nproc: int = 1, shard: str | None = None, resume: bool = False,
              overwrite: bool = False, chunk_size: int = CHUNK) -> Outcome:
    """Run ``job`` over ``input_file`` into ``output`` (see :mod:`hub.batch`)."""
    from pathlib import Path

    from hub import api
    from hub.model_options import check_model_options

    if nproc < 1:
        raise HubError(f"--nproc must be at least 1, got {nproc}")
    k, n = parse_shard(shard)
    spec = api.get_spec(job.model_id, job.task)
    check_model_options(spec, dict(job.options or {}))  # bad options fail before any work
    source = Path(input_file)
    if not source.is_file():
        raise InputError(f"--input '{source}' is not a file; give a file with one input per line (or JSONL)")
    identity = {**input_identity(source), "model": spec.id, "task": spec.task, "options": job.options or {},
                "chunk_size": chunk_size}
    plan = prepare(source, output, identity, chunk_size, resume, overwrite, joining=shard is not None)
    if plan is None:
        return Outcome(rows=None, missing=0, done_here=0)
    plan.verify()
    todo = plan.todo(k, n)
    total = sum(plan.chunk_lines(c) for c in todo)
    if todo:
        _run_here(job, plan, todo, nproc, total)
    rows = plan.finish()
    missing = 0 if rows is not None else len(plan.missing())
    if rows is None and shard is None:
        raise HubError(f"{missing} chunk(s) of '{source}' were not written to '{plan.work}'; rerun with --resume")
    return Outcome(rows=rows, missing=missing, done_here=len(todo))


def _run_here(job: Job, plan: Plan, todo: list[int], nproc: int, total: int) -> None:
    """Write the parts of ``todo`` here (in ``nproc`` workers), with a progress bar over their ``total`` lines."""
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc=job.model_id, unit="input", file=sys.stderr, disable=None, leave=False)
    try:
        if nproc == 1 or len(todo) == 1:
            work(job, plan, todo, 0, 1, bar.update)
        else:
            _spawn(job, plan, todo, min(nproc, len(todo)), bar)
    finally:
        bar.close()


def _spawn(job: Job, plan: Plan, todo: list[int], nproc: int, bar) -> None:
    """``nproc`` worker processes, chunks dealt round robin; the bar follows the counts they send."""
    import multiprocessing as mp
    import queue as queues

    ctx = mp.get_context("spawn")
    counts = ctx.Queue()
    procs = [ctx.Process(target=_worker_main, args=(job, plan, todo[i::nproc], i, nproc, counts), daemon=True)
             for i in range(nproc)]
    for proc in procs:
        proc.start()
    try:
        while any(p.is_alive() for p in procs) or not counts.empty():
            try:
                bar.update(counts.get(timeout=0.2))
            except queues.Empty:
                pass
    finally:
        for proc in procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.terminate()
    failed = [i for i, p in enumerate(procs) if p.exitcode != 0]
    if failed:
        raise HubError(f"batch worker(s) {', '.join(map(str, failed))} of {nproc} failed (their messages are above); "
                       "the chunks they finished are kept: rerun with --resume")


def _worker_main(job, plan, chunks, index, nproc, counts) -> None:
    try:
        work(job, plan, chunks, index, nproc, counts.put)
    except HubError as exc:
        print(f"Error (worker {index}): {exc}", file=sys.stderr)
        sys.exit(2)


def work(job: Job, plan: Plan, chunks: list[int], index: int, nproc: int, report) -> None:
    """Load the pipeline and write the part of each of ``chunks``; ``report(n)`` after each part."""
    from hub import api
    from hub.tasks import TASKS

    device = _worker_device(job.device, index, nproc)
    load_options = {"trust_remote_code": True} if job.trust_remote_code else {}
    pipeline = api.load(job.model_id, device=device, dtype=job.dtype, task=job.task, backend=job.backend,
                        **load_options)
    info = TASKS[api.get_spec(job.model_id, job.task).task]
    jsonl = plan.input.suffix.lower() in JSONL_SUFFIXES
    for chunk, lines in read_chunks(plan.input, plan.chunk_size, chunks):
        rows = run_chunk(pipeline, info, job, lines, jsonl)
        plan.write_part(chunk, rows)
        report(plan.chunk_lines(chunk))


def run_chunk(pipeline, info, job: Job, lines, jsonl: bool) -> list[dict]:
    """One row per non-blank line, in order: ``result``, or ``error`` when the line cannot be used."""
    rows, ready = [], []
    for number, raw in lines:
        try:
            text = parse_line(number, raw, jsonl)
            if text is None:
                continue
            item = to_input(text, info, job)
        except InputError as exc:
            rows.append({"line": number, "input": raw.decode("utf-8", "replace"), "error": str(exc)})
            continue
        row = {"line": number, "input": text}
        rows.append(row)
        ready.append((row, item))
    if ready:
        for (row, _), outcome in zip(ready, run_items(pipeline, [item for _, item in ready], job)):
            row.update(outcome)
    return rows


def run_items(pipeline, items: list, job: Job) -> list[dict]:
    """``{"result": ...}`` per item, batched; when an input the pipeline cannot use (a corrupt image, say)
    fails the batch, the items run one by one and that one gets ``{"error": ...}`` instead."""
    options = job.options or {}
    try:
        return [{"result": r.to_dict()} for r in pipeline(items, batch_size=job.batch_size, **options)]
    except InputError:
        pass
    outcomes = []
    for item in items:
        try:
            (result,) = pipeline([item], batch_size=1, **options)
            outcomes.append({"result": result.to_dict()})
        except InputError as exc:
            outcomes.append({"error": str(exc)})
    return outcomes


def to_input(text: str, info, job: Job):
    """A line as the pipeline's input, as ``hub run`` reads a stdin line."""
    from pathlib import Path

    from hub.inputs import cli_input

    if info.inputs == "text":
        return text
    if info.loader:
        path = Path(text)
        if not path.is_file():
            raise InputError(f"input file '{text}' does not exist")
        return info.load_input(path.read_bytes(), f"input file '{text}'")
    return cli_input(text, info.inputs, model=job.model_id, task=job.task)


def _worker_device(device: str | None, index: int, nproc: int) -> str | None:
    """Worker ``index``'s device: GPUs round robin when none is named and CUDA is here; threads split on the CPU."""
    if nproc == 1:
        return device
    import torch

    if device is None and torch.cuda.is_available():
        return f"cuda:{index % torch.cuda.device_count()}"
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // nproc))
    return device
