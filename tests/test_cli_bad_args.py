"""Every CLI verb, given bad arguments: exit code 2, exactly one line on stderr, no traceback.

The rows are built from the click group itself, so a new verb (or a plugin's) is covered by the
generic rows at once: an unknown option, a missing or an extra argument, and for each kind of typed
option (choice, integer, number, existing path, flag) one bad value. Semantic rows (unknown model ids,
files that do not exist, non-plugins) follow for the verbs that take them. Each row runs the installed
``hub`` in a subprocess, offline; none loads a model.
"""
from __future__ import annotations

import os
import subprocess

import click
import pytest

from conftest import ROOT, hub_exe
from hub.cli import cli

DATA = str(ROOT / "tests" / "data" / "topics.jsonl")
MODEL_WORDS = ("model", "model_id", "model_ids")


def verbs() -> dict[str, click.Command]:
    """Every command of the group, plugin commands included."""
    from hub.cli import _add_plugin_commands

    _add_plugin_commands()
    return dict(sorted(cli.commands.items()))


def filled(command: click.Command) -> list[str]:
    """Harmless values for the required arguments and options, so that only the bad part fails."""
    out = []
    for param in command.params:
        if isinstance(param, click.Argument) and param.required:
            out.append("all-minilm-l6-v2" if param.name in MODEL_WORDS else "x")
        elif isinstance(param, click.Option) and param.required:
            out += [param.opts[0], DATA if isinstance(param.type, click.Path) else "x"]
    return out


def bad_value(param: click.Option) -> tuple[str, str] | None:
    """One value of the wrong kind for a typed option, and what the row is called."""
    kind = param.type
    if isinstance(kind, click.Choice):
        return "no-such-choice", "bad choice"
    if isinstance(kind, (click.types.IntParamType, click.IntRange)):
        return "many", "not an integer"
    if isinstance(kind, (click.types.FloatParamType, click.FloatRange)):
        return "lots", "not a number"
    if isinstance(kind, click.Path) and kind.exists:
        return "/no/such/path/anywhere", "nonexistent path"
    return None


def generic_rows(name: str, command: click.Command):
    base = [name, *filled(command)]
    yield f"{name}: unknown option", [*base, "--no-such-option"]
    if any(isinstance(p, click.Argument) and p.required for p in command.params):
        yield f"{name}: missing argument", [name]
    elif not any(isinstance(p, click.Argument) for p in command.params):
        yield f"{name}: unexpected extra argument", [*base, "unexpected"]
    seen = set()
    for param in command.params:
        if not isinstance(param, click.Option):
            continue
        if param.is_flag and not param.secondary_opts and "flag" not in seen:
            seen.add("flag")
            yield f"{name}: flag given a value", [*base, f"{param.opts[-1]}=yes"]
        bad = bad_value(param)
        if bad and bad[1] not in seen:
            seen.add(bad[1])
            yield f"{name}: {bad[1]} for {param.opts[-1]}", [*base, param.opts[-1], bad[0]]
        elif not param.is_flag and param.nargs == 1 and "missing value" not in seen and param.opts[-1].startswith("--"):
            seen.add("missing value")
            yield f"{name}: option without its value", [*base, param.opts[-1]]


SEMANTIC = {
    "info": [["info", "no-such-model-xyz"], ["info", "./no/such/dir/"]],
    "run": [["run", "no-such-model-xyz", "hello"], ["run", "all-minilm-l6-v2", "no/such/file.txt"],
            ["run", "all-minilm-l6-v2", "hello", "--task", "no-such-task"],
            ["run", "all-minilm-l6-v2", "hello", "--task", "image-classification"],
            ["run", "all-minilm-l6-v2", "hello", "-o", "novalue"],
            ["run", "all-minilm-l6-v2", "hello", "--device", "tpu"]],
    "list": [["list", "--task", "no-such-task"], ["list", "--modality", "smell"]],
    "finetune": [["finetune", "no-such-model-xyz", "--data", DATA]],
    "eval": [["eval", "no-such-model-xyz", "--data", DATA]],
    "pin": [["pin", "--file", "/no/such/catalog.yaml"]],
    "uninstall": [["uninstall", "click"], ["uninstall", "mmhub"]],
    "install": [["install", "./no/such/plugin-dir"], ["install", "transfomers"]],
    "env": [["env", "--device", "tpu"]],
}
ENVIRONMENT = [  # settings that are wrong for every verb that reads them
    ("env", {"HUB_CACHE_BUDGET": "inf"}), ("env", {"HUB_CACHE_BUDGET": "-5GB"}), ("env", {"HUB_DEVICE": "gpu"}),
    ("env", {"HUB_DTYPE": "fp8"}), ("list", {"HUB_CATALOG": "/no/such/catalog.yaml"}),
]


def rows():
    for name, command in verbs().items():
        yield from (pytest.param(args, {}, id=label) for label, args in generic_rows(name, command))
        yield from (pytest.param(args, {}, id=f"{name}: {' '.join(args[1:])}") for args in SEMANTIC.get(name, []))
    yield pytest.param(["--no-such-option"], {}, id="hub: unknown option")
    yield pytest.param(["no-such-verb"], {}, id="hub: unknown verb")
    yield pytest.param(["lst"], {}, id="hub: misspelt verb")
    for verb, env in ENVIRONMENT:
        yield pytest.param([verb], env, id=f"{verb} with {env}")
    yield pytest.param([b"info", b"caf\xe9"], {}, id="info: undecodable argument bytes")


@pytest.mark.parametrize("args, env", list(rows()))
def test_bad_arguments_give_one_line_and_exit_2(args, env):
    done = subprocess.run([hub_exe(), *args], capture_output=True, timeout=120,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", **env})
    stderr = done.stderr.decode("utf-8", "replace")
    assert done.returncode == 2, stderr
    assert "Traceback" not in stderr + done.stdout.decode("utf-8", "replace")
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), stderr


def test_every_verb_is_covered():
    """The generic rows reach every verb, including the ones named in the documentation."""
    covered = {p.values[0][0] for p in rows() if isinstance(p.values[0][0], str)}
    assert set(verbs()) <= covered
    assert {"list", "info", "tasks", "plugins", "install", "uninstall", "run", "env", "pin", "finetune",
            "eval"} <= set(verbs())


def test_usage_errors_name_the_command_help():
    done = subprocess.run([hub_exe(), "run", "all-minilm-l6-v2", "x", "--jsn"], capture_output=True,
                          text=True, timeout=60, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert done.stderr.strip() == "Error: No such option '--jsn'. Did you mean '--json'? (see 'hub run --help')"
