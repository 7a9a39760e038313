"""Export gates and bad input: a refused export leaves nothing, and each user mistake is one line, exit 2."""
from __future__ import annotations

import os

import pytest

from export_models import save_classifier, save_ctc, save_embedder
from hub.cli import cli

pytestmark = pytest.mark.slow  # exports to ONNX Runtime / OpenVINO

os.environ["HUB_RUNTIME_THREADS"] = "1"
FAST = {"HUB_ONNX_EXPORTER": "torchscript"}  # the faster exporter: these tests are about gates and input


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    return {"embedder": save_embedder(root / "embedder"), "classifier": save_classifier(root / "classifier"),
            "ctc": save_ctc(root / "ctc")}


def invoke(*args):
    from click.testing import CliRunner

    return CliRunner(env=FAST).invoke(cli, ["export", *map(str, args)])


def leftovers(out):
    return sorted(p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}") or p.name == out.name)


def test_an_impossible_cosine_gate_is_refused_with_the_figures_and_nothing_is_left(models, tmp_path, one_thread):
    out = tmp_path / "refused"
    result = invoke(models["embedder"], "--format", "onnx", "--out", out, "--min-cosine", "1.0000001")
    assert result.exit_code == 1, result.output
    line = result.output.strip()
    assert len(line.splitlines()) == 1 and "Traceback" not in line
    assert "was refused: cosine 1.0" in line and "< 1.0000001" in line and "on 24 held-out inputs" in line
    assert "Nothing was written" in line
    assert leftovers(out) == []


def test_a_quantization_that_breaks_the_model_is_refused(models, tmp_path, monkeypatch, one_thread):
    """int8 that ruins the graph (weights scrambled after quantizing) misses the agreement gate."""
    import onnx
    import onnx.numpy_helper

    from hub.export import quantize

    real = quantize.quantize

    def broken(fmt, method, source, target, feeds, kind):
        what = real(fmt, method, source, target, feeds, kind)
        model = onnx.load(str(target))
        for init in model.graph.initializer:
            values = onnx.numpy_helper.to_array(init)
            if values.dtype.kind == "f" and values.size > 8:
                init.CopyFrom(onnx.numpy_helper.from_array(-values, init.name))
        onnx.save(model, str(target))
        return what

    monkeypatch.setattr(quantize, "quantize", broken)
    out = tmp_path / "broken"
    result = invoke(models["classifier"], "--format", "onnx", "--int8", "--out", out, "--min-agreement", "1")
    assert result.exit_code == 1, result.output
    assert "was refused: top-1 agreement" in result.output and "onnxruntime dynamic int8" in result.output
    assert leftovers(out) == []


def test_a_lowered_gate_lets_a_refused_export_through_and_records_the_gate(models, tmp_path, one_thread):
    import yaml

    out = tmp_path / "lowered"
    result = invoke(models["embedder"], "--format", "onnx", "--out", out, "--min-cosine", "0.5")
    assert result.exit_code == 0, result.output
    quality = yaml.safe_load((out / "mmhub.yaml").read_text())["options"]["export"]["quality"]
    assert quality["gate"].startswith("cosine >= 0.5,") and quality["cosine_min"] > 0.9999


def _nonempty(tmp_path, models):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("mine")
    return ["--out", tmp_path / "full"], "is not empty"


def _file_parent(tmp_path, models):
    (tmp_path / "afile").write_text("x")
    return ["--out", tmp_path / "afile" / "out"], "is a file, not a directory"


def _out_is_a_file(tmp_path, models):
    (tmp_path / "file.onnx").write_text("x")
    return ["--out", tmp_path / "file.onnx"], "is a file, not a directory; give a new or empty directory"


def _inside_source(tmp_path, models):
    return ["--out", models["embedder"] / "export"], "inside, the model's own directory"


def _unwritable(tmp_path, models):
    return ["--out", "/proc/mmhub-export-test"], "cannot"


def _missing_calibration(tmp_path, models):
    return ["--out", tmp_path / "o", "--int8", "--calibration", tmp_path / "nope.txt"], "does not exist"


def _calibration_dir_for_text(tmp_path, models):
    (tmp_path / "calibration").mkdir()
    return ["--out", tmp_path / "o", "--int8", "--calibration", tmp_path / "calibration"], \
        "is a directory; for a text model"


def _calibration_too_small(tmp_path, models):
    (tmp_path / "one.txt").write_text("only one line\n")
    return ["--out", tmp_path / "o", "--int8", "--calibration", tmp_path / "one.txt"], "holds 1 input(s)"


def _unknown_format(tmp_path, models):
    return ["--out", tmp_path / "o", "--format", "tflite"], "'tflite' is not one of 'onnx', 'openvino'"


def _gate_out_of_range(tmp_path, models):
    return ["--out", tmp_path / "o", "--min-agreement", "1.5"], "--min-agreement"


BAD = [_nonempty, _file_parent, _out_is_a_file, _inside_source, _unwritable, _missing_calibration,
       _calibration_dir_for_text, _calibration_too_small, _unknown_format, _gate_out_of_range]


@pytest.mark.parametrize("case", BAD, ids=[f.__name__.strip("_") for f in BAD])
def test_bad_input_is_one_line_and_exit_2_and_writes_nothing(models, tmp_path, case):
    args, expected = case(tmp_path, models)
    before = sorted(p.name for p in tmp_path.iterdir())
    fmt = [] if "--format" in args else ["--format", "onnx"]
    result = invoke(models["embedder"], *fmt, *args)
    assert result.exit_code == 2, result.output
    assert expected in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) <= 3  # click's usage errors add a usage line and a hint
    assert sorted(p.name for p in tmp_path.iterdir()) == before


@pytest.mark.parametrize("model,task", [("ctc", None), ("classifier", "fill-mask"),
                                        ("classifier", "token-classification")])
def test_a_task_that_cannot_be_exported_says_so_in_one_line(models, tmp_path, model, task):
    result = invoke(models[model], "--format", "openvino", "--out", tmp_path / "o", *(["--task", task] if task else []))
    assert result.exit_code == 2, result.output
    assert "which hub export cannot export; exportable tasks: text-embedding" in result.output
    assert len(result.output.strip().splitlines()) == 1 and not (tmp_path / "o").exists()


def test_an_export_is_not_exported_again(models, tmp_path, one_thread):
    first = tmp_path / "first"
    assert invoke(models["classifier"], "--format", "onnx", "--out", first).exit_code == 0
    result = invoke(first, "--format", "openvino", "--out", tmp_path / "second")
    assert result.exit_code == 2 and "is already an export; export its source model" in result.output


def test_a_quantizer_that_quantizes_nothing_is_never_labelled_int8(models, tmp_path, monkeypatch, one_thread):
    import shutil

    from hub.export import quantize

    def copies(method, source, target, feeds, kind):  # an fp32 graph out of an "int8" method
        shutil.copyfile(source, target)
        return f"{method} (a copy)"

    monkeypatch.setattr(quantize, "_ort", copies)
    out = tmp_path / "fp32-in-disguise"
    result = invoke(models["embedder"], "--format", "onnx", "--int8", "--out", out)
    assert result.exit_code == 1, result.output
    assert "was refused: dynamic quantized nothing in this graph" in result.output and leftovers(out) == []
