"""``hub finetune`` and ``hub eval``: thin click commands over :mod:`hub.train.api`.

Only click is imported at module level, so adding these commands keeps ``hub list`` fast.
"""
from __future__ import annotations

import json
import os

import click

from hub.cli_types import FiniteFloat

PRECISIONS = ["auto", "fp32", "bf16", "fp16"]


def _show_warning(message, category, filename, lineno, file=None, line=None):
    click.echo(f"Warning: {message}", err=True)


@click.command("finetune")
@click.argument("model_id")
@click.option("--data", required=True, type=click.Path(exists=True),
              help="Training data: a folder of class subfolders, or a CSV/TSV/JSONL file (or what the plugin's "
                   "own kind of training reads, e.g. images/ + masks/ for segmentation).")
@click.option("--val", type=click.Path(exists=True), help="Validation data (default: a stratified 20% of --data).")
@click.option("--task", help="Task to fine-tune for, e.g. text-classification (default: the model's task).")
@click.option("--epochs", type=click.IntRange(1), default=3, show_default=True)
@click.option("--lr", type=FiniteFloat(min=0, min_open=True),
              help="Backbone learning rate; the new head gets 10x (default 5e-5, CLIP 1e-5, CTC 1e-4).")
@click.option("--batch-size", type=click.IntRange(1), default=32, show_default=True, help="Examples per device.")
@click.option("--grad-accum", type=click.IntRange(1), default=1, show_default=True,
              help="Micro-batches per optimiser step.")
@click.option("--precision", type=click.Choice(PRECISIONS), default="auto", show_default=True,
              help="auto: bf16 autocast where fast (CUDA bf16, AMX CPUs), fp16 + grad scaling, or fp32.")
@click.option("--freeze-backbone", is_flag=True, help="Train the new head only.")
@click.option("--unfreeze-last", type=click.IntRange(0), help="Train the head and the last N backbone blocks.")
@click.option("--out", type=click.Path(file_okay=False), help="Output directory (default runs/<model>-<task>).")
@click.option("--resume", is_flag=True, help="Continue from the last checkpoint in --out.")
@click.option("--overwrite", is_flag=True,
              help="Use a non-empty --out anyway: what is in it is moved into OUT/.replaced-<time>/ (nothing is "
                   "deleted) and the run starts over.")
@click.option("--nproc", type=click.IntRange(1), default=1, show_default=True,
              help="Processes on this machine (one per GPU); re-runs under torchrun.")
@click.option("--shard", is_flag=True,
              help="Shard weights, gradients and optimiser state over the processes (FSDP2), for models beyond "
                   "one device's memory; checkpoints are saved sharded.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--eval-every", type=click.IntRange(1), help="Evaluate every N steps (always at each epoch end).")
@click.option("--patience", type=click.IntRange(1), help="Stop after N evaluations without improvement.")
@click.option("--metric", default="accuracy", show_default=True,
              help="Metric that picks the best checkpoint: accuracy, f1_macro, loss, recall@1, wer, or one the "
                   "plugin's own kind of training reports (e.g. miou for image-segmentation).")
@click.option("--schedule", type=click.Choice(["constant", "linear", "cosine"]), default="linear",
              show_default=True, help="Learning-rate schedule after warmup.")
@click.option("--warmup", type=FiniteFloat(0), default=0.1, show_default=True,
              help="Warmup steps (a value below 1 is a fraction of all steps).")
@click.option("--max-steps", type=click.IntRange(1), help="Stop after this many optimiser steps.")
@click.option("--on-bad-rows", type=click.Choice(["skip", "error"]), default="skip", show_default=True,
              help="Skip unreadable rows (listed) or stop on them.")
@click.option("--text-column", default="text", show_default=True, help="Column holding the text (or file path).")
@click.option("--label-column", default="label", show_default=True, help="Column holding the label.")
@click.option("--group-by-length/--no-group-by-length", default=True, show_default=True,
              help="Batch examples of similar length together (less padding).")
