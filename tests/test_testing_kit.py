"""hub.testing, the kit for plugin authors: the isolated hub, the contract check and the CLI helpers.

The fixture plugins in tests/kit_plugins are installed as entry points (a dist-info on sys.path),
so the checks that start a new process see them exactly as they would see a pip-installed plugin.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import hub
from hub.testing import (PROPERTIES, ContractError, IsolatedHub, assert_clean_error, assert_ok,
                         check_model_contract, invoke_hub, run_hub)
from hub.testing.cli import HubResult

KIT_PLUGINS = Path(__file__).resolve().parent / "kit_plugins"
TEXTS = ["bcd", "aab", "abcde eee"]  # different lengths and counts: any reordering shows
BROKEN = {
    "results-per-input": "broken-count", "input-order": "broken-order", "single-input": "broken-single",
    "empty-list": "broken-empty", "batch-size": "broken-batch", "result-type": "broken-type",
    "json-round-trip": "broken-json",
}
IN_PROCESS = [p for p in PROPERTIES if p not in ("listing-imports", "import-time")]


@pytest.fixture
def letters(tmp_path):
    """An isolated hub with only the kit_letters fixture plugin, installed as the entry point 'kitletters'."""
    with IsolatedHub(tmp_path / "hub") as isolated:
        isolated.install_entry_point("kitletters", "kit_letters", KIT_PLUGINS)
        yield isolated


def broken(model: str, prop: str, **kwargs) -> ContractError:
    with pytest.raises(ContractError) as err:
        check_model_contract(model, TEXTS, properties=IN_PROCESS, **kwargs)
    assert prop in err.value.failures, str(err.value)
    assert f"- {prop}: model '{model}'" in str(err.value), str(err.value)
    return err.value


@pytest.mark.slow
def test_a_model_that_keeps_the_contract_passes_every_property(letters):
    report = check_model_contract("letters", TEXTS)
    assert report.model == "letters" and report.checked == list(PROPERTIES) and not report.skipped


@pytest.mark.parametrize("prop", sorted(BROKEN))
def test_each_broken_property_fails_with_a_message_naming_it_and_the_model(letters, prop):
    error = broken(BROKEN[prop], prop)
    if prop in ("input-order", "single-input", "empty-list", "batch-size", "result-type", "json-round-trip"):
        assert list(error.failures) == [prop], str(error)  # exactly the property broken, nothing else


def test_the_messages_say_what_went_wrong(letters):
    assert "returned 2 results for 3 inputs" in broken("broken-count", "results-per-input").failures["results-per-input"]
    assert "returned a list for one input" in broken("broken-single", "single-input").failures["single-input"]
    assert "ran preprocess 1 time(s) for an empty list" in broken("broken-empty", "empty-list").failures["empty-list"]
    assert "batch_size=1" in broken("broken-batch", "batch-size").failures["batch-size"]
    assert "returns Embedding" in broken("broken-type", "result-type").failures["result-type"]
    assert "summary() of input 0 that is not one line" in broken("broken-summary", "result-type").failures["result-type"]
    assert "from_dict" in broken("broken-json", "json-round-trip").failures["json-round-trip"]


def test_options_accepted_unchecked_fail(letters):
    error = broken("broken-options", "options-validated")
    assert "accepted an unknown option 'no_such_option_xyz'" in error.failures["options-validated"]


def test_options_checked_after_inference_fail(letters):
    error = broken("broken-options-late", "options-validated")
    assert "ran prepare 3 time(s), preprocess 1 time(s), forward 1 time(s) before refusing" in str(error)


def test_a_wrongly_typed_option_is_tried_for_each_declared_option(letters):
    check_model_contract("letters", TEXTS, properties=["options-validated"])
    with pytest.raises(ContractError, match=r"accepted option 'scale'=2\.0; expected an OptionError"):
        check_model_contract("letters", TEXTS, properties=["options-validated"], wrong_options={"scale": 2.0})


def test_options_given_reach_every_call(letters):
    plain = check_model_contract("letters", TEXTS, properties=IN_PROCESS)
    scaled = check_model_contract("letters", TEXTS, properties=IN_PROCESS, options={"scale": 0.5})
    assert plain.checked == scaled.checked == IN_PROCESS


@pytest.mark.slow
def test_a_plugin_that_imports_torch_fails_listing(tmp_path):
    with IsolatedHub(tmp_path / "hub") as isolated:
        isolated.install_entry_point("kitletters", "kit_letters", KIT_PLUGINS)
        isolated.install_entry_point("kitheavy", "kit_heavy", KIT_PLUGINS)
        with pytest.raises(ContractError) as err:
            check_model_contract("heavy-letters", TEXTS, properties=["listing-imports"])
    assert "imports torch when the catalogue is listed with only plugin 'kitheavy'" in str(err.value)
    assert "- listing-imports: model 'heavy-letters'" in str(err.value)


@pytest.mark.slow
def test_a_slow_plugin_fails_the_import_budget(tmp_path):
    with IsolatedHub(tmp_path / "hub") as isolated:
        isolated.install_entry_point("kitletters", "kit_letters", KIT_PLUGINS)
        isolated.install_entry_point("kitslow", "kit_slow", KIT_PLUGINS)
        with pytest.raises(ContractError) as err:
            check_model_contract("slow-letters", TEXTS, properties=["import-time"], import_budget_ms=100)
    assert "- import-time: model 'slow-letters'" in str(err.value)
    assert "plugin module 'kit_slow' that takes" in str(err.value) and "over the budget of 100 ms" in str(err.value)


def test_a_plugin_registered_in_process_skips_the_process_checks(fresh_hub, tmp_path):
    sys.path.insert(0, str(KIT_PLUGINS))
    try:
        import kit_letters

        with IsolatedHub(tmp_path / "hub") as isolated:
            isolated.register(kit_letters, "inproc")
            report = check_model_contract("letters", TEXTS)
    finally:
        sys.path.remove(str(KIT_PLUGINS))
    assert report.checked == IN_PROCESS and set(report.skipped) == {"listing-imports", "import-time"}


def test_a_crash_is_a_broken_property_and_bad_calls_are_refused(letters):
    pipe = hub.load("letters", dtype="fp32")
    with pytest.raises(ValueError, match="at least two inputs"):
        check_model_contract(pipe, ["only one"])
    with pytest.raises(ValueError, match="unknown contract property 'speed'"):
        check_model_contract(pipe, TEXTS, properties=["speed"])
    for not_a_pipeline in (len, pipe.forward, object(), 3.5, ["letters"]):
        with pytest.raises(ValueError, match="needs a model id or a loaded hub.Pipeline, got a"):
            check_model_contract(not_a_pipeline, TEXTS)
    with pytest.raises(ContractError, match=r"results-per-input: model 'letters' raised TypeError"):
        check_model_contract(pipe, [None, None], properties=["results-per-input"])


@pytest.mark.slow
def test_a_plugin_task_with_its_own_result_class_keeps_the_contract(tmp_path):
    """A third party's task (a new input kind, a result named "module:Class", a text view) is checked the same way."""
    import shutil

    site = tmp_path / "plugin"
    site.mkdir()
    shutil.copy(Path(__file__).resolve().parent / "task_plugins" / "tablestats.py", site / "mmhub_task_tablestats.py")
    tables = [b"a,b\n1,2\n3,5\n", b"x\n1\n2\n4\n", b"a,b,c\n0,0,1\n"]
    try:
        with IsolatedHub(tmp_path / "hub") as isolated:
            isolated.install_entry_point("tablestats", "mmhub_task_tablestats", site)
            report = check_model_contract("table-stats", tables)
            from hub.tasks import task_info

            assert task_info("table-statistics").result == "mmhub_task_tablestats:TableStats"
    finally:
        sys.modules.pop("mmhub_task_tablestats", None)
    assert report.checked == list(PROPERTIES)


