"""The layer contract (hub.layers): no module of hub/ imports from a higher layer, no import cycle anywhere in
hub/ or the shipped plugins, every module has a layer; and the checker fails on each kind of breach, shown on a
copy of the real tree with one import added."""
import shutil
import textwrap
from pathlib import Path

import pytest

from hub import layers

ROOT = Path(__file__).resolve().parent.parent


def test_the_layers_hold_in_the_real_tree():
    found = layers.problems(ROOT)
    assert found == [], "\n".join(found)


def test_every_layer_is_used_and_every_entry_is_a_module():
    mods = layers.modules(ROOT, "hub")
    assert {layers.layer(m, layers.LAYER_OF) for m in mods} == set(layers.NAMES)
    assert set(layers.LAYER_OF) <= set(mods)


@pytest.fixture
def tree(tmp_path):
    """A copy of hub/ and the shipped plugins' packages, to break on purpose."""
    shutil.copytree(ROOT / "hub", tmp_path / "hub", ignore=shutil.ignore_patterns("__pycache__"))
    for package in ROOT.glob("plugins/*/mmhub_*"):
        shutil.copytree(package, tmp_path / package.relative_to(ROOT), ignore=shutil.ignore_patterns("__pycache__"))
    assert layers.problems(tmp_path) == []
    return tmp_path


def add(root: Path, relative: str, code: str) -> None:
    path = root / relative
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    path.write_text(old + "\n\n" + textwrap.dedent(code), encoding="utf-8")


UPWARD = [  # (file, code added): every way of spelling an import, at the top or deep inside a function
    ("hub/errors.py", "import hub.cli\n"),
    ("hub/errors.py", "def later():\n    from hub.cli import cli\n"),
    ("hub/io.py", "def later():\n    from hub import api\n"),
    ("hub/tasks/info.py", "def later():\n    from ..registry import Catalog\n"),
    ("hub/tasks/info.py", "def later():\n    from . import table\n"),
    ("hub/tasks/base.py", "class Later:\n    def method(self):\n        try:\n            import hub.serve.app\n"
                          "        except ImportError:\n            pass\n"),
    ("hub/hookspecs.py", "def later():\n    if True:\n        from hub.plugins import call_plugin\n"),
    ("hub/plugins.py", "def later():\n    import hub.device as d\n"),
    ("hub/registry.py", "def later():\n    from hub.export.backends import load\n"),
    ("hub/api.py", "def later():\n    from hub.recommend import recommend\n"),
    ("hub/train/loop.py", "def later():\n    from hub.serve import models\n"),
]


@pytest.mark.parametrize("where,code", UPWARD)
def test_a_deliberately_added_upward_import_fails(tree, where, code):
    add(tree, where, code)
    found = layers.problems(tree)
    assert any("an upward import" in line and line.startswith(where) for line in found), found
    assert layers.main([str(tree)]) == 1


@pytest.mark.parametrize("where", ["hub/cli.py", "hub/testing/contract.py", "hub/api.py", "hub/tasks/table.py"])
def test_no_core_module_imports_the_plugin_authors_kit(tree, where):
    add(tree, where, "def later():\n    from hub.plugin_kit import resolve_ref\n")
    found = layers.problems(tree)
    assert any(line.startswith(where) and "the plugin author's kit" in line for line in found), found


def test_an_upward_import_only_named_for_type_checkers_is_allowed_unless_it_closes_a_cycle(tree):
    # hub.weights: a table that does not reach the plugin manager (hub.device does, through the backend table,
    # which is why the contract does not name DeviceManager even for type checkers)
    add(tree, "hub/tasks/base.py", "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                                   "    from hub.weights import resolve_source\n")
    assert layers.problems(tree) == []
    add(tree, "hub/weights.py", "def later():\n    from hub.tasks.base import Pipeline\n")
    add(tree, "hub/tasks/base.py", "if TYPE_CHECKING:\n    from hub.weights import resolve_source as R\n")
    found = layers.problems(tree)
    assert any(line.startswith("import cycle") and "hub.weights" in line and "hub.tasks.base" in line
               for line in found), found


def test_a_cycle_within_one_layer_fails(tree):
    add(tree, "hub/outputs.py", "def later():\n    from hub.io import atomic_write_text\n")  # io imports outputs
    found = layers.problems(tree)
    assert found == ["import cycle of 2 modules: hub.io hub.outputs"]


def test_a_cycle_inside_a_plugin_fails(tree):
    add(tree, "plugins/mmhub-transformers/mmhub_transformers/train_common.py",
        "def later():\n    from mmhub_transformers import train\n")
    found = layers.problems(tree)
    assert any(line.startswith("import cycle") and "mmhub_transformers.train_common" in line for line in found)


@pytest.mark.parametrize("name", ["hub/newthing.py", "hub/tasks/new_results.py", "hub/newpackage/__init__.py"])
def test_a_module_without_a_layer_fails_naming_it(tree, name):
    (tree / name).parent.mkdir(exist_ok=True)
    (tree / name).write_text("X = 1\n", encoding="utf-8")
    module = name.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
    assert layers.problems(tree) == [f"{module}: no layer; add it to hub.layers.LAYER_OF"]


def test_a_module_in_a_package_with_a_layer_takes_the_package_layer(tree):
    (tree / "hub/serve/newroute.py").write_text("import hub.cli\n", encoding="utf-8")
    assert layers.problems(tree) == []  # a front end may import a front end
    (tree / "hub/export/newformat.py").write_text("import hub.cli\n", encoding="utf-8")
    assert any(line.startswith("hub/export/newformat.py:1") for line in layers.problems(tree))


def test_a_layer_entry_for_a_module_that_is_gone_fails(tree):
    (tree / "hub/stdio.py").unlink()
    assert "hub.stdio: in hub.layers.LAYER_OF but no such module; remove it" in layers.problems(tree)


@pytest.mark.parametrize("where,code,why", [
    ("plugins/mmhub-timm/mmhub_timm/extra.py", "def later():\n    from hub.cli import cli\n", "a front end"),
    ("plugins/mmhub-timm/mmhub_timm/extra.py", "import hub.serve.app\n", "a front end"),
    ("plugins/mmhub-timm/mmhub_timm/extra.py", "from hub.testing import check_model_contract\n", "a front end"),
    ("plugins/mmhub-timm/mmhub_timm/extra.py", "def later():\n    import mmhub_openclip\n", "another plugin's package"),
    ("plugins/mmhub-openclip/mmhub_openclip/extra.py", "from mmhub_transformers.loading import read_json\n",
     "another plugin's package"),
    ("hub/api.py", "def later():\n    import mmhub_timm\n", "the core never imports plugins"),
])
def test_plugins_import_the_public_layers_only_and_the_core_no_plugin(tree, where, code, why):
    add(tree, where, code)
    found = layers.problems(tree)
    assert any(line.startswith(where) and why in line for line in found), found


def test_a_plugin_may_import_the_kit_and_its_own_package(tree):
    add(tree, "plugins/mmhub-timm/mmhub_timm/extra.py",
        "from hub.plugin_kit import resolve_ref\nfrom hub.train.adapter import TrainKind\nfrom mmhub_timm import loading\n")
    assert layers.problems(tree) == []
