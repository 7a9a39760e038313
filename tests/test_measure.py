"""hub bench: the figures' structure on tiny models of every input kind, the store written, bad input refused.

Timings are never asserted: only that each figure is there, of the right kind, and consistent.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from hub import benchstore
from hub.cli import cli
from measure_models import BUILDERS

pytestmark = pytest.mark.slow  # measures tiny models

FAST = ["--batch-size", "1,2", "--repeats", "2", "--rounds", "1"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Every tiny model, built once: name -> directory."""
    root = tmp_path_factory.mktemp("bench-models")
    return {name: str(build(root / name)) for name, (build, _) in BUILDERS.items()}


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("HUB_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "bench"


def bench_json(cli_runner, *args):
    done = cli_runner.invoke(cli, ["bench", *args, "--json"])
    assert done.exit_code == 0, done.output
    return json.loads(done.stdout)


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_bench_measures_every_figure_and_stores_them(name, tiny, store, cli_runner):
    result = bench_json(cli_runner, tiny[name], *FAST)
    assert result["task"] == BUILDERS[name][1]
    assert result["device"] == "cpu" and result["backend"] == "torch" and result["dtype"] in ("fp32", "bf16")
    assert result["load_s"] > 0 and result["latency_repeats"] == 2
    assert 0 < result["latency_ms_p50"] <= result["latency_ms_p90"]
    assert set(result["throughput_by_batch"]) == {"1", "2"}
    assert result["throughput"] == max(result["throughput_by_batch"].values()) > 0
    assert result["throughput_by_batch"][str(result["best_batch_size"])] == result["throughput"]
    assert isinstance(result["peak_memory_bytes"], int) and result["peak_memory_bytes"] >= 0
    assert "RSS" in result["memory_measure"] and result["cores"] >= 1 and result["load_average"] >= 0
    key = str(Path(tiny[name]).resolve())
    assert result["model_key"] == key and Path(result["store"]) == benchstore.store_path()
    (stored,) = benchstore.lookup(key)
    assert (stored.backend, stored.dtype, stored.device) == ("torch", result["dtype"], "cpu")
    assert stored.figures["throughput"] == result["throughput"]
    assert stored.figures["latency_ms_p50"] == result["latency_ms_p50"]
    assert benchstore.fastest_backend(key, result["dtype"]) == "torch"


def test_the_table_names_each_figure_and_marks_the_best_batch(tiny, store, cli_runner):
    done = cli_runner.invoke(cli, ["bench", tiny["timm"], *FAST, "--dtype", "fp32"])
    assert done.exit_code == 0, done.output
    text = done.stdout
    for name in ("model", "ran on", "load", "latency", "throughput", "peak memory", "machine load", "stored in"):
        assert f"\n{name}" in f"\n{text}"
    assert "cpu, fp32, backend torch" in text and "median" in text and "p90" in text
    assert text.count("(best)") == 1 and "BATCH  INPUTS/S" in text


def test_no_store_leaves_the_store_alone(tiny, store, cli_runner):
    result = bench_json(cli_runner, tiny["timm"], *FAST, "--no-store")
    assert result["store"] == "" and not store.exists()


BAD = {
    "unknown model": (["no-such-model-xyz"], "unknown model id"),
    "batch size zero": (["@timm", "--batch-size", "0"], "--batch-size 0"),
    "batch size word": (["@timm", "--batch-size", "8,big"], "'big'"),
    "batch size empty entry": (["@timm", "--batch-size", "1,,8"], "empty entry"),
    "batch size too big": (["@timm", "--batch-size", "100000"], "out of range"),
    "batch size negative": (["@timm", "--batch-size=-4"], "out of range"),
    "unknown dtype": (["@timm", "--dtype", "fp8"], "fp8"),
    "unknown backend": (["@timm", "--backend", "tensorrt"], "tensorrt"),
    "auto backend": (["@timm", "--backend", "auto"], "one backend at a time"),
    "bad device": (["@timm", "--device", "tpu"], "tpu"),
    "zero repeats": (["@timm", "--repeats", "0"], "--repeats"),
    "unknown task": (["@timm", "--task", "no-such-task"], "unknown task 'no-such-task'"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_one_line_and_exit_2_and_stores_nothing(case, tiny, store, cli_runner):
    args, expected = BAD[case]
    args = [tiny["timm"] if a == "@timm" else a for a in args]
    done = cli_runner.invoke(cli, ["bench", *args])
    assert done.exit_code == 2, done.output
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:") and expected in lines[0], done.stderr
    assert "Traceback" not in done.output
    assert not store.exists()


def test_the_table_shows_memory_in_the_decimal_units_recommend_uses():
    from hub.measure.command import result_lines
    from hub.measure.runner import BenchResult

    result = BenchResult(model="m", model_key="m", task="image-classification", device="cpu", dtype="fp32",
                         backend="torch", load_s=1.0, latency_ms_p50=2.0, latency_ms_p90=3.0, latency_repeats=2,
                         throughput=50.0, best_batch_size=8, throughput_by_batch={1: 20.0, 8: 50.0},
                         peak_memory_bytes=300_000_000, memory_measure="RSS", store="")
    lines = result_lines(result)
    assert "peak memory  300 MB (RSS)" in lines and "stored in    not stored (--no-store)" in lines
    assert lines[-2:] == ["1      20.0", "8      50.0  (best)"]


def test_an_export_is_measured_on_its_own_runtime_and_keyed_by_its_path(tmp_path, store, cli_runner, monkeypatch):
    """Without --backend an ONNX export is measured on ONNX Runtime (it has no torch weights), stored under its
    path; --backend torch is refused by name, with the backends that measure it."""
    from export_models import save_classifier
    from hub.export.api import export

    monkeypatch.setenv("HUB_ONNX_EXPORTER", "torchscript")
    monkeypatch.setenv("HUB_RUNTIME_THREADS", "1")
    directory = tmp_path / "model"  # a name any project might use
    export(str(save_classifier(tmp_path / "classifier")), "onnx", directory)
    result = bench_json(cli_runner, str(directory), *FAST, "--dtype", "fp32")
    assert result["backend"] == "onnx" and result["model_key"] == str(directory.resolve())
    assert benchstore.fastest_backend(str(directory.resolve()), "fp32", device="cpu") == "onnx"
    done = cli_runner.invoke(cli, ["bench", str(directory), *FAST, "--backend", "torch"])
    assert done.exit_code == 2 and "Traceback" not in done.output
    assert done.stderr.strip() == ("Error: 'model' is an onnx export without torch weights; measure it with "
                                   "--backend onnx or openvino (without --backend: onnx)")


class _Bar:
    """Stands in for tqdm: records the total, every update and the close."""

    made: list = []

    def __init__(self, total=None, **kwargs):
        self.total, self.count, self.closed = total, 0, False
        _Bar.made.append(self)

    def update(self, n=1):
        self.count += n

    def set_postfix_str(self, *args, **kwargs):
        pass

    def close(self):
        self.closed = True


def test_the_progress_bar_counts_every_step_to_its_total(tiny, store, monkeypatch):
    import tqdm.auto

    from hub.measure.runner import bench

    monkeypatch.setattr(tqdm.auto, "tqdm", _Bar)
    _Bar.made.clear()
    bench(tiny["timm"], (1, 2, 4), dtype="fp32", repeats=3, rounds=1, progress=True, store=False)
    (bar,) = _Bar.made
    assert bar.total == 1 + 3 + 3 and bar.count == bar.total and bar.closed  # load, 3 latency calls, 3 sizes
    bench(tiny["timm"], (1,), dtype="fp32", repeats=1, rounds=1, progress=False, store=False)
    assert len(_Bar.made) == 1  # --json: no bar


def test_a_load_that_exports_on_first_use_is_marked_and_the_next_is_not(tmp_path, store, monkeypatch):
    from export_models import save_classifier
    from hub.measure.command import result_lines
    from hub.measure.runner import bench

    monkeypatch.setenv("HUB_ONNX_EXPORTER", "torchscript")
    monkeypatch.setenv("HUB_RUNTIME_THREADS", "1")
    directory = save_classifier(tmp_path / "classifier")
    with pytest.warns(UserWarning, match="exporting to onnx on first use"):  # still shown to the user
        first = bench(str(directory), (1,), dtype="fp32", backend="onnx", repeats=1, rounds=1)
    again = bench(str(directory), (1,), dtype="fp32", backend="onnx", repeats=1, rounds=1)
    assert first.load_made_export and not again.load_made_export
    (stored,) = benchstore.lookup(str(directory.resolve()), backend="onnx")
    assert stored.figures["load_made_export"] is False  # the later measurement replaced the first
    assert "with the export made on first use" in "\n".join(result_lines(first))
    assert "first use" not in "\n".join(result_lines(again))
