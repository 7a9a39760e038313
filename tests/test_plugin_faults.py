"""One faulty plugin never breaks another plugin, or the hub.

Each plugin in tests/fault_plugins/ fails in one way. It is installed as a real distribution (a
module plus a dist-info with an ``mmhub`` entry point) on the path, and the hub must still show
its help, list its plugins and models, and run the shipped MiniLM, through the CLI and Python.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import hub
from hub.errors import HubError, PluginError
from hub.testing.isolation import write_dist_info

FAULTS = Path(__file__).resolve().parent / "fault_plugins"
ALL_FAULTS = sorted(p.stem for p in FAULTS.glob("*.py"))
MINILM = "all-minilm-l6-v2"


def install_fault(root: Path, name: str) -> None:
    """Install fault plugin ``name`` under ``root`` as distribution mmhub-fault-NAME, entry point NAME."""
    module = f"mmhub_fault_{name}"
    shutil.copy(FAULTS / f"{name}.py", root / f"{module}.py")
    write_dist_info(root, f"mmhub-fault-{name}", "0.1", name, module)


@pytest.fixture
def with_faults(tmp_path, monkeypatch, fresh_hub):
    """Install the given fault plugins on sys.path, for this process; returns the plugin rows by name."""
    from hub.cli import cli

    commands = dict(cli.commands)
    monkeypatch.delenv("HUB_PLUGINS", raising=False)

    def install(*names):
        for name in names:
            install_fault(tmp_path, name)
        monkeypatch.syspath_prepend(str(tmp_path))
        from hub.plugins import reset_plugin_manager

        reset_plugin_manager()

    yield install
    cli.commands.clear()
    cli.commands.update(commands)
    for name in ALL_FAULTS:
        sys.modules.pop(f"mmhub_fault_{name}", None)


def invoke(cli_runner, args):
    """Run ``hub ARGS`` the way main() does: plugin commands first, then the click group."""
    from hub.cli import _add_plugin_commands, cli

    _add_plugin_commands()
    return cli_runner.invoke(cli, args)


def plugin_rows(cli_runner) -> dict:
    result = invoke(cli_runner, ["plugins", "--json"])
    assert result.exit_code == 0, result.output
    return {row["name"]: row for row in json.loads(result.stdout)}


def assert_hub_still_works(cli_runner) -> None:
    """Help, plugins, list and a run of the shipped MiniLM all work."""
    helped = invoke(cli_runner, ["--help"])
    assert helped.exit_code == 0 and "Commands:" in helped.output, helped.output
    rows = plugin_rows(cli_runner)
    assert {rows[n]["status"] for n in ("transformers", "timm", "openclip")} == {"ok"}
    listed = invoke(cli_runner, ["list", "--json"])
    assert listed.exit_code == 0, listed.output
    served = {row["id"]: row["plugin"] for row in json.loads(listed.stdout)}
    assert served[MINILM] == "transformers" and served["resnet50.a1_in1k"] == "timm"
    ran = invoke(cli_runner, ["run", MINILM, "a cat", "--json", "--dtype", "fp32"])
    assert ran.exit_code == 0, ran.output
    assert len(json.loads(ran.stdout)[0]["embedding"]) == 384


# -- each failure mode, in this process ---------------------------------------------------------
REFUSED = {  # plugin -> words its error must contain; the plugin is not loaded at all
    "bad_import": ["import failed", "ModuleNotFoundError", "mmhub_fault_library_that_is_not_installed"],
    "bad_hook_arg": ["invalid hook implementation", "registr"],
    "bad_hook_name": ["unknown hook 'register_model'", "did you mean 'register_models'"],
}
PARTIAL = {  # plugin -> (words of its error, model ids it must not contribute)
    "raising_register": (["register_models failed", "registration exploded halfway"], ["raising-register-model"]),
    "raising_commands": (["register_commands failed", "commands exploded halfway"], []),
    "replacing_commands": (["replace the command(s) list"], []),
    "id_collision": (["registers the model id 'all-minilm-l6-v2', which plugin 'transformers'",
                      "the model is left out, the other models of both plugins stay"], []),
    "alias_collision": (["registers the alias 'minilm' of model 'alias-collision-own', which plugin 'transformers'",
                         "the alias is left out"], []),
    "invalid_registration": (["unknown task 'text-telepathy'", "invalid-registration-spec"],
                             ["invalid-registration-ok", "invalid-registration-task", "invalid-registration-spec"]),
}


@pytest.mark.parametrize("fault", sorted(REFUSED))
def test_a_plugin_that_cannot_load_is_reported_and_left_out(fault, with_faults, cli_runner):
    with_faults(fault)
    row = plugin_rows(cli_runner)[fault]
    assert row["status"] == "failed" and row["distribution"] == f"mmhub-fault-{fault}"
    for words in REFUSED[fault]:
        assert words in row["error"]
    assert fault not in hub.get_plugin_manager().names()
    assert_hub_still_works(cli_runner)


@pytest.mark.parametrize("fault", sorted(PARTIAL))
def test_a_failing_contribution_is_dropped_whole_and_reported(fault, with_faults, cli_runner):
    with_faults(fault)
    words, dropped = PARTIAL[fault]
    row = plugin_rows(cli_runner)[fault]
    assert row["status"] == "partial", row
    for word in words:
        assert word in row["error"]
    ids = {s.id for s in hub.list_models(installed_only=False)}
    assert not ids & set(dropped)
    assert_hub_still_works(cli_runner)


@pytest.mark.parametrize("fault, kept, alias", [("id_collision", "id-collision-own", None),
                                                ("alias_collision", "alias-collision-own", "minilm")])
def test_a_clashing_model_name_drops_only_the_clash(fault, kept, alias, with_faults, cli_runner):
    with_faults(fault)
    listed = invoke(cli_runner, ["list", "--json"])
    served = {row["id"]: row["plugin"] for row in json.loads(listed.stdout)}
    assert served[kept] == fault and served[MINILM] == "transformers"
    assert f"plugin '{fault}'" in listed.stderr and "'transformers'" in listed.stderr
    assert hub.get_spec(alias or MINILM).id == MINILM and hub.get_spec(kept).plugin == fault


def test_plugins_verbose_shows_the_traceback(with_faults, cli_runner):
    with_faults("raising_register", "bad_import")
    text = invoke(cli_runner, ["plugins", "--verbose"]).output
    assert "Traceback" in text and "registration exploded halfway" in text and "mmhub_fault_bad_import" in text
    plain = invoke(cli_runner, ["plugins"])
    assert plain.exit_code == 0 and "Traceback" not in plain.output
    rows = json.loads(invoke(cli_runner, ["plugins", "--json", "--verbose"]).stdout)
    assert any("Traceback" in (r["traceback"] or "") for r in rows)


def test_raising_commands_add_no_command_and_replacing_commands_keep_the_builtin(with_faults, cli_runner):
    with_faults("raising_commands", "replacing_commands")
    assert "fault-hello" not in invoke(cli_runner, ["--help"]).output
    listed = invoke(cli_runner, ["list", MINILM])
    assert listed.exit_code == 0 and MINILM in listed.output and "hijacked" not in listed.output


# -- routing -------------------------------------------------------------------------------------
def test_greedy_load_model_cannot_take_over_other_plugins_models(with_faults, cli_runner):
    with_faults("greedy_load")
    assert hub.load(MINILM, dtype="fp32").spec.plugin == "transformers"
    assert hub.run(MINILM, "a cat", dtype="fp32").embedding != [42.0]
    assert hub.run("greedy-model", "a cat", dtype="fp32").embedding == [42.0]
    assert_hub_still_works(cli_runner)


def test_greedy_trainable_cannot_take_over_other_plugins_models(with_faults):
    from hub.train.api import get_adapter

    with_faults("greedy_load")
    greedy = get_adapter(hub.get_spec("greedy-model"), "text-classification", ["a", "b"], None)
    assert greedy.spec_fields == {"greedy": True}
    adapter = get_adapter(hub.get_spec(MINILM), "text-classification", ["a", "b"], None)
    assert adapter.spec_fields.get("greedy") is None and adapter.spec_fields["plugin"] == "transformers"


class RaisingPath:
    @hub.hookimpl
    def spec_for_path(self, path, task):
        raise OSError(f"cannot read {path}")


class RecognisesPath:
    @hub.hookimpl
    def spec_for_path(self, path, task):
        from hub.registry import ModelSpec

        return ModelSpec(id="recognised", task="text-embedding", plugin="zzz-recognises", source=str(path))


def test_a_plugin_raising_in_spec_for_path_does_not_stop_the_others(fresh_hub, tmp_path):
    pm = hub.get_plugin_manager()
    pm.add_plugin(RecognisesPath(), "zzz-recognises")
    pm.add_plugin(RaisingPath(), "aaa-raising")  # registered last, asked before: plugins are asked in name order
    with pytest.warns(UserWarning, match="plugin 'aaa-raising' failed while reading the model directory .*"
                                         "OSError: cannot read.*plugin 'zzz-recognises' recognised the directory"):
        spec = hub.get_spec(str(tmp_path))
    assert spec.plugin == "zzz-recognises" and spec.task == "text-embedding"


def test_spec_for_path_failures_and_answers_for_another_plugin_are_named(with_faults, tmp_path):
    with_faults("raising_path", "greedy_load")
    empty = tmp_path / "empty-model"
    empty.mkdir()
    with pytest.raises(HubError, match="no installed plugin recognises") as caught:
        hub.get_spec(str(empty))
    assert "plugin 'raising_path' failed while reading the model directory" in str(caught.value)
    assert "OSError: cannot read" in str(caught.value)
    assert "plugin 'greedy_load' returned an invalid spec" in str(caught.value)
    assert "names the plugin 'transformers' instead of itself" in str(caught.value)


@pytest.mark.parametrize("fault, model, words", [
    ("wrong_task", "wrong-task-model", "plugin 'wrong_task' returned a pipeline for task 'image-classification' when loading model "
                                       "'wrong-task-model' for task 'text-embedding'"),
    ("raising_load", "raising-load-model", "plugin 'raising_load' failed while loading model 'raising-load-model': "
                                           "RuntimeError: weights exploded while loading"),
])
def test_a_plugin_failing_to_load_its_model_is_one_line_exit_2(fault, model, words, with_faults, cli_runner):
    with_faults(fault)
    with pytest.raises(PluginError, match="^" + re.escape(words)) as caught:
        hub.load(model, dtype="fp32")
    assert caught.value.plugin == fault
    result = invoke(cli_runner, ["run", model, "hello"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.output.strip().splitlines() == [f"Error: {caught.value}"]
    assert_hub_still_works(cli_runner)


def test_a_raising_trainable_names_the_plugin_and_the_model(with_faults):
    from hub.train.api import get_adapter

    with_faults("raising_load")
    with pytest.raises(PluginError, match="plugin 'raising_load' failed while preparing model 'raising-load-model' "
                                          "for training: RuntimeError: adapter exploded"):
        get_adapter(hub.get_spec("raising-load-model"), "text-classification", ["a", "b"], None)


# -- the whole hub, in a fresh process, with every faulty plugin at once ----------------------
def run_hub(args, pythonpath, **env):
    full_env = {**os.environ, "PYTHONPATH": str(pythonpath), "HF_HUB_OFFLINE": "1", **env}
    full_env.pop("HUB_PLUGINS", None)
    code = "import sys; from hub.cli import main; sys.argv = ['hub', *sys.argv[1:]]; main()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=full_env,
                          timeout=300)


@pytest.fixture(scope="module")
def all_faults(tmp_path_factory):
    root = tmp_path_factory.mktemp("faults")
    for name in ALL_FAULTS:
        install_fault(root, name)
    return root


@pytest.mark.slow
def test_every_fault_at_once_in_a_fresh_process(all_faults):
    helped = run_hub(["--help"], all_faults)
    assert helped.returncode == 0 and "plugins" in helped.stdout and "fault-hello" not in helped.stdout
    plugins = run_hub(["plugins", "--json"], all_faults)
    assert plugins.returncode == 0, plugins.stderr
    rows = {r["name"]: r for r in json.loads(plugins.stdout)}
    assert set(ALL_FAULTS) <= set(rows)
    assert {n: rows[n]["status"] for n in REFUSED} == {n: "failed" for n in REFUSED}
    assert {n: rows[n]["status"] for n in PARTIAL} == {n: "partial" for n in PARTIAL}
    listed = run_hub(["list", "--json"], all_faults)
    served = {r["id"]: r["plugin"] for r in json.loads(listed.stdout)}
    assert served[MINILM] == "transformers" and "greedy-model" in served and "heavy-import-model" in served
    ran = run_hub(["run", MINILM, "a cat", "--json", "--dtype", "fp32"], all_faults)
    assert ran.returncode == 0, ran.stderr
    assert len(json.loads(ran.stdout)[0]["embedding"]) == 384
    refused = run_hub(["uninstall", "torch"], all_faults)
    assert refused.returncode == 2 and "not an mmhub plugin" in refused.stderr and "Traceback" not in refused.stderr


@pytest.mark.slow
def test_hub_plugins_names_slow_and_torch_importing_plugins(all_faults):
    done = run_hub(["plugins"], all_faults)
    assert done.returncode == 0, done.stderr
    warnings = [line for line in done.stderr.splitlines() if "plugin 'heavy_import'" in line]
    assert any("imports torch" in line for line in warnings), done.stderr
    assert any("ms to import (over 100 ms)" in line for line in warnings), done.stderr
    row = next(line for line in done.stdout.splitlines() if line.startswith("heavy_import "))
    assert " ms " in row and int(row.split(" ms ")[0].split()[-1]) >= 150


@pytest.mark.slow
@pytest.mark.parametrize("env, code", [({}, 2), ({"HUB_DEBUG": "1"}, 2)])
def test_debug_shows_the_plugins_traceback(all_faults, env, code):
    plain = run_hub(["run", "raising-load-model", "x"], all_faults, **env)
    assert plain.returncode == code
    assert ("Traceback" in plain.stderr) == bool(env)
    assert plain.stderr.strip().splitlines()[-1].startswith("Error: plugin 'raising_load' failed while loading")
    flagged = run_hub(["--debug", "run", "raising-load-model", "x"], all_faults)
    assert "Traceback" in flagged.stderr and "weights exploded while loading" in flagged.stderr


class RaisingCommand:
    @hub.hookimpl
    def register_commands(self, cli):
        import click

        @click.command("explode")
        def explode():
            raise ZeroDivisionError("division by zero\nsecond line")

        cli.add_command(explode)


@pytest.mark.parametrize("args, env, traceback", [
    (["explode"], {}, False), (["--debug", "explode"], {}, True), (["explode"], {"HUB_DEBUG": "1"}, True),
    (["explode"], {"HUB_DEBUG": "0"}, False)])
def test_an_unexpected_error_is_one_line_exit_1_and_debug_adds_the_traceback(with_faults, cli_runner, monkeypatch,
                                                                             args, env, traceback):
    with_faults()
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    hub.get_plugin_manager().add_plugin(RaisingCommand(), "exploding_command")
    result = invoke(cli_runner, args)
    assert result.exit_code == 1
    assert ("Traceback" in result.output) == traceback
    last = result.output.strip().splitlines()[-1]
    assert last.startswith("Error: unexpected ZeroDivisionError: division by zero second line")
    assert ("run with --debug" in last) != traceback
    if not traceback:
        assert len(result.output.strip().splitlines()) == 1
