"""The backends are listed once (hub.runtimes): the CLI's choices, the device manager, exports and bench read it."""
from __future__ import annotations

import ast
from pathlib import Path

import click
import pytest

import hub
from hub import runtimes
from hub.runtimes import AUTO, BACKENDS, EXPORT_FORMATS, RUNTIME_NAMES, RUNTIMES, TORCH, runtimes_reading

HUB = Path(hub.__file__).resolve().parent
NAMES = set(BACKENDS)


def test_the_backends_are_torch_the_runtimes_and_auto():
    assert BACKENDS == (TORCH, *RUNTIME_NAMES, AUTO) and RUNTIME_NAMES == tuple(RUNTIMES)
    assert len(set(BACKENDS)) == len(BACKENDS)
    for name, info in RUNTIMES.items():
        assert info.name == name and info.reads[0] == name and info.suffix.startswith(".")
        assert set(info.reads) <= set(RUNTIME_NAMES)


def test_a_format_runs_on_its_own_runtime_first_and_on_those_that_read_it():
    assert runtimes_reading("onnx") == ("onnx", "openvino") and runtimes_reading("openvino") == ("openvino",)
    assert runtimes_reading("no-such-format") == ()


def test_the_services_read_the_one_list():
    from hub import device
    from hub.export import manifest, runtime

    assert device.BACKENDS is BACKENDS and manifest.FORMATS is EXPORT_FORMATS and runtime.RUNTIMES is RUNTIMES
    assert manifest.SUFFIX == {name: info.suffix for name, info in RUNTIMES.items() if info.plugin == "core"}
    assert EXPORT_FORMATS == RUNTIME_NAMES  # without plugins: the core's runtimes, each writing its own format


def every_command() -> dict[str, click.Command]:
    """Each command the hub group lists, lazy ones loaded, through click's own interface."""
    from hub.cli import cli

    ctx = click.Context(cli)
    return {name: cli.get_command(ctx, name) for name in cli.list_commands(ctx)}


def choice_options() -> list[tuple[str, str, tuple]]:
    found = []
    for name, command in every_command().items():
        for param in command.params:
            if isinstance(param, click.Option) and isinstance(param.type, click.Choice):
                found.append((name, param.opts[0], tuple(param.type.choices)))
    return found


def test_every_backend_and_format_choice_of_the_cli_is_the_one_list():
    options = {(name, opt): choices for name, opt, choices in choice_options() if opt in ("--backend", "--format")}
    assert {("run", "--backend"), ("serve", "--backend"), ("export", "--format")} <= set(options)
    for (name, opt), choices in options.items():
        assert choices == (BACKENDS if opt == "--backend" else EXPORT_FORMATS), f"hub {name} {opt}"
    for name, opt, choices in choice_options():  # no other choice list names backends ('auto' is also a dtype)
        assert opt in ("--backend", "--format") or len(NAMES & set(choices)) < 2, f"hub {name} {opt}: {choices}"


@pytest.mark.parametrize("args", [["run", "m", "x", "--backend", "tensorrt"], ["serve", "--backend", "cuda"],
                                  ["export", "m", "--out", "d", "--format", "torch"],
                                  ["export", "m", "--out", "d", "--format", "auto"]])
def test_a_backend_not_in_the_list_is_refused_naming_the_list(args, cli_runner):
    from hub.cli import cli

    result = cli_runner.invoke(cli, args)
    listed = BACKENDS if "--backend" in args else EXPORT_FORMATS
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert all(f"'{name}'" in result.output for name in listed), result.output


def test_bench_names_the_backends_it_measures():
    from hub.errors import HubError
    from hub.measure.runner import check_backend

    for name in BACKENDS:
        if name != AUTO:
            assert check_backend(name.upper()) == name
    for bad in (AUTO, "tensorrt", "cuda", "onnxruntime"):
        with pytest.raises(HubError) as caught:
            check_backend(bad)
        assert all(name in str(caught.value) for name in BACKENDS if name != AUTO)


