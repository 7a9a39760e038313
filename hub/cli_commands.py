"""The commands of ``hub`` found when needed: those defined outside :mod:`hub.cli`, and the plugins'.

``hub list`` imports none of the modules of the other commands, and no plugin is asked for its commands
until a name is not the hub's own, or every command is listed (``hub --help``, ``hub plugins``). The
short help ``hub --help`` shows for a command not imported yet is kept here as data (tests check it
against the command's own).
"""
from __future__ import annotations

import click

from hub.errors import HubError

# name -> (module:attribute, the first paragraph of its help) of the commands defined in other modules: imported
# only when run, while 'hub --help' lists them from here (tests check each against its command).
LAZY_COMMANDS = {
    "bench": ("hub.measure.command:bench_cmd",
              "Measure MODEL on this machine: load time, latency at batch 1 (median, p90), throughput at the best "
              "batch size, peak memory. The figures are stored per machine for --backend auto and hub recommend."),
    "eval": ("hub.train.commands:eval_cmd",
             "Evaluate MODEL (a catalogue id or a hub finetune directory) on labelled data."),
    "export": ("hub.export.command:export_cmd",
               "Export MODEL_ID to ONNX or OpenVINO as a self-contained model directory, measured against fp32 "
               "torch."),
    "finetune": ("hub.train.commands:finetune_cmd",
                 "Fine-tune MODEL_ID on labelled data; the output directory is itself a model (hub run OUT ...)."),
    "recommend": ("hub.recommend.command:recommend_cmd",
                  "Rank catalogue models for a task on this machine, each rank explained in one line: published "
                  "accuracy with its source, cost measured by hub bench or estimated (and marked so), and why it "
                  "fits or is excluded."),
    "serve": ("hub.serve.command:serve_cmd",
              "Serve models over HTTP: native routes for every task, OpenAI-compatible embeddings and "
              "transcriptions, and a page at / (needs the serve extra: pip install 'mmhub[serve]')."),
}


def lazy_command(name: str) -> click.Command:
    """Import the command ``name`` of LAZY_COMMANDS."""
    import importlib

    module, _, attribute = LAZY_COMMANDS[name][0].partition(":")
    return getattr(importlib.import_module(module), attribute)


def add_all_commands(group: click.Group) -> None:
    """Complete the group: every command of LAZY_COMMANDS imported, then each plugin's commands added."""
    for name in LAZY_COMMANDS:
        if name not in group.commands:
            group.commands[name] = lazy_command(name)
    load_plugin_commands(group)


def load_plugin_commands(group: click.Group) -> None:
    """Let each plugin add its commands, one at a time; a failing plugin adds none and is reported.

    Done once per plugin manager (again when plugins change, or when the commands added were removed since);
    a plugin may take neither a name of this group nor one of LAZY_COMMANDS.
    """
    try:
        from hub.plugins import get_plugin_manager, plugin_impls

        pm = get_plugin_manager()
        added = getattr(group, "plugin_commands", {})
        if getattr(group, "plugins_for", None) == (pm, pm.generation) and all(
                group.commands.get(name) is command for name, command in added.items()):
            return
        impls = plugin_impls("register_commands", pm)
    except Exception as exc:  # never let plugin discovery stop the hub from starting
        click.echo(f"Warning: plugins could not be loaded: {type(exc).__name__}: {exc}", err=True)
        return
    for name, command in added.items():  # the commands the plugins added last time are theirs to add again
        if group.commands.get(name) is command:
            del group.commands[name]
    own = dict(group.commands)
    for name, impl in impls:
        _add_commands_of(pm, group, name, impl)
    group.plugin_commands = {k: c for k, c in group.commands.items() if own.get(k) is not c}
    group.plugins_for = (pm, pm.generation)


def _add_commands_of(pm, group: click.Group, name: str, impl) -> None:
    """Call one plugin's register_commands; on failure, or a name taken from the hub, its commands are removed."""
    from hub.plugins import guarded_call

    before = dict(group.commands)
    try:
        guarded_call(name, "register_commands", impl, {"cli": group})
    except HubError as exc:
        group.commands.clear(), group.commands.update(before)
        pm.problem(name, f"register_commands failed, its commands are left out: {exc}",
                   getattr(exc, "original", None) or exc)
        return
    replaced = sorted({k for k, cmd in before.items() if group.commands.get(k) is not cmd} |
                      {k for k in group.commands if k not in before and k in LAZY_COMMANDS})
    if replaced:
        group.commands.clear(), group.commands.update(before)
        pm.problem(name, f"register_commands tried to replace the command(s) {', '.join(replaced)}; "
                         "its commands are left out. Give them other names.")
