"""``hub recommend``: the click command. Only click is imported here, so the CLI stays fast to start."""
from __future__ import annotations

import json

import click

from hub.cli_types import FiniteFloat


@click.command("recommend")
@click.option("--task", required=True, help="The task to choose a model for, e.g. image-classification.")
@click.option("--examples", type=click.IntRange(0), metavar="N",
              help="How many labelled examples you have: advice on zero-shot, a frozen backbone or a full fine-tune.")
@click.option("--max-latency-ms", type=FiniteFloat(0, min_open=True), metavar="X",
              help="Exclude models slower than X ms per input at batch 1.")
@click.option("--max-memory", "max_memory_gb", type=FiniteFloat(0, min_open=True), metavar="GB",
              help="Exclude models needing more than GB gigabytes.")
@click.option("--device", help="cpu, cuda or mps: the device the costs are for (default: this machine's best).")
@click.option("--json", "as_json", is_flag=True, help="Print the ranking as JSON.")
def recommend_cmd(task, examples, max_latency_ms, max_memory_gb, device, as_json):
    """Rank catalogue models for a task on this machine, each rank explained in one line: published accuracy
    with its source, cost measured by hub bench or estimated (and marked so), and why it fits or is excluded."""
    from hub.recommend import recommend

    result = recommend(task, examples=examples, max_latency_ms=max_latency_ms, max_memory_gb=max_memory_gb,
                       device=device)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
        return
    if not result.ranked and not result.excluded:
        click.echo(f"No installed model serves the task '{result.task}'. See 'hub list --all --task {result.task}' "
                   "for models whose plugin is not installed.")
        return
    for line in result.lines():
        click.echo(line)
