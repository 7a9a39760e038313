"""Every hook works as documented, has a test here, and has an entry in the hook reference (meta-test)."""
import inspect
import re
from pathlib import Path

import click
import pytest

import hub
from hub import hookspecs
from hub.errors import NoLoaderError
from hub.plugins import get_plugin_manager
from hub.registry import ModelSpec
from hub.tasks.base import Pipeline
from hub.tasks.results import Embedding

ROOT = Path(__file__).resolve().parent.parent
HOOK_REFERENCE = ROOT / "docs" / "plugins" / "hooks.md"
HOOKS = sorted(name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
               if hasattr(fn, "mmhub_spec"))


class CharCounts(Pipeline):
    """A real (if simple) pipeline: letter histograms as embeddings."""

    task = "text-embedding"

    def preprocess(self, items, **kw):
        import torch

        return torch.tensor([[text.count(c) for c in "abcde"] for text in items], dtype=torch.float32)

    def forward(self, batch, **kw):
        return batch * 2

    def postprocess(self, outputs, items, **kw):
        return [Embedding(row) for row in outputs.tolist()]


class ToyPlugin:
    @hub.hookimpl
    def register_models(self, register):
        register({"id": "toy-counts", "task": "text-embedding", "source": "builtin", "params": 0})

    @hub.hookimpl
    def load_model(self, spec, device_manager, options):
        if spec.plugin != "toy":
            return None
        return CharCounts(spec, model=None, device_manager=device_manager)

    @hub.hookimpl
    def spec_for_path(self, path, task):
        if (Path(path) / "toy.json").exists():
            return ModelSpec(id="toy-dir", task=task or "text-embedding", plugin="toy", source=str(path))
        return None

    @hub.hookimpl
    def register_commands(self, cli):
        @click.command("toy-hello")
        def hello():
            """Say hello from a plugin."""
            click.echo("hello from the toy plugin")

        cli.add_command(hello)

    @hub.hookimpl
    def trainable(self, spec, task, num_labels, labels, device_manager):
        return ("adapter for", spec.id, task, num_labels) if spec.plugin == "toy" else None


@pytest.fixture
def toy(fresh_hub):
    get_plugin_manager().register(ToyPlugin(), name="toy")


def test_hook_register_models(toy):
    assert [s.id for s in hub.list_models("toy-*")] == ["toy-counts"]
    assert hub.get_spec("toy-counts").plugin == "toy"


def test_hook_load_model(toy):
    results = hub.run("toy-counts", ["abba", "cede", ""], dtype="fp32", batch_size=2)
    assert [r.embedding for r in results] == [[4, 4, 0, 0, 0], [0, 0, 2, 2, 4], [0, 0, 0, 0, 0]]


class DecliningPlugin:
    @hub.hookimpl
    def load_model(self, spec, device_manager, options):
        return None


def test_hook_load_model_none_is_an_error(fresh_hub):
    spec = ModelSpec(id="orphan", task="text-embedding", plugin="toy", source="x")
    from hub.api import _load_uncached
    from hub.device import DeviceManager
    from hub.errors import PluginNotInstalledError

    with pytest.raises(PluginNotInstalledError, match="orphan.*'toy', which is not installed"):
        _load_uncached(spec, DeviceManager(device="cpu"), {})
    get_plugin_manager().register(DecliningPlugin(), name="toy")
    with pytest.raises(NoLoaderError, match="orphan"):
        _load_uncached(spec, DeviceManager(device="cpu"), {})


def test_hook_spec_for_path(toy, tmp_path):
    (tmp_path / "toy.json").write_text("{}")
    assert hub.get_spec(str(tmp_path)).id == "toy-dir"
    assert hub.run(str(tmp_path), "aaa", dtype="fp32").embedding == [6, 0, 0, 0, 0]


def test_hook_register_commands(toy, cli_runner):
    from hub.cli import _add_plugin_commands, cli

    _add_plugin_commands()
    try:
        result = cli_runner.invoke(cli, ["toy-hello"])
        assert result.exit_code == 0 and "hello from the toy plugin" in result.output
    finally:
        cli.commands.pop("toy-hello", None)