# -- the isolated hub ----------------------------------------------------------------------------------------
def test_the_isolated_hub_loads_only_its_plugins_and_restores_the_environment(tmp_path):
    before = {k: os.environ.get(k) for k in ("HUB_PLUGINS", "HUB_CATALOG", "XDG_CONFIG_HOME", "XDG_CACHE_HOME")}
    with IsolatedHub(tmp_path / "hub") as isolated:
        assert hub.list_models() == []
        assert os.environ["XDG_CONFIG_HOME"].startswith(str(tmp_path))
        assert os.environ["HUB_CATALOG"] == str(isolated.catalog_path)
        assert os.environ["HF_HOME"] and not os.environ["HF_HOME"].startswith(str(tmp_path))
        isolated.install_entry_point("kitletters", "kit_letters", KIT_PLUGINS)
        isolated.add_model("letters-again", task="text-embedding", plugin="kitletters", source="builtin")
        assert {"letters", "letters-again"} <= {s.id for s in hub.list_models()}
        assert hub.get_spec("letters-again").origin == str(isolated.catalog_path)
    assert {k: os.environ.get(k) for k in before} == before
    assert str(KIT_PLUGINS) not in sys.path


@pytest.mark.slow
def test_the_pytest_plugin_gives_plugin_authors_the_fixture_and_the_check(tmp_path):
    """A plugin author's test file, run by pytest in a new process: the entry point loads hub.testing."""
    (tmp_path / "pytest.ini").write_text("[pytest]\nmmhub_plugins = kitletters\n")
    (tmp_path / "test_author.py").write_text(textwrap.dedent(f"""
        import hub
        import pytest
        from hub.testing import check_model_contract

        def test_contract(isolated_hub):
            isolated_hub.install_entry_point("kitletters", "kit_letters", {str(KIT_PLUGINS)!r})
            assert [s.id for s in hub.list_models("letters")] == ["letters"]
            check_model_contract("letters", {TEXTS!r})

        @pytest.mark.mmhub_plugins()
        def test_marker_overrides_ini(isolated_hub, hub_plugins):
            assert hub_plugins == [] and hub.list_models() == []

        def test_ini(hub_plugins):
            assert hub_plugins == ["kitletters"]
    """))
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0 and "3 passed" in done.stdout, done.stdout + done.stderr