@click.pass_context
def finetune_cmd(ctx, model_id, data, val, task, epochs, lr, batch_size, grad_accum, precision, freeze_backbone,
                 unfreeze_last, out, resume, overwrite, nproc, shard, seed, eval_every, patience, metric, schedule, warmup,
                 max_steps, on_bad_rows, text_column, label_column, group_by_length):
    """Fine-tune MODEL_ID on labelled data; the output directory is itself a model (hub run OUT ...)."""
    if nproc > 1 and "WORLD_SIZE" not in os.environ:
        from hub.train.distributed import launch

        ctx.exit(launch(nproc, _argv(ctx, skip=("nproc",))))
    import warnings

    from hub.train.api import finetune

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = _show_warning
        result = finetune(model_id, data, val=val, task=task, epochs=epochs, lr=lr, batch_size=batch_size,
                          grad_accum=grad_accum, precision=precision, freeze_backbone=freeze_backbone,
                          unfreeze_last=unfreeze_last, out=out, resume=resume, overwrite=overwrite, seed=seed,
                          eval_every=eval_every, patience=patience, metric=metric, schedule=schedule, warmup=warmup,
                          max_steps=max_steps, on_bad_rows=on_bad_rows, text_column=text_column,
                          label_column=label_column, group_by_length=group_by_length, shard=shard)
    if int(os.environ.get("RANK", 0)) != 0:
        return
    score = result.metrics.get(result.metric)
    best = f"; best {result.metric} {score:.4f} (step {result.best_step})" if isinstance(score, float) else ""
    click.echo(f"Trained {result.steps} steps on {result.train_rows} rows ({result.throughput:.1f} examples/s)"
               f"{best}.")
    click.echo(f"Saved the model to {result.out_dir}; try: hub run {result.out_dir} <input>")


def _argv(ctx, skip=()) -> list[str]:
    """The command line that reproduces ``ctx``'s arguments (for re-running under torchrun)."""
    argv = []
    for param in ctx.command.params:
        value = ctx.params.get(param.name)
        if param.name in skip or value is None:
            continue
        if isinstance(param, click.Argument):
            argv.append(str(value))
        elif param.is_flag:
            if param.secondary_opts:  # --x/--no-x: pass on whichever is in force
                argv.append(param.opts[0] if value else param.secondary_opts[0])
            elif value:
                argv.append(param.opts[0])
        elif value != param.default:
            argv.extend([param.opts[0], str(value)])
    return argv


@click.command("eval")
@click.argument("model")
@click.option("--data", required=True, type=click.Path(exists=True), help="Labelled data, as for hub finetune.")
@click.option("--task", help="Task to evaluate (default: the model's task).")
@click.option("--batch-size", type=click.IntRange(1), default=32, show_default=True)
@click.option("--precision", type=click.Choice(PRECISIONS), default="auto", show_default=True)
@click.option("--text-column", default="text", show_default=True)
@click.option("--label-column", default="label", show_default=True)
@click.option("--on-bad-rows", type=click.Choice(["skip", "error"]), default="skip", show_default=True,
              help="Skip unreadable rows and files (listed) or stop on them.")
@click.option("--json", "as_json", is_flag=True, help="Print all metrics (per class, confusion) as JSON.")
def eval_cmd(model, data, task, batch_size, precision, text_column, label_column, on_bad_rows, as_json):
    """Evaluate MODEL (a catalogue id or a hub finetune directory) on labelled data."""
    import warnings

    from hub.train.api import evaluate

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = _show_warning
        metrics = evaluate(model, data, task=task, batch_size=batch_size, precision=precision,
                           text_column=text_column, label_column=label_column, on_bad_rows=on_bad_rows)
    if as_json:
        click.echo(json.dumps(metrics, indent=2))
        return
    for key, value in metrics.items():
        if isinstance(value, float):
            click.echo(f"{key + ':':<18}{value:.4f}")
        elif isinstance(value, int):
            click.echo(f"{key + ':':<18}{value}")
    per_class = metrics.get("per_class")
    if per_class:
        click.echo("per class (precision / recall / f1 / support):")
        for name, row in per_class.items():
            click.echo(f"  {name:<16}{row['precision']:.3f}  {row['recall']:.3f}  {row['f1']:.3f}  {row['support']}")
