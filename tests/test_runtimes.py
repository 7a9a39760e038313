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


DECLARED_IN = {"hub/tasks/builtin.py"}  # where the core declares its runtimes: the only module that may spell them


def test_no_module_but_hub_runtimes_lists_the_backends():
    found = [hit for path in sorted(HUB.rglob("*.py")) if path.relative_to(HUB.parent).as_posix() not in DECLARED_IN
             for hit in backend_lists(path)]
    assert not found, "read hub.runtimes instead of listing backends again:\n" + "\n".join(found)
    assert backend_lists(HUB / "tasks" / "builtin.py")  # the check sees the one list it is meant to see