def test_hook_trainable(toy):
    spec = hub.get_spec("toy-counts")
    got = get_plugin_manager().hook.trainable(spec=spec, task="text-classification", num_labels=3,
                                              labels=["a", "b", "c"], device_manager=None)
    assert got == ("adapter for", "toy-counts", "text-classification", 3)


def test_every_hookspec_is_documented_in_its_docstring():
    for name in HOOKS:
        doc = getattr(hookspecs, name).__doc__ or ""
        assert "When called" in doc and "Returns" in doc, name
        assert ("firstresult" in doc) or ("Every plugin" in doc), name


def test_every_hook_has_a_test_and_an_entry_in_the_hook_reference():
    tests = "\n".join(p.read_text() for p in (ROOT / "tests").rglob("test_*.py"))
    reference = HOOK_REFERENCE.read_text()
    for name in HOOKS:
        assert re.search(rf"def test_hook_{name}\b", tests), f"no test_hook_{name}"
        assert f"`{name}(" in reference, f"{HOOK_REFERENCE.name} has no entry for the hook {name}"
        assert re.search(rf"^## `{name}`$", reference, flags=re.M), f"{HOOK_REFERENCE.name} has no section for {name}"


def documented_hooks(text: str) -> set[str]:
    """Every hook the reference names: its signatures (``def name(``) and its sections (``## `name` ``)."""
    return set(re.findall(r"^def (\w+)\(", text, flags=re.M)) | set(re.findall(r"^## `(\w+)`$", text, flags=re.M))


def test_every_hook_the_reference_documents_exists():
    documented = documented_hooks(HOOK_REFERENCE.read_text())
    assert documented, "the hook reference names no hook"
    assert not documented - set(HOOKS), f"the hook reference documents hooks that do not exist: {documented - set(HOOKS)}"


def test_the_reference_check_catches_a_hook_that_does_not_exist():
    text = HOOK_REFERENCE.read_text() + "\n## `load_modle`\n\ndef registr_models(register) -> None\n"
    assert documented_hooks(text) - set(HOOKS) == {"load_modle", "registr_models"}


def typed_signature(name: str) -> str:
    """``def name(arg: Type, ...) -> Return`` exactly as the hookspec declares it."""
    sig = inspect.signature(getattr(hookspecs, name))
    params = ", ".join(f"{p.name}: {p.annotation}" for p in sig.parameters.values())
    return f"def {name}({params}) -> {sig.return_annotation}"


def test_every_hook_exact_signature_appears_in_the_hook_reference():
    reference = HOOK_REFERENCE.read_text()
    for name in HOOKS:
        signature = typed_signature(name)
        assert signature in reference, f"{HOOK_REFERENCE.name} lacks the exact signature of the hook {name}: {signature}"


def test_every_hookspec_is_typed_with_classes_that_exist():
    import typing

    import click

    from hub.device import DeviceManager
    from hub.options import Option
    from hub.tasks import TaskInfo
    from hub.train.adapter import TrainAdapter

    names = {**vars(hookspecs), "click": click, "ModelSpec": ModelSpec, "DeviceManager": DeviceManager,
             "Pipeline": Pipeline, "Option": Option, "TaskInfo": TaskInfo, "TrainAdapter": TrainAdapter}
    for name in HOOKS:
        fn = getattr(hookspecs, name)
        hints = typing.get_type_hints(fn, globalns=names)
        assert set(hints) == {*inspect.signature(fn).parameters, "return"}, f"{name} has untyped arguments"
    assert typing.get_type_hints(hookspecs.load_model, globalns=names)["spec"] is ModelSpec


@pytest.mark.slow
def test_importing_the_hookspecs_imports_no_torch():
    import subprocess
    import sys

    code = "import sys, hub.hookspecs, hub.testing; print(sorted(m for m in ('torch', 'fastapi') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_two_directories_with_the_same_name_are_cached_apart(toy, tmp_path):
    first, second = tmp_path / "a" / "model", tmp_path / "b" / "model"
    for path in (first, second):
        path.mkdir(parents=True)
        (path / "toy.json").write_text("{}")
    assert hub.load(str(first), dtype="fp32").spec.source != hub.load(str(second), dtype="fp32").spec.source
