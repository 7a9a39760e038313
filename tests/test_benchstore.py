"""The per-machine benchmark store: where it lives, records, lookups, the fastest backend, bad files."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from hub import benchstore
from hub.benchstore import BenchStoreWarning
from hub.errors import WriteError


@pytest.fixture
def store(tmp_path, monkeypatch):
    """An empty store in a temporary cache directory."""
    monkeypatch.setenv("HUB_CACHE_DIR", str(tmp_path / "cache"))
    benchstore._warned.clear()
    return tmp_path / "cache" / "bench"


def test_the_cache_dir_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("HUB_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert benchstore.store_dir() == tmp_path / "xdg" / "mmhub" / "bench"
    monkeypatch.setenv("HUB_CACHE_DIR", str(tmp_path / "own"))
    assert benchstore.store_dir() == tmp_path / "own" / "bench"


def test_the_machine_key_names_the_machine_and_changes_with_it():
    info = {"cpu": "Some CPU 9000", "cores": 8, "gpu": "NVIDIA H100 80GB HBM3", "torch": "2.5.1"}
    key = benchstore.machine_key(info)
    assert key.startswith("some-cpu-9000-8c-nvidia-h100-80gb-hbm3-torch2.5.1-")
    assert benchstore.machine_key(info) == key
    for change in ({"gpu": None}, {"torch": "2.6.0"}, {"cores": 16}, {"cpu": "Other"}):
        assert benchstore.machine_key({**info, **change}) != key
    assert "/" not in benchstore.machine_key({**info, "cpu": "a/b c"})


def test_a_record_is_written_as_json_for_this_machine_and_read_back(store):
    benchstore.record("resnet18", "torch", "bf16", {"throughput": 120.5, "latency_ms_p50": 9.1}, device="cpu")
    files = list(store.glob("*.json"))
    assert [f.name for f in files] == [f"{benchstore.machine_key()}.json"]
    data = json.loads(files[0].read_text())
    assert data["machine"] == benchstore.machine() and data["format"] == benchstore.FORMAT
    (found,) = benchstore.lookup("resnet18")
    assert (found.model, found.backend, found.dtype, found.device) == ("resnet18", "torch", "bf16", "cpu")
    assert found.figures == {"throughput": 120.5, "latency_ms_p50": 9.1} and found.measured_at > 0


def test_a_new_measurement_replaces_the_old_one_of_the_same_slot(store):
    benchstore.record("m", "torch", "fp32", {"throughput": 1.0}, device="cuda:1")
    benchstore.record("m", "torch", "fp32", {"throughput": 2.0}, device="cuda")
    benchstore.record("m", "torch", "bf16", {"throughput": 3.0}, device="cuda")
    assert [r.throughput for r in benchstore.lookup("m", dtype="fp32")] == [2.0]
    assert len(benchstore.lookup("m")) == 2
    assert benchstore.lookup("m", device="cpu") == []
    assert benchstore.lookup("other") == []
    assert benchstore.measured_models() == ["m"]


def test_the_fastest_backend_is_the_one_with_the_highest_throughput_at_that_dtype(store):
    assert benchstore.fastest_backend("m", "fp32") is None
    benchstore.record("m", "torch", "fp32", {"throughput": 10.0})
    benchstore.record("m", "onnx", "fp32", {"throughput": 25.0})
    benchstore.record("m", "openvino", "fp32", {"throughput": 20.0})
    benchstore.record("m", "openvino", "bf16", {"throughput": 99.0})
    benchstore.record("m", "broken", "fp32", {"latency_ms_p50": 1.0})  # no throughput: never chosen
    assert benchstore.fastest_backend("m", "fp32") == "onnx"
    assert benchstore.fastest_backend("m", "bf16") == "openvino"
    assert benchstore.fastest_backend("m", "fp16") is None
    assert benchstore.fastest_backend("m", "fp32", device="cuda") is None


@pytest.mark.parametrize("content", [b"{not json", b"[1, 2]", b'{"models": []}', b'{"format": 99, "models": {}}',
                                     b"\xff\xfe\x00garbage", b""])
def test_a_corrupt_store_is_a_warning_naming_the_file_and_the_fix_and_reads_as_empty(store, content):
    path = benchstore.store_path()
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    with pytest.warns(BenchStoreWarning) as caught:
        assert benchstore.lookup("m") == []
        assert benchstore.fastest_backend("m", "fp32") is None
    message = str(caught[0].message)
    assert str(path) in message and "Delete it" in message and "hub bench" in message
    benchstore.record("m", "torch", "fp32", {"throughput": 5.0})  # rewritten from empty, warned once only
    assert benchstore.fastest_backend("m", "fp32") == "torch"


def test_records_with_a_bad_shape_are_skipped(store):
    path = benchstore.store_path()
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"format": 1, "models": {"m": {
        "a": "nonsense", "b": {"backend": "torch"}, "c": {"backend": "torch", "dtype": "fp32", "device": "cpu",
                                                         "figures": {"throughput": "fast"}}}}}))
    (only,) = benchstore.lookup("m")
    assert only.throughput is None and benchstore.fastest_backend("m", "fp32") is None


@pytest.mark.slow
def test_the_store_never_imports_torch(tmp_path):
    code = ("import sys, hub.benchstore as b; b.machine_key(); b.lookup('x'); b.fastest_backend('x', 'fp32'); "
            "assert 'torch' not in sys.modules, 'torch imported'")
    env = {"HUB_CACHE_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr


def test_records_lists_plain_dicts_for_every_model(store):
    benchstore.record("a", "torch", "fp32", {"throughput": 1.0})
    benchstore.record("b", "onnx", "fp32", {"throughput": 2.0}, device="cuda:0")
    rows = benchstore.records()
    assert [(r["model"], r["backend"], r["device"]) for r in rows] == [("a", "torch", "cpu"), ("b", "onnx", "cuda")]
    assert [r["model"] for r in benchstore.records("b")] == ["b"]


def test_a_model_is_keyed_by_its_catalogue_id_or_its_directory(tmp_path):
    from types import SimpleNamespace

    assert benchstore.model_key(SimpleNamespace(id="resnet50.a1_in1k", source="hf-hub:timm/resnet50.a1_in1k",
                                                origin="/x/registry.yaml")) == "resnet50.a1_in1k"
    directory = tmp_path / "model"
    directory.mkdir()
    spec = SimpleNamespace(id="model", source=str(directory), origin=str(directory))
    assert benchstore.model_key(spec) == str(directory.resolve())
    in_catalogue = SimpleNamespace(id="mine", source=str(directory), origin=str(tmp_path / "catalog.yaml"))
    assert benchstore.model_key(in_catalogue) == "mine"


def test_directories_described_by_their_own_card_are_keyed_by_path_even_when_their_names_clash(tmp_path):
    """Exports and fine-tuned models carry mmhub.yaml (the spec's origin); two such 'model' folders differ."""
    from hub.local import spec_from_directory, write_card

    keys = []
    for parent in ("a", "b"):
        directory = tmp_path / parent / "model"
        directory.mkdir(parents=True)
        write_card(directory, {"task": "text-classification", "plugin": "transformers", "source": "."})
        spec = spec_from_directory(tmp_path / parent / "." / "model")
        assert spec.id == "model"
        keys.append(benchstore.model_key(spec))
    assert keys == [str((tmp_path / "a" / "model").resolve()), str((tmp_path / "b" / "model").resolve())]


# -- a store that cannot be written: refused before anything is measured --------------------------------------------
def unwritable_store(kind: str, tmp_path, monkeypatch) -> str:
    """Point the store somewhere it cannot be written; return what the error must name."""
    import os

    if kind == "cache dir under a file":
        (tmp_path / "afile").write_text("x")
        monkeypatch.setenv("HUB_CACHE_DIR", str(tmp_path / "afile" / "cache"))
        return f"'{tmp_path / 'afile'}' is a file where a directory is needed"
    if kind == "cache dir is a file":
        (tmp_path / "cache").write_text("x")
        monkeypatch.setenv("HUB_CACHE_DIR", str(tmp_path / "cache"))
        return f"'{tmp_path / 'cache'}' is a file where a directory is needed"
    monkeypatch.setenv("HUB_CACHE_DIR", str(tmp_path / "cache"))
    target = benchstore.store_path()
    if kind == "store file is a directory":
        target.mkdir(parents=True)
        return "that path is a directory"
    if kind == "store file is a fifo":
        target.parent.mkdir(parents=True)
        os.mkfifo(target)
        return "that path is a special file"
    if kind == "read-only directory":
        if os.geteuid() == 0:
            pytest.skip("root writes into read-only directories")
        target.parent.mkdir(parents=True)
        target.parent.chmod(0o555)
        return "permission denied"
    if kind == "kernel file system":
        if not os.path.isdir("/sys/kernel"):
            pytest.skip("no sysfs here (it refuses new files, even to root)")
        monkeypatch.setenv("HUB_CACHE_DIR", "/sys/mmhub-bench-test")
        return "/sys/mmhub-bench-test"
    raise AssertionError(kind)


UNWRITABLE = ["cache dir under a file", "cache dir is a file", "store file is a directory", "store file is a fifo",
              "read-only directory", "kernel file system"]


@pytest.mark.parametrize("kind", UNWRITABLE)
def test_an_unwritable_store_is_named_with_the_fix(kind, tmp_path, monkeypatch):
    words = unwritable_store(kind, tmp_path, monkeypatch)
    with pytest.raises(WriteError) as err:
        benchstore.check_writable()
    message = str(err.value)
    assert words in message and str(benchstore.store_path()) in message
    assert "HUB_CACHE_DIR" in message and "--no-store" in message
    assert not [p for p in tmp_path.rglob("*.tmp")]  # the probe leaves nothing behind


def test_a_writable_store_passes_the_check_and_keeps_its_records(store):
    benchstore.record("m", "torch", "fp32", {"throughput": 1.0})
    before = benchstore.store_path().read_bytes()
    assert benchstore.check_writable() == benchstore.store_path()
    assert benchstore.store_path().read_bytes() == before and sorted(p.name for p in store.iterdir()) == [
        benchstore.store_path().name]


@pytest.mark.parametrize("kind", UNWRITABLE)
def test_hub_bench_refuses_an_unwritable_store_before_measuring(kind, tmp_path, monkeypatch, cli_runner):
    from hub.cli import cli
    from hub.measure import runner

    words = unwritable_store(kind, tmp_path, monkeypatch)
    monkeypatch.setattr(runner, "_measure", lambda *a, **k: pytest.fail("measured with an unwritable store"))
    done = cli_runner.invoke(cli, ["bench", "all-minilm-l6-v2"])
    lines = done.stderr.strip().splitlines()
    assert done.exit_code == 2 and len(lines) == 1 and lines[0].startswith("Error: "), done.output
    assert words in lines[0] and "nothing was measured" in lines[0] and "Traceback" not in done.output
    with pytest.raises(WriteError, match="nothing was measured"):
        runner.bench("all-minilm-l6-v2")


@pytest.mark.parametrize("as_json", [False, True])
def test_figures_measured_when_the_store_then_fails_are_printed_before_the_error(store, monkeypatch, cli_runner,
                                                                                   as_json):
    """The disk fills while measuring: the figures still reach stdout, then one error line, exit 2."""
    from hub.cli import cli
    from hub.measure import runner

    figures = runner.BenchResult(model="m", model_key="m", task="text-embedding", device="cpu", dtype="fp32",
                                 backend="torch", load_s=1.0, latency_ms_p50=2.0, latency_ms_p90=3.0,
                                 latency_repeats=2, throughput=50.0, best_batch_size=8,
                                 throughput_by_batch={1: 20.0, 8: 50.0})
    monkeypatch.setattr(runner, "_measure", lambda *a, **k: figures)

    def full_disk(*args, **kwargs):
        raise WriteError(f"cannot write '{benchstore.store_path()}': no space left on its disk")

    monkeypatch.setattr(benchstore, "record", full_disk)
    done = cli_runner.invoke(cli, ["bench", "all-minilm-l6-v2", *(["--json"] if as_json else [])])
    assert done.exit_code == 2 and done.stderr.strip().splitlines() == [
        f"Error: cannot write '{benchstore.store_path()}': no space left on its disk"], done.output
    if as_json:
        assert json.loads(done.stdout)["throughput"] == 50.0 and json.loads(done.stdout)["store"] == ""
    else:
        assert "50.0 inputs/s at batch 8" in done.stdout and "not stored (see the error below)" in done.stdout
