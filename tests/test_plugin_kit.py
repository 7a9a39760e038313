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