# -- the CLI helpers -------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_cli_helpers_run_the_isolated_hub(letters):
    assert "letters" in assert_ok(letters.run_cli("list"))
    line = assert_clean_error(letters.run_cli("run", "letters", "abc", "-o", "scale=zero"), "'scale'", "zero")
    assert line.startswith("Error: ")
    assert_clean_error(invoke_hub(["run", "no-such-model", "abc"]), "unknown model id 'no-such-model'")
    assert json.loads(assert_ok(invoke_hub(["run", "letters", "abc", "--json"]))) == [{"embedding": [1, 1, 1, 0, 0]}]


@pytest.mark.parametrize("result, expected", [
    (HubResult(0, "fine\n", ""), "expected exit code 2, got 0"),
    (HubResult(2, "", "Traceback (most recent call last):\nError: x\n"), "printed a traceback"),
    (HubResult(2, "", "Error: one\nError: two\n"), "exactly one 'Error:' line, got 2"),
    (HubResult(2, "noise\n", "Error: one\n"), "only 'Error:'/'Warning:' lines"),
    (HubResult(2, "", "Error: one\n"), "does not name ['two']"),
])
def test_assert_clean_error_refuses_what_a_refusal_must_not_be(result, expected):
    with pytest.raises(AssertionError) as err:
        assert_clean_error(result, "two")
    assert expected in str(err.value)


@pytest.mark.slow
def test_run_hub_reports_exit_code_and_output():
    done = run_hub(["--help"])
    assert done.exit_code == 0 and "Usage" in done.stdout
    with pytest.raises(AssertionError, match="hub failed with exit code 2"):
        assert_ok(run_hub(["no-such-command"]))


# -- the plugin under test does not load: the kit says why, never "unknown model id" ---------------------------------
NOT_LOADING = {  # the plugin module's source (None: no plugin of that name installed) -> words of the report
    "import mmhub_kit_backbone_not_installed\n": ["failed to load", "ModuleNotFoundError",
                                                  "mmhub_kit_backbone_not_installed", "Traceback"],
    "def broken(:\n": ["failed to load", "SyntaxError"],
    "raise RuntimeError('no CUDA driver')\n": ["failed to load", "RuntimeError: no CUDA driver"],
    "import sys\nsys.exit(4)\n": ["failed to load", "SystemExit"],
    "from hub import hookimpl\n\n@hookimpl\ndef load_models(spec):\n    pass\n": ["unknown hook 'load_models'"],
    "MMHUB_PLUGIN_API = '7.1'\n": ["incompatible plugin API"],
    None: ["is not installed", "mmhub_plugins"],
}


@pytest.mark.parametrize("source", list(NOT_LOADING), ids=lambda s: (s or "not-installed").split("\n")[0][:30])
def test_a_plugin_under_test_that_does_not_load_is_reported_with_its_error(source, tmp_path):
    module = f"kit_broken_{abs(hash(source)) % 10**8}"
    if source is not None:
        (tmp_path / f"{module}.py").write_text(source)
    try:
        with IsolatedHub(tmp_path / "hub", plugins=["kitbroken"] if source is None else ()) as isolated:
            if source is not None:
                isolated.install_entry_point("kitbroken", module, tmp_path)
            with pytest.raises(AssertionError) as err:
                check_model_contract("letters", TEXTS)
            message = str(err.value)
            assert "the plugin under test 'kitbroken'" in message and "unknown model id" not in message, message
            assert all(w in message for w in NOT_LOADING[source]), message
            assert "\n".join(isolated.plugin_problems()) == message
            if source is not None:  # the CLI says why the model is missing, too
                assert_clean_error(isolated.invoke("run", "letters", "abc"), "unknown model id 'letters'",
                                   "failed to load", "'kitbroken'")
    finally:
        sys.modules.pop(module, None)
