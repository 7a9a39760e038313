"""The ``hub run`` options for batch inference (``--input FILE --output OUT.jsonl``); click only at import."""
from __future__ import annotations

import click

BATCH_OPTIONS = ("input_file", "output", "nproc", "shard", "resume", "overwrite", "chunk_size")


def batch_options(f):
    """Add ``--input``, ``--output``, ``--nproc``, ``--shard``, ``--resume`` and ``--overwrite`` to ``hub run``."""
    options = [
        click.option("--chunk-size", type=click.IntRange(1), metavar="LINES",
                     help="Batch: input lines per part file, the unit of work and of resuming (default 1000)."),
        click.option("--overwrite", is_flag=True, default=None,
                     help="Batch: start over, replacing --output once the new one is complete."),
        click.option("--resume", is_flag=True, default=None,
                     help="Batch: finish an interrupted run, skipping the chunks already written."),
        click.option("--shard", metavar="K/N",
                     help="Batch: do shard K of N (from 0), for many machines sharing --output's directory."),
        click.option("--nproc", type=click.IntRange(1), help="Batch: worker processes on this machine."),
        click.option("--output", type=click.Path(dir_okay=False), metavar="OUT.jsonl",
                     help="Batch: the JSONL file of results, one per input line, in input order."),
        click.option("--input", "input_file", type=click.Path(dir_okay=False), metavar="FILE",
                     help="Batch: a file with one input per line (or JSONL: a string or {\"input\": ...} per line)."),
    ]
    for option in options:
        f = option(f)
    return f


def wants_batch(batch: dict) -> bool:
    return any(batch.get(name) not in (None, False) for name in BATCH_OPTIONS)


def run_batch_cmd(model_id, inputs, task, device, dtype, backend, batch_size, labels, texts, top_k, extra,
                  trust_remote_code, server, save_dir, input_file=None, output=None, nproc=None, shard=None,
                  resume=None, overwrite=None, chunk_size=None) -> None:
    """``hub run MODEL --input FILE --output OUT.jsonl [--nproc N | --shard K/N] [--resume | --overwrite]``."""
    from hub.batch.plan import CHUNK
    from hub.batch.runner import Job, run_batch
    from hub.errors import HubError
    from hub.run_inputs import call_options

    if input_file is None or output is None:
        raise HubError("batch inference needs both --input FILE and --output OUT.jsonl (--nproc, --shard, --resume "
                       "and --overwrite belong to it)")
    clashes = [name for name, given in (("INPUTS", inputs), ("--server", server), ("--save-dir", save_dir)) if given]
    if clashes:
        raise HubError(f"{', '.join(clashes)} cannot be used with --input; give the inputs in the file, one per line")
    if shard and overwrite:
        raise HubError("--overwrite cannot be used with --shard: the shards share one work directory and each would "
                       f"remove the others' parts; delete {output} and {output}.parts/ before starting the shards")
    options = call_options(extra, labels, texts, top_k)
    job = Job(model_id, task, device, dtype, backend, batch_size, options, bool(trust_remote_code))
    done = run_batch(job, input_file, output, nproc=nproc or 1, shard=shard, resume=bool(resume),
                     overwrite=bool(overwrite), chunk_size=chunk_size or CHUNK)
    if done.rows is not None:
        click.echo(f"Wrote {done.rows} results to {output}.", err=True)
    elif done.missing:
        click.echo(f"Shard {shard} done; {done.missing} chunk(s) of other shards are not written yet. The last shard "
                   f"to finish merges them into {output} (or rerun with --resume once they are).", err=True)
    else:
        click.echo(f"{output} is already complete; nothing to do.", err=True)
