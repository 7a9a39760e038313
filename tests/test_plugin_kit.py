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
