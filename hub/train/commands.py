"""``hub finetune`` and ``hub eval``: thin click commands over :mod:`hub.train.api`.

The training options are made from :class:`hub.train.config.TrainConfig`'s fields (one option per field, with its
type, bounds, default and help), so the CLI, ``finetune()`` and the config cannot drift apart. Only click and that
config are imported at module level, so adding these commands keeps ``hub list`` fast.
"""
from __future__ import annotations

import json
import os

import click

from hub.cli_types import FiniteFloat
from hub.train.config import config_fields, value_type


def _show_warning(message, category, filename, lineno, file=None, line=None):
    click.echo(f"Warning: {message}", err=True)


def training_option(name: str):
    """The click option of TrainConfig field ``name``: its type, bounds, choices, default and help."""
    f = config_fields()[name]
    kind, _ = value_type(f)
    flag, meta = "--" + name.replace("_", "-"), f.metadata
    if kind is bool:
        decls = [flag] if not f.default else [f"{flag}/--no-{flag[2:]}"]
        return click.option(*decls, name, is_flag=True, default=f.default, show_default=True, help=meta["help"])
    if meta["choices"]:
        click_type = click.Choice(meta["choices"])
    elif kind is int:
        click_type = click.IntRange(meta["low"]) if meta["low"] is not None else click.INT
    elif kind is float:
        click_type = FiniteFloat(min=meta["low"], min_open=bool(meta["open_low"]))
    else:
        click_type = click.STRING
    return click.option(flag, name, type=click_type, default=f.default, show_default=f.default is not None,
                        help=meta["help"])


def training_options(command):
    """One option per TrainConfig field offered on the command line, in the fields' order."""
    for name in reversed([name for name, f in config_fields().items() if f.metadata["cli"]]):
        command = training_option(name)(command)
    return command


@click.command("finetune")
@click.argument("model_id")
@click.option("--data", required=True, type=click.Path(exists=True),
              help="Training data: a folder of class subfolders, or a CSV/TSV/JSONL file (or what the plugin's "
                   "own kind of training reads, e.g. images/ + masks/ for segmentation).")
@click.option("--val", type=click.Path(exists=True), help="Validation data (default: a stratified 20% of --data).")
@click.option("--task", help="Task to fine-tune for, e.g. text-classification (default: the model's task).")
@click.option("--out", type=click.Path(file_okay=False), help="Output directory (default runs/<model>-<task>).")
@click.option("--resume", is_flag=True, help="Continue from the last checkpoint in --out.")
@click.option("--overwrite", is_flag=True,
              help="Use a non-empty --out anyway: what is in it is moved into OUT/.replaced-<time>/ (nothing is "
                   "deleted) and the run starts over.")
@click.option("--nproc", type=click.IntRange(1), default=1, show_default=True,
              help="Processes on this machine (one per GPU); re-runs under torchrun.")
@click.option("--on-bad-rows", type=click.Choice(["skip", "error"]), default="skip", show_default=True,
              help="Skip unreadable rows (listed) or stop on them.")
@click.option("--text-column", default="text", show_default=True, help="Column holding the text (or file path).")
@click.option("--label-column", default="label", show_default=True, help="Column holding the label.")
@training_options
@click.pass_context
def finetune_cmd(ctx, model_id, data, val, task, out, resume, overwrite, nproc, on_bad_rows, text_column, label_column,
                 **training):
    """Fine-tune MODEL_ID on labelled data; the output directory is itself a model (hub run OUT ...)."""
    if nproc > 1 and "WORLD_SIZE" not in os.environ:
        from hub.train.distributed import launch

        ctx.exit(launch(nproc, _argv(ctx, skip=("nproc",))))
    import warnings

    from hub.train.api import finetune

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = _show_warning
        result = finetune(model_id, data, val=val, task=task, out=out, resume=resume, overwrite=overwrite,
                          on_bad_rows=on_bad_rows, text_column=text_column, label_column=label_column, **training)
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
@training_option("batch_size")
@training_option("precision")
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
