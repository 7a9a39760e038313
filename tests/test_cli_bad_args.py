"""Every CLI verb, given bad arguments: exit code 2, exactly one line on stderr, no traceback.

The rows are built from the click group itself, so a new verb (or a plugin's) is covered by the
generic rows at once: an unknown option, a missing or an extra argument, and for each kind of typed
option (choice, integer, number, existing path, flag) one bad value. Semantic rows (unknown model ids,
files that do not exist, non-plugins) follow for the verbs that take them. Each row runs the installed
``hub`` in a subprocess, offline; none loads a model. The same rows run again in this process through the
group's own entry, so that ``scripts/test.sh --fast`` (no subprocesses) covers the class too.

Three classes are then tried on every verb they apply to: every decimal option given a number that is
not finite or out of its range; every verb that takes a MODEL given a path that is not a model
directory; and every verb whose stdout is read by a reader that goes away (``| head``), which must end
quietly with exit 0.
"""
from __future__ import annotations

import os
import subprocess
import sys

import click
import pytest

from conftest import ROOT, hub_exe
from hub.cli import cli
from hub.cli_types import FiniteFloat

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
            value = (DATA if isinstance(param.type, click.Path) else
                     param.type.choices[0] if isinstance(param.type, click.Choice) else "x")
            out += [param.opts[0], str(value)]
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


@pytest.mark.slow
@pytest.mark.parametrize("args, env", list(rows()))
def test_bad_arguments_give_one_line_and_exit_2(args, env):
    done = subprocess.run([hub_exe(), *args], capture_output=True, timeout=120,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", **env})
    stderr = done.stderr.decode("utf-8", "replace")
    assert done.returncode == 2, stderr
    assert "Traceback" not in stderr + done.stdout.decode("utf-8", "replace")
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), stderr


@pytest.mark.parametrize("args, env", list(rows()))
def test_bad_arguments_give_one_line_and_exit_2_in_process(args, env, fresh_hub, monkeypatch):
    """The same rows through the group's own entry (``HubGroup.main``, what the ``hub`` script calls) in this
    process, so the fast run covers the whole class; the rows above add the installed script and a fresh
    interpreter."""
    from click.testing import CliRunner

    from hub import device

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    # a new process reads the settings anew: forget the budgets and managers earlier tests made from them
    monkeypatch.setattr(device.MODEL_CACHE, "_budgets", {})
    monkeypatch.setattr(device, "_managers", {})
    argv = [os.fsdecode(a) for a in args]  # bytes arrive in sys.argv as surrogate escapes
    done = CliRunner().invoke(cli, argv, prog_name="hub")
    assert done.exit_code == 2, done.output
    assert done.exception is None or isinstance(done.exception, SystemExit), repr(done.exception)
    assert "Traceback" not in done.output
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), done.stderr


def test_every_verb_is_covered():
    """The generic rows reach every verb, including the ones named in the documentation."""
    covered = {p.values[0][0] for p in rows() if isinstance(p.values[0][0], str)}
    assert set(verbs()) <= covered
    assert {"list", "info", "tasks", "plugins", "install", "uninstall", "run", "env", "pin", "finetune",
            "eval"} <= set(verbs())


