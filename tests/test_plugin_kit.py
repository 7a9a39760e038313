import pytest

from hub.plugin_kit import build_pipeline, resolve_ref


def test_resolve_ref_imports_late():
    assert resolve_ref("hub.tasks:resolve_task")("asr") == "speech-recognition"


def test_resolve_ref_unknown_attribute():
    with pytest.raises(AttributeError):
        resolve_ref("hub.tasks:no_such_thing")


def test_build_pipeline_passes_options():
    class Fake:
        @classmethod
        def from_spec(cls, spec, dm, **options):
            return spec, dm, options

    import sys
    import types

    mod = types.ModuleType("fake_plugin_mod")
    mod.Fake = Fake
    sys.modules["fake_plugin_mod"] = mod
    try:
        assert build_pipeline("fake_plugin_mod:Fake", "s", "d", {"x": 1}) == ("s", "d", {"x": 1})
        assert build_pipeline("fake_plugin_mod:Fake", "s", "d", None) == ("s", "d", {})
    finally:
        del sys.modules["fake_plugin_mod"]


def test_read_json_file(tmp_path):
    from hub.plugin_kit import read_json_file

    (tmp_path / "ok.json").write_text('{"a": [1, 2]}')
    (tmp_path / "list.json").write_text("[1]")
    (tmp_path / "bad.json").write_text("{not json")
    assert read_json_file(tmp_path / "ok.json") == {"a": [1, 2]}
    assert read_json_file(tmp_path / "list.json") == [1]
    assert read_json_file(tmp_path / "bad.json") is None
    assert read_json_file(tmp_path / "missing.json") is None


# -- register_catalog: a plugin's own catalogue file, shipped in its package ---------------------------------------
SHIPS = "mmhub_ships_catalog"
GOOD = ("models:\n  own-model:\n    task: text-embedding\n    plugin: ships\n    source: hf-hub:org/own\n"
        "    aliases: [own]\n")


def plugin_with_catalog(tmp_path, monkeypatch, text: str | bytes | None):
    """A plugin package whose register_models registers the catalog.yaml beside it (None: the file is missing)."""
    import importlib

    from hub.plugins import get_plugin_manager

    package = tmp_path / f"site{len(list(tmp_path.iterdir()))}" / SHIPS
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("from hub import hookimpl\nfrom hub.plugin_kit import register_catalog\n\n\n"
                                         "@hookimpl\ndef register_models(register):\n    register_catalog(register, __file__)\n")
    if text is not None:
        (package / "catalog.yaml").write_bytes(text.encode() if isinstance(text, str) else text)
    monkeypatch.syspath_prepend(str(package.parent))
    monkeypatch.delitem(__import__("sys").modules, SHIPS, raising=False)
    get_plugin_manager().register(importlib.import_module(SHIPS), name="ships")
    return package / "catalog.yaml"


def test_register_catalog_registers_every_entry_of_the_package_file(tmp_path, monkeypatch, fresh_hub):
    import hub

    path = plugin_with_catalog(tmp_path, monkeypatch, GOOD)
    spec = hub.get_spec("own")
    assert (spec.id, spec.plugin, spec.source, spec.aliases) == ("own-model", "ships", "hf-hub:org/own", ["own"])
    assert spec.origin == f"plugin 'ships' ({path})"


@pytest.mark.parametrize("text, words", [
    (None, ["catalogue file is missing", "package data"]),
    ("models: [1, 2]\n", ["'models' mapping"]),
    ("models:\n  a: {task: text-embedding\n", ["not valid YAML"]),
    (b"models:\n  \xff: 1\n", ["not UTF-8"]),
    (GOOD + "  own-model:\n    task: text-embedding\n    plugin: ships\n    source: x\n", ["defined twice"]),
    ("a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
     "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
     "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\nmodels: {}\n",
     ["alias"]),
    (GOOD.replace("    aliases: [own]\n", "    params: many\n"), ["'own-model'", "'params'"]),
    (GOOD.replace("task: text-embedding", "task: no-such-task"), ["'own-model'", "'task'"]),
    (GOOD.replace("    plugin: ships\n", ""), ["'plugin'", "missing"]),
])
def test_a_bad_plugin_catalogue_file_leaves_its_models_out_and_names_the_file(tmp_path, monkeypatch, fresh_hub,
                                                                                text, words):
    import hub
    from hub.errors import UnknownModelError
    from hub.plugins import get_plugin_manager

    path = plugin_with_catalog(tmp_path, monkeypatch, text)
    with pytest.raises(UnknownModelError):
        hub.get_spec("own-model")
    assert hub.get_spec("all-minilm-l6-v2").plugin == "transformers"  # the other plugins' models stay
    (problem, _), = get_plugin_manager().problems["ships"]
    assert str(path) in problem, problem
    for word in words:
        assert word in problem, problem
