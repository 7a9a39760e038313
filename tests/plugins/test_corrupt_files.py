"""Corrupt or hostile model files, in every shipped plugin: one clear WeightsError naming the path and the fix,
through the Python API and ``hub run`` (exit 2, one line, no traceback); pickles never run code.

A tiny model of each library is saved in its own format (transformers ``save_pretrained``, timm
``save_for_hf``, open_clip's hub layout); each broken directory is a copy with one thing wrong.
"""
from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
import warnings
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # tiny backbone models

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
timm = pytest.importorskip("timm")
open_clip = pytest.importorskip("open_clip")

import hub  # noqa: E402
from hub.errors import WeightsError  # noqa: E402
from hub.tasks.base import HubWarning  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from tiny_models import save_openclip, save_timm, save_transformers  # noqa: E402


class RunsCode:
    """Unpickling this runs a shell command; the hub must refuse the file without running it."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {shlex.quote(str(self.marker))}",)


# plugin -> (builder, task, safetensors file name, pickle file name)
PLUGINS = {
    "transformers": (save_transformers, "text-classification", "model.safetensors", "pytorch_model.bin"),
    "timm": (save_timm, "image-classification", "model.safetensors", "pytorch_model.bin"),
    "openclip": (save_openclip, "zero-shot-image-classification", "open_clip_model.safetensors",
                 "open_clip_pytorch_model.bin"),
}


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> dict[str, Path]:
    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("good")
    return {name: build(root / name) for name, (build, *_rest) in PLUGINS.items()}


@pytest.fixture(scope="module")
def image(tmp_path_factory) -> Path:
    from PIL import Image

    path = tmp_path_factory.mktemp("img") / "digit.png"
    Image.new("RGB", (40, 40), (120, 30, 200)).save(path)
    return path


def state_dict_of(directory: Path, weights_name: str) -> dict:
    from safetensors.torch import load_file

    return load_file(str(directory / weights_name))


def truncate(d, st, pk):
    (d / st).write_bytes((d / st).read_bytes()[: (d / st).stat().st_size // 2])


def corrupt(d, st, pk):
    (d / st).write_bytes(os.urandom((d / st).stat().st_size))


def header_only(d, st, pk):
    data = (d / st).read_bytes()
    (d / st).write_bytes(data[:8 + int.from_bytes(data[:8], "little")])


def no_weights(d, st, pk):
    (d / st).unlink()


def pickle_with_code(d, st, pk):
    state = state_dict_of(d, st)
    state["hidden"] = RunsCode(d / "code-ran")
    torch.save(state, d / pk)
    (d / st).unlink()


def truncated_pickle(d, st, pk):
    torch.save(state_dict_of(d, st), d / pk)
    (d / pk).write_bytes((d / pk).read_bytes()[:1000])
    (d / st).unlink()


BREAKAGES = {"truncated": (truncate, "truncated"), "corrupt": (corrupt, "safetensors"),
             "header only": (header_only, "truncated"), "no weights": (no_weights, "no weights"),
             "pickle with code": (pickle_with_code, "weights_only=True"),
             "truncated pickle": (truncated_pickle, "weights_only=True")}


def broken_copy(saved, tmp_path, plugin, breakage) -> Path:
    directory = tmp_path / f"{plugin}-{breakage.replace(' ', '-')}"
    shutil.copytree(saved[plugin], directory)
    _, _, st, pk = PLUGINS[plugin]
    BREAKAGES[breakage][0](directory, st, pk)
    return directory


def load(directory: Path, plugin: str, **options):
    return hub.load(str(directory), task=PLUGINS[plugin][1], device="cpu", dtype="fp32", cache=False, **options)


def cli_args(plugin: str, image: Path) -> list[str]:
    return {"transformers": ["hello world"], "timm": [str(image)],
            "openclip": [str(image), "--label", "cat,dog"]}[plugin]


def assert_one_line_error(result, *words):
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
@pytest.mark.parametrize("plugin", sorted(PLUGINS))
def test_broken_weights_are_one_clear_error(saved, image, tmp_path, cli_runner, plugin, breakage):
    from hub.cli import cli

    directory = broken_copy(saved, tmp_path, plugin, breakage)
    words = BREAKAGES[breakage][1]
    with pytest.raises(WeightsError) as err:
        load(directory, plugin)
    message = str(err.value)
    assert str(directory) in message and words in message and "\n" not in message
    result = cli_runner.invoke(cli, ["run", str(directory), *cli_args(plugin, image), "--dtype", "fp32"])
    assert_one_line_error(result, str(directory), words)
    assert not (directory / "code-ran").exists()


@pytest.mark.parametrize("plugin", sorted(PLUGINS))
def test_plain_tensor_pickles_still_load(saved, image, tmp_path, plugin):
    directory = tmp_path / plugin
    shutil.copytree(saved[plugin], directory)
    _, _, st, pk = PLUGINS[plugin]
    torch.save(state_dict_of(directory, st), directory / pk)
    (directory / st).unlink()
    pipeline = load(directory, plugin)
    kwargs = {"labels": ["cat", "dog"]} if plugin == "openclip" else {}
    assert len(pipeline(["hello"] if plugin == "transformers" else [str(image)], **kwargs)) == 1


# -- code shipped with the weights (transformers' auto_map) -----------------------------------------
def with_auto_map(saved, tmp_path, model_type: str | None) -> Path:
    directory = tmp_path / f"auto-map-{model_type or 'bert'}"
    shutil.copytree(saved["transformers"], directory)
    config = json.loads((directory / "config.json").read_text())
    config["auto_map"] = {"AutoConfig": "configuration_tiny.TinyConfig",
                          "AutoModelForSequenceClassification": "modeling_tiny.TinyForSequenceClassification"}
    if model_type:
        config["model_type"] = model_type
    (directory / "config.json").write_text(json.dumps(config))
    return directory


def test_custom_code_is_refused_without_trust_remote_code(saved, tmp_path, cli_runner):
    from hub.cli import cli

    directory = with_auto_map(saved, tmp_path, "tiny-custom")
    with pytest.raises(WeightsError) as err:
        load(directory, "transformers")
    message = str(err.value)
    assert str(directory) in message and "configuration_tiny.py" in message and "modeling_tiny.py" in message
    assert "--trust-remote-code" in message
    result = cli_runner.invoke(cli, ["run", str(directory), "hello", "--dtype", "fp32"])
    assert_one_line_error(result, str(directory), "pass --trust-remote-code")


def test_trusted_custom_code_that_is_missing_is_named(saved, tmp_path, cli_runner):
    from hub.cli import cli

    directory = with_auto_map(saved, tmp_path, "tiny-custom")
    with pytest.raises(WeightsError, match="configuration_tiny.py"):
        load(directory, "transformers", trust_remote_code=True)
    result = cli_runner.invoke(cli, ["run", str(directory), "hello", "--trust-remote-code", "--dtype", "fp32"])
    assert_one_line_error(result, str(directory), "configuration_tiny.py")


def test_custom_code_for_a_built_in_type_warns_that_it_was_not_run(saved, tmp_path):
    directory = with_auto_map(saved, tmp_path, None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pipeline = load(directory, "transformers")
    messages = [str(w.message) for w in caught if issubclass(w.category, HubWarning)]
    assert any("modeling_tiny.TinyForSequenceClassification" in m and "--trust-remote-code" in m for m in messages)
    assert len(pipeline(["hello"])) == 1


SHIPPED_CODE = {  # config file -> its auto_map, on a model of a built-in type (transformers needs none of it)
    "model class only": ("config.json", {"AutoModelForSequenceClassification": "modeling_tiny.TinyClassifier"}),
    "another model class": ("config.json", {"AutoModel": "modeling_tiny.TinyModel"}),
    "config class only": ("config.json", {"AutoConfig": "configuration_tiny.TinyConfig"}),
    "tokenizer": ("tokenizer_config.json", {"AutoTokenizer": ["tokenization_tiny.TinyTokenizer", None]}),
    "processor": ("preprocessor_config.json", {"AutoProcessor": "processing_tiny.TinyProcessor"}),
}


@pytest.mark.parametrize("case", sorted(SHIPPED_CODE))
def test_every_auto_map_left_unrun_without_the_flag_is_named_in_a_warning(saved, tmp_path, case):
    """Whichever config names code of its own, a load that did not run it says so, naming the file and the flag."""
    name, auto_map = SHIPPED_CODE[case]
    directory = tmp_path / "shipped-code"
    shutil.copytree(saved["transformers"], directory)
    path = directory / name
    data = json.loads(path.read_text()) if path.exists() else {}
    path.write_text(json.dumps({**data, "auto_map": auto_map}))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pipeline = load(directory, "transformers")
    messages = [str(w.message) for w in caught if issubclass(w.category, HubWarning) and "ships its own code" in
                str(w.message)]
    first = next(iter(auto_map.values()))
    module = (first[0] if isinstance(first, list) else first).rpartition(".")[0]  # e.g. modeling_tiny
    assert len(messages) == 1, messages
    assert str(directory) in messages[0] and "--trust-remote-code" in messages[0] and "not run" in messages[0]
    assert module in messages[0], messages[0]
    assert len(pipeline(["hello"])) == 1


def test_an_empty_auto_map_gives_no_warning(saved, tmp_path):
    directory = tmp_path / "empty-auto-map"
    shutil.copytree(saved["transformers"], directory)
    config = json.loads((directory / "config.json").read_text())
    (directory / "config.json").write_text(json.dumps({**config, "auto_map": {}}))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load(directory, "transformers")
    assert not [w for w in caught if "ships its own code" in str(w.message)]


def test_config_without_weights_from_a_snapshot_says_to_download_again(saved, tmp_path):
    """A catalogue entry whose cached snapshot lost its weights: the fix is the `hf download` command."""
    from hub.registry import ModelSpec
    from mmhub_timm.loading import load_model, weights_file

    directory = broken_copy(saved, tmp_path, "timm", "no weights")
    spec = ModelSpec(id="tiny-timm", task="image-classification", plugin="timm", source="hf-hub:timm/tiny",
                     revision="v1")
    assert weights_file(directory) is None
    with pytest.raises(WeightsError, match="`hf download timm/tiny --revision v1 --force-download`"):
        load_model(spec, directory)