@pytest.mark.slow
def test_usage_errors_name_the_command_help():
    done = subprocess.run([hub_exe(), "run", "all-minilm-l6-v2", "x", "--jsn"], capture_output=True,
                          text=True, timeout=60, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert done.stderr.strip() == "Error: No such option '--jsn'. Did you mean '--json'? (see 'hub run --help')"


# -- decimal options: finite, within their range ----------------------------------------------------------------------
def decimal_options():
    """(verb, command, option) for every option of every verb that takes a decimal number, the Ray server's too."""
    from hub.serve.ray import main as ray_main

    commands = {**verbs(), "python -m hub.serve.ray": ray_main}
    for name, command in commands.items():
        for param in command.params:
            if isinstance(param, click.Option) and isinstance(param.type, click.types.FloatParamType):
                yield name, command, param


def out_of_range(kind: click.FloatRange) -> list[str]:
    """Finite values just outside the option's declared bounds."""
    values = []
    if kind.min is not None:
        values.append(repr(kind.min if kind.min_open else kind.min - 1))
    if kind.max is not None:
        values.append(repr(kind.max if kind.max_open else kind.max + 1))
    return values


NOT_FINITE = ["nan", "NaN", "-nan", "inf", "-inf", "+Infinity", "1e999", "-1e999"]


def decimal_rows():
    for name, command, param in decimal_options():
        for value in [*NOT_FINITE, *out_of_range(param.type)]:
            yield pytest.param(name, command, param, value, id=f"{name} {param.opts[-1]} {value}")


def test_there_are_decimal_options_and_all_share_the_finite_type():
    found = {(name, p.opts[-1]) for name, _, p in decimal_options()}
    assert {("recommend", "--max-memory"), ("finetune", "--lr"), ("export", "--min-cosine")} <= found
    assert all(isinstance(p.type, FiniteFloat) for _, _, p in decimal_options())


@pytest.mark.parametrize("name, command, param, value", list(decimal_rows()))
def test_every_decimal_option_refuses_numbers_that_are_not_finite_or_in_range(cli_runner, name, command, param,
                                                                               value):
    if command is cli.commands.get(name):
        result = cli_runner.invoke(cli, [name, *filled(command), f"{param.opts[-1]}={value}"])
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    else:
        result = cli_runner.invoke(command, [*filled(command), f"{param.opts[-1]}={value}"])
    assert result.exit_code == 2, result.output
    assert param.opts[-1] in result.stderr and "Traceback" not in result.output
    if value in NOT_FINITE:
        assert "not a finite number" in result.stderr


def test_finite_decimals_within_range_are_taken_as_numbers():
    kind = FiniteFloat(0, min_open=True)
    assert kind.convert("2.5", None, None) == 2.5 and kind.convert("1e-3", None, None) == 0.001
    assert FiniteFloat(-1, 1).convert("-1", None, None) == -1.0


# -- a path given as MODEL that is not a model directory ---------------------------------------------------------------
def model_verbs():
    """Every verb whose first argument is one MODEL ('hub pin' takes catalogue ids only)."""
    for name, command in verbs().items():
        first = next((p for p in command.params if isinstance(p, click.Argument)), None)
        if first is not None and first.name in MODEL_WORDS and first.nargs == 1:
            yield name, command


def bad_model_path(kind: str, root) -> tuple[str, str]:
    """A path of ``kind`` that is no model directory, and words the error must hold."""
    if kind == "missing relative":
        return "./no/such/model-dir", "no such path exists"
    if kind == "missing absolute":
        return str(root / "runs" / "my-modle"), f"the nearest existing folder is '{root}'"
    if kind == "missing under home":
        return "~/no-such-model-dir-xyz", "no such path exists"
    if kind == "plain file":
        (root / "notes.txt").write_text("not a model")
        return str(root / "notes.txt"), "is a file, not a model directory"
    if kind in ("config file", "weights file"):
        (root / "model").mkdir(exist_ok=True)
        file = root / "model" / ("config.json" if kind == "config file" else "model.safetensors")
        file.write_text("{}")
        return str(file), f"give the directory that holds it, '{(root / 'model').resolve()}'"
    if kind == "fifo":
        os.mkfifo(root / "pipe")
        return str(root / "pipe"), "special file"
    if kind == "character device":
        return "/dev/null", "special file"
    if kind == "dangling link":
        (root / "link").symlink_to(root / "gone")
        return str(root / "link"), "symbolic link"
    raise AssertionError(kind)


PATH_KINDS = ["missing relative", "missing absolute", "missing under home", "plain file", "config file",
              "weights file", "fifo", "character device", "dangling link"]


def test_the_verbs_that_take_a_model_are_found():
    assert {"info", "run", "bench", "export", "finetune", "eval"} <= {name for name, _ in model_verbs()}


@pytest.mark.parametrize("kind", PATH_KINDS)
@pytest.mark.parametrize("name", [name for name, _ in model_verbs()])
def test_a_path_that_is_no_model_directory_is_named_as_a_path(cli_runner, tmp_path, name, kind):
    command = verbs()[name]
    path, words = bad_model_path(kind, tmp_path)
    rest = filled(command)
    rest.remove("all-minilm-l6-v2")
    result = cli_runner.invoke(cli, [name, path, *rest, *(["hello"] if name == "run" else [])])
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert "unknown model id" not in lines[0] and words in lines[0], lines[0]
    if kind not in ("config file", "weights file"):
        assert "a model directory holds mmhub.yaml" in lines[0] and "`hub list`" in lines[0]


@pytest.mark.parametrize("text, meant", [
    ("someorg/Some-ViT", "my-vit"),            # a Hub repository a catalogue entry serves: its id
    ("./my-vit", "my-vit"),                    # a catalogue id written as a path
    ("runs/my-vitt", "my-vit"),                # ... and misspelt
    ("no/such/thing", None),                   # nothing close: no guess
])
def test_a_missing_path_names_the_catalogue_id_it_may_have_meant(cli_runner, tmp_path, monkeypatch, fresh_hub,
                                                                 text, meant):
    mine = tmp_path / "mine.yaml"
    mine.write_text("models:\n  my-vit:\n    task: image-classification\n    plugin: transformers\n"
                    "    source: hf-hub:someorg/some-vit\n")
    monkeypatch.setenv("HUB_CATALOG", str(mine))
    monkeypatch.chdir(tmp_path)
    result = cli_runner.invoke(cli, ["info", text])
    line = result.stderr.strip()
    assert result.exit_code == 2 and "no such path exists" in line, result.output
    if meant:
        assert f"Did you mean: {meant}?" in line
    else:
        assert "Did you mean" not in line


def test_a_path_is_named_through_the_python_api_too(tmp_path):
    import hub

    path, words = bad_model_path("plain file", tmp_path)
    with pytest.raises(hub.HubError, match=words):
        hub.get_spec(path)
    with pytest.raises(hub.HubError, match="no such path exists"):
        hub.load(str(tmp_path / "no-such-dir"))


# -- a reader that goes away ('| head') ------------------------------------------------------------------------------
PRINTS = {  # verb -> arguments that make it print its output here, offline and without loading weights
    "list": [["list"], ["list", "--json"]],
    "info": [["info", "all-minilm-l6-v2"], ["info", "all-minilm-l6-v2", "--json"]],
    "tasks": [["tasks"], ["tasks", "--json"]],
    "plugins": [["plugins"], ["plugins", "--json"]],
    "env": [["env"], ["env", "--json"]],
    "recommend": [["recommend", "--task", "text-embedding"], ["recommend", "--task", "text-embedding", "--json"]],
    "run": [["run", "letters", "a cat", "a dog"], ["run", "letters", "a cat", "--json"]],
    "bench": [["bench", "@tiny", "--batch-size", "1", "--repeats", "1", "--rounds", "1", "--no-store"]],
    "eval": [["eval", "@tiny", "--data", "@tiny-data"]],
}
SLOW = {"bench", "eval"}  # they load a model: tried with a closed stdout only
PRINTS_AFTER_WORK = {  # verb -> why only its --help row runs here (the same handler in hub.cli covers its output)
    "export": "exports and measures a model first", "finetune": "trains a model first",
    "serve": "serves until stopped; its lines go to stderr", "install": "runs pip", "uninstall": "runs pip",
    "pin": "asks the Hub over the network",
}
SILENT = ("Traceback", "BrokenPipe", "Broken pipe", "Exception ignored", "Error")


@pytest.fixture(scope="module")
def pipe_env(tmp_path_factory) -> dict:
    """The environment of the subprocesses: offline, on the CPU, stdout buffered, the fast 'letters' model installed."""
    from test_cli import install_letters

    root = install_letters(tmp_path_factory.mktemp("letters"))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # stdout buffered, as users have it
    return {**env, "PYTHONPATH": str(root), "HF_HUB_OFFLINE": "1", "HUB_DEVICE": "cpu", "HUB_DTYPE": "fp32"}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict[str, str]:
    """A tiny text classifier (labels no/yes) and evaluation data for it, for the rows that load a model."""
    from plugins.tiny_models import save_transformers

    root = tmp_path_factory.mktemp("tiny")
    model = save_transformers(root / "classifier")
    data = root / "eval.jsonl"
    data.write_text("".join(f'{{"text": "row {i}", "label": "{("no", "yes")[i % 2]}"}}\n' for i in range(6)))
    return {"@tiny": str(model), "@tiny-data": str(data)}


def with_models(args: list[str], request) -> list[str]:
    """``args`` with the tiny model's placeholders filled (built only for the rows that name them)."""
    if not any(a.startswith("@tiny") for a in args):
        return args
    tiny = request.getfixturevalue("tiny")
    return [tiny.get(a, a) for a in args]


def pipe_rows():
    yield pytest.param(["--help"], id="hub --help")
    yield pytest.param(["--version"], id="hub --version")
    for name in verbs():
        yield pytest.param([name, "--help"], id=f"{name} --help")
        yield from (pytest.param(args, id=" ".join(args)) for args in PRINTS.get(name, []))


def assert_quiet(done, stderr: str) -> None:
    assert done.returncode == 0, stderr
    assert not [line for line in stderr.splitlines() if any(word in line for word in SILENT)], stderr


@pytest.mark.slow
@pytest.mark.parametrize("args", list(pipe_rows()))
def test_a_stdout_closed_before_the_first_line_ends_every_verb_quietly(pipe_env, args, request):
    """The reader is gone before anything is written: every write fails with EPIPE (as for '| true')."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run([hub_exe(), *with_models(args, request)], stdout=write_end, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                              env=pipe_env, timeout=120)
    finally:
        os.close(write_end)
    assert_quiet(done, done.stderr.decode("utf-8", "replace"))


@pytest.mark.slow
@pytest.mark.parametrize("args", [pytest.param(a, id=" ".join(a)) for verb, rows in PRINTS.items() for a in rows
                                  if verb not in SLOW])
def test_head_reading_the_first_line_ends_every_verb_quietly(pipe_env, args):
    """'hub ... | head -n 1' in a shell, the exit status of hub itself taken from the pipeline."""
    script = '"$@" | head -n 1 >/dev/null; exit "${PIPESTATUS[0]}"'
    done = subprocess.run(["bash", "-c", script, "bash", hub_exe(), *args], capture_output=True, text=True,
                          env=pipe_env, timeout=120)
    assert_quiet(done, done.stderr)


@pytest.mark.slow
def test_head_of_a_long_stream_stops_hub_run_quietly(pipe_env, tmp_path):
    """Far more output than a pipe holds, so the writes after 'head' leaves fail for certain."""
    (tmp_path / "lines.txt").write_text("".join(f"line number {i}\n" for i in range(20_000)))
    script = 'cat lines.txt | "$@" | head -n 2; exit "${PIPESTATUS[1]}"'
    done = subprocess.run(["bash", "-c", script, "bash", hub_exe(), "run", "letters", "-", "--json"],
                          capture_output=True, text=True, env=pipe_env, cwd=tmp_path, timeout=300)
    assert_quiet(done, done.stderr)
    assert len(done.stdout.splitlines()) == 2


def test_every_verb_is_covered_for_a_reader_that_goes_away():
    """A new verb must say how its output is tried: a row in PRINTS, or why only its --help is."""
    assert set(verbs()) <= set(PRINTS) | set(PRINTS_AFTER_WORK)
    assert not set(PRINTS) & set(PRINTS_AFTER_WORK)


def test_a_verb_that_loses_its_reader_mid_way_exits_0_in_process(cli_runner):
    """The handler is the entry point's, so a verb added later (a plugin's) is covered without code of its own."""
    def writes_then_loses_the_reader():
        click.echo("first line")
        raise BrokenPipeError(32, "Broken pipe")

    cli.add_command(click.Command("late-verb", callback=writes_then_loses_the_reader))
    try:
        result = cli_runner.invoke(cli, ["late-verb"])
    finally:
        cli.commands.pop("late-verb")
    assert result.exit_code == 0 and result.stderr == "" and result.stdout == "first line\n", result.output


SCRIPT_WITH_A_LATE_VERB = """
import sys

import click
from hub.cli import cli
from hub.errors import HubError

@cli.command("late-verb")
@click.option("--fail", is_flag=True)
def late_verb(fail):
    sys.stdout.write("buffered, not yet written\\n")  # no flush: it meets the closed pipe only at the end
    if fail:
        raise HubError("the verb's own mistake")

cli(prog_name="hub")
"""


@pytest.mark.slow
@pytest.mark.parametrize("fail, code", [(False, 0), (True, 2)])
def test_output_still_buffered_at_the_end_meets_the_closed_pipe_quietly(pipe_env, fail, code):
    """The last flush happens in the entry point: its EPIPE keeps the verb's own exit code and says nothing."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run([sys.executable, "-c", SCRIPT_WITH_A_LATE_VERB, "late-verb", *(["--fail"] * fail)],
                              stdout=write_end, stderr=subprocess.PIPE, env=pipe_env, timeout=60, text=True)
    finally:
        os.close(write_end)
    assert done.returncode == code, done.stderr
    assert done.stderr.splitlines() == (["Error: the verb's own mistake"] if fail else []), done.stderr