def backend_lists(path: Path) -> list[str]:
    """Literal tuples, lists, sets and dicts in ``path`` that hold two or more backend names."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        items = node.keys if isinstance(node, ast.Dict) else getattr(node, "elts", None)
        if not isinstance(node, (ast.Tuple, ast.List, ast.Set, ast.Dict)) or items is None:
            continue
        named = {item.value for item in items if isinstance(item, ast.Constant) and item.value in NAMES}
        if len(named) >= 2:
            found.append(f"{path.relative_to(HUB.parent)}:{node.lineno}: {ast.unparse(node)[:80]}")
    return found


DECLARED_IN = {"hub/runtimes.py", "hub/tasks/builtin.py"}  # torch and auto; the core's runtimes: nowhere else


def test_no_module_but_hub_runtimes_lists_the_backends():
    found = [hit for path in sorted(HUB.rglob("*.py")) if path.relative_to(HUB.parent).as_posix() not in DECLARED_IN
             for hit in backend_lists(path)]
    assert not found, "read hub.runtimes instead of listing backends again:\n" + "\n".join(found)
    assert backend_lists(HUB / "tasks" / "builtin.py")  # the check sees the one list it is meant to see


# -- a plugin adds a runtime ------------------------------------------------------------------------------------------
PLUGINS = Path(__file__).resolve().parent / "backend_plugins"


class Declares:
    """A plugin object declaring the given backends."""

    def __init__(self, *backends):
        self.backends = backends

    @hub.hookimpl
    def register_backends(self, register):
        for backend in self.backends:
            register(backend)


ECHO = {"name": "echo", "library": "onnxruntime", "suffix": ".onnx", "reads": ["onnx"],
        "opener": "no_such_module_is_imported_by_listing:open_graph"}


def register(plugin, name: str):
    from hub.plugins import get_plugin_manager

    get_plugin_manager().register(plugin, name=name)


@pytest.fixture
def echo(monkeypatch, fresh_hub):
    """The echo runtime plugin of tests/backend_plugins, registered in this process."""
    import importlib

    monkeypatch.syspath_prepend(str(PLUGINS))
    module = importlib.import_module("mmhub_echo_runtime")
    module.OPENED.clear()
    register(module, "echo")
    return module


def test_hook_register_backends(fresh_hub):
    """A plugin's runtime joins the one list after the core's, and listing it imports nothing of it."""
    import sys

    register(Declares(ECHO), "echoes")
    assert BACKENDS == (TORCH, "onnx", "openvino", "echo", AUTO) and RUNTIME_NAMES[-1] == "echo"
    assert RUNTIMES["echo"].plugin == "echoes" and RUNTIMES["onnx"].plugin == "core"
    assert runtimes_reading("onnx") == ("onnx", "echo", "openvino")  # those whose own format it is first
    assert EXPORT_FORMATS == ("onnx", "openvino")  # hub export still writes only what the core writes
    assert "no_such_module_is_imported_by_listing" not in sys.modules


@pytest.mark.parametrize("bad, words", [
    ({**ECHO, "name": "torch"}, "is the hub's own backend name"),
    ({**ECHO, "name": "auto"}, "is the hub's own backend name"),
    ({**ECHO, "name": "Echo Runtime"}, "not a name"),
    ({**ECHO, "name": ""}, "required field(s) missing or empty: name"),
    ({k: v for k, v in ECHO.items() if k != "opener"}, "required field(s) missing or empty: opener"),
    ({**ECHO, "colour": "red"}, "unknown field(s) colour"),
    ({**ECHO, "reads": "onnx"}, "'reads' must be a list of export format names"),
    ({**ECHO, "reads": ["ONNX!"]}, "not a name"),
    ({**ECHO, "suffix": "onnx"}, "'suffix' must be a file suffix"),
    ({**ECHO, "opener": "open_graph"}, "'opener' must name a function as \"module:function\""),
    ({**ECHO, "library": 3}, "'library' must be a distribution name"),
    (["echo"], "register() takes a dict or a hub.runtimes.RuntimeInfo, got list"),
])
def test_a_bad_backend_declaration_leaves_the_plugin_s_backends_out_and_says_why(fresh_hub, bad, words):
    from hub.plugins import get_plugin_manager

    good = {**ECHO, "name": "echo-two"}
    register(Declares(good, bad), "badly")
    assert BACKENDS == (TORCH, "onnx", "openvino", AUTO)  # all or nothing: echo-two is left out as well
    (problem, _), = get_plugin_manager().problems["badly"]
    assert "register_backends failed, its backends are left out" in problem and words in problem, problem


def test_a_backend_name_taken_first_stays_with_the_first_plugin(fresh_hub):
    from hub.errors import PluginClashWarning
    from hub.plugins import get_plugin_manager

    register(Declares({**ECHO, "name": "onnx"}, ECHO), "late")
    with pytest.warns(PluginClashWarning, match="declares the backend 'onnx', already declared by plugin 'core'"):
        assert RUNTIMES["onnx"].plugin == "core" and RUNTIMES["echo"].plugin == "late"
    assert "already declared" in get_plugin_manager().problems["late"][0][0]


@pytest.mark.parametrize("args", [["run", "m", "x", "--backend", "echo"], ["serve", "--backend", "echo"]])
def test_a_plugin_backend_is_refused_while_its_plugin_is_not_there(args, cli_runner, fresh_hub):
    from hub.cli import cli

    result = cli_runner.invoke(cli, args)
    assert result.exit_code == 2 and "'echo' is not one of" in result.output and "'openvino'" in result.output
    assert "Traceback" not in result.output


@pytest.fixture
def classifier(tmp_path_factory):
    from export_models import save_classifier

    return save_classifier(tmp_path_factory.mktemp("models") / "classifier")


def test_hub_run_backend_echo_runs_the_model_on_the_plugin_s_runtime(echo, classifier, cli_runner, tmp_path,
                                                                     monkeypatch, one_thread):
    """--backend echo exports the model once (ONNX, the format echo reads) into the hub cache, opens its graph
    through the plugin's opener and answers as torch does."""
    import json

    from hub.cli import cli

    monkeypatch.setenv("HUB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HUB_ONNX_EXPORTER", "torchscript")
    monkeypatch.setenv("HUB_RUNTIME_THREADS", "1")
    monkeypatch.delenv("HUB_BACKEND", raising=False)
    texts = ["good film", "bad plot, fine actors", "ok"]
    outputs = {}
    for backend in ("echo", "torch"):
        result = cli_runner.invoke(cli, ["run", str(classifier), *texts, "--json", "--backend", backend])
        assert result.exit_code == 0, result.output
        outputs[backend] = json.loads(result.stdout)
    assert len(echo.OPENED) == 1 and echo.OPENED[0][0].endswith(".onnx") and echo.OPENED[0][1:] == (1, "fp32")
    for got, want in zip(outputs["echo"], outputs["torch"]):
        assert [x["index"] for x in got["labels"]] == [x["index"] for x in want["labels"]]
        assert max(abs(a["score"] - b["score"]) for a, b in zip(got["labels"], want["labels"])) < 1e-5
    (card,) = (tmp_path / "cache" / "exports").glob("*/text-classification-echo-fp32-*/mmhub.yaml")
    assert "format: onnx" in card.read_text()
