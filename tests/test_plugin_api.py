"""The plugin-API version: a plugin pins MMHUB_PLUGIN_API and loads only on a hub that provides it."""
from __future__ import annotations

import json
import types

import pytest

import hub
from hub.plugin_api import PLUGIN_API_VERSION, api_problem, parse_version
from hub.plugins import get_plugin_manager
from hub.testing import IsolatedHub, assert_clean_error, assert_ok, invoke_hub


def pinned_plugin(version) -> types.ModuleType:
    """A plugin module registering one model, pinning ``version`` (None: no pin)."""
    module = types.ModuleType("pinned_plugin")
    if version is not None:
        module.MMHUB_PLUGIN_API = version

    @hub.hookimpl
    def register_models(register):
        register({"id": "pinned-model", "task": "text-embedding", "source": "builtin", "params": 0})

    module.register_models = register_models
    return module


def test_the_hub_declares_its_version():
    assert hub.PLUGIN_API_VERSION == PLUGIN_API_VERSION == "1.0"
    assert parse_version(hub.PLUGIN_API_VERSION) == (1, 0)


def test_the_version_is_defined_once():
    import ast
    from pathlib import Path

    root = Path(hub.__file__).resolve().parent
    defined = [path.relative_to(root.parent).as_posix() for path in sorted(root.rglob("*.py"))
               for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
               if isinstance(node, (ast.Assign, ast.AnnAssign))
               and any(isinstance(t, ast.Name) and t.id == "PLUGIN_API_VERSION"
                       for t in (node.targets if isinstance(node, ast.Assign) else [node.target]))]
    assert defined == ["hub/plugin_api.py"], defined
    assert hub.PLUGIN_API_VERSION is PLUGIN_API_VERSION


@pytest.mark.parametrize("required, provided, words", [
    ("1.0", "1.0", None),
    ("1.0", "1.3", None),
    ("1.2", "1.3", None),
    ("1.4", "1.3", "needs plugin API 1.4, newer than this hub's 1.3; upgrade mmhub"),
    ("2.0", "1.3", "a newer major version than this hub's 1.3; install a version of the plugin made for plugin "
                   "API 1.x, or upgrade mmhub"),
    ("0.9", "1.3", "an older major version than this hub's 1.3"),
    ("1", "1.0", "is not a plugin-API version like '1.0'"),
    (" 1.0 ", "1.0", None),
    ("1.0.0", "1.0", "is not a plugin-API version"),
    (1.0, "1.0", "MMHUB_PLUGIN_API = 1.0, which is not a plugin-API version"),
])
def test_compatibility_rule(required, provided, words):
    problem = api_problem(required, provided)
    assert problem is None if words is None else words in problem


@pytest.mark.parametrize("version", [None, "1.0", PLUGIN_API_VERSION])
def test_a_compatible_or_unpinned_plugin_loads(tmp_path, version):
    with IsolatedHub(tmp_path) as isolated:
        isolated.register(pinned_plugin(version), "pinned")
        assert [s.id for s in hub.list_models()] == ["pinned-model"]


@pytest.mark.parametrize("version, words", [("2.0", "a newer major version"), ("1.99", "upgrade mmhub"),
                                            ("latest", "not a plugin-API version")])
def test_an_incompatible_plugin_is_left_out_and_shown_like_any_failure(tmp_path, version, words):
    with IsolatedHub(tmp_path):
        pm = get_plugin_manager()
        assert pm.add_plugin(pinned_plugin(version), "pinned") is False
        assert hub.list_models() == []
        rows = {row["name"]: row for row in json.loads(assert_ok(invoke_hub(["plugins", "--json"])))}
        assert rows["pinned"]["status"] == "failed"
        assert rows["pinned"]["error"].startswith("incompatible plugin API: ") and words in rows["pinned"]["error"]
        assert_clean_error(invoke_hub(["run", "pinned-model", "x"]), "unknown model id 'pinned-model'")


def test_the_shipped_plugins_pin_the_version():
    import mmhub_openclip
    import mmhub_timm
    import mmhub_torchvision
    import mmhub_transformers

    for module in (mmhub_transformers, mmhub_timm, mmhub_openclip, mmhub_torchvision):
        assert api_problem(module.MMHUB_PLUGIN_API) is None, module.__name__
