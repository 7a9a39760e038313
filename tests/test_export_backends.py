"""The backend choice: --backend / HUB_BACKEND in the device manager, auto from stored bench figures,
exports on first use in the hub cache, and exported directories on their own runtime."""
from __future__ import annotations

import json
import os

import pytest

from export_models import save_classifier
from hub.cli import cli

pytestmark = pytest.mark.slow  # exports to ONNX Runtime / OpenVINO

os.environ["HUB_RUNTIME_THREADS"] = "1"
TEXTS = ["good film", "bad plot, fine actors", "ok"]


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    return save_classifier(tmp_path_factory.mktemp("models") / "classifier")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HUB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HUB_ONNX_EXPORTER", "torchscript")
    monkeypatch.delenv("HUB_BACKEND", raising=False)
    return tmp_path / "cache"


def manager(backend, dtype="fp32"):
    from hub.device import get_device_manager

    return get_device_manager("cpu", dtype, backend)


def test_auto_picks_the_backend_measured_fastest_at_the_dtype(classifier, cache):
    from hub import benchstore
    from hub.api import get_spec
    from hub.export.backends import choose

    spec = get_spec(str(classifier))
    key = benchstore.model_key(spec)  # a local directory is stored under its path, as hub bench stores it
    assert choose(spec, manager("auto")) == "torch"  # nothing measured: torch, as before
    benchstore.record(key, "torch", "fp32", {"throughput": 100.0})
    benchstore.record(key, "onnx", "fp32", {"throughput": 180.0})
    benchstore.record(key, "openvino", "fp32", {"throughput": 150.0})
    benchstore.record(key, "openvino", "bf16", {"throughput": 300.0})
    benchstore.record(key, "torch", "bf16", {"throughput": 250.0})
    assert choose(spec, manager("auto")) == "onnx"
    assert choose(spec, manager("auto", "bf16")) == "openvino"
    assert choose(spec, manager("torch")) == "torch" and choose(spec, manager("openvino")) == "openvino"
    benchstore.record(key, "torch", "fp32", {"throughput": 500.0})
    assert choose(spec, manager("auto")) == "torch"


def test_auto_runs_the_fastest_runtime_through_an_export_made_once_in_the_hub_cache(classifier, cache, one_thread):
    import hub
    from hub import benchstore
    from mmhub_transformers.loading import RuntimeModel

    benchstore.record(benchstore.model_key(hub.api.get_spec(str(classifier))), "onnx", "fp32", {"throughput": 999.0})
    with pytest.warns(UserWarning, match="exporting to onnx on first use into"):
        pipe = hub.load(str(classifier), device="cpu", dtype="fp32", backend="auto", cache=False)
    assert isinstance(pipe.model, RuntimeModel)
    (card,) = (cache / "exports").glob("*/text-classification-onnx-fp32-onnxruntime-*/mmhub.yaml")
    stamp = card.stat().st_mtime_ns
    again = hub.load(str(classifier), device="cpu", dtype="fp32", backend="auto", cache=False)  # no new export
    assert isinstance(again.model, RuntimeModel) and card.stat().st_mtime_ns == stamp
    torch_pipe = hub.load(str(classifier), device="cpu", dtype="fp32", backend="torch", cache=False)
    for got, want in zip(again(TEXTS, top_k=3), torch_pipe(TEXTS, top_k=3)):
        assert [x.label for x in got.labels] == [x.label for x in want.labels]
        assert max(abs(a.score - b.score) for a, b in zip(got.labels, want.labels)) < 1e-5
    assert not list(classifier.glob("*.onnx")), "nothing is written beside the user's model"


def run_json(*args, env=None):
    from click.testing import CliRunner

    result = CliRunner(env=env).invoke(cli, ["run", *map(str, args), "--json", "--dtype", "fp32"])
    return result.exit_code, result.stdout if result.exit_code == 0 else result.output


@pytest.mark.parametrize("backend", ["onnx", "openvino"])
def test_hub_run_backend_runs_a_local_model_on_the_runtime_and_matches_torch(classifier, cache, backend, one_thread):
    code, output = run_json(classifier, *TEXTS, "--backend", backend)
    assert code == 0, output
    code, torch_output = run_json(classifier, *TEXTS, "--backend", "torch")
    assert code == 0, torch_output
    for got, want in zip(json.loads(output), json.loads(torch_output)):
        assert [x["index"] for x in got["labels"]] == [x["index"] for x in want["labels"]]
        assert max(abs(a["score"] - b["score"]) for a, b in zip(got["labels"], want["labels"])) < 1e-5
    assert list((cache / "exports").glob(f"*/text-classification-{backend}-fp32-*/mmhub.yaml"))


@pytest.fixture
def exported(classifier, tmp_path, cache, one_thread):
    from hub.export.api import export

    export(str(classifier), "onnx", tmp_path / "exported")
    return tmp_path / "exported"


def test_an_export_runs_on_its_runtime_and_refuses_torch_by_name(exported):
    code, auto = run_json(exported, *TEXTS)
    assert code == 0, auto
    code, openvino = run_json(exported, *TEXTS, "--backend", "openvino")  # OpenVINO reads the ONNX file too
    assert code == 0, openvino
    for a, b in zip(json.loads(auto), json.loads(openvino)):
        assert max(abs(x["score"] - y["score"]) for x, y in zip(a["labels"], b["labels"])) < 1e-4
    code, output = run_json(exported, "text", "--backend", "torch")
    assert code == 2 and "is an onnx export without torch weights; it runs on backend onnx or openvino" in output
    assert len(output.strip().splitlines()) == 1
    code, output = run_json(exported, "text", env={"HUB_BACKEND": "torch"})
    assert code == 2 and "not 'torch'" in output


def test_auto_runs_an_onnx_export_on_the_runtime_hub_bench_measured_faster(exported):
    """hub bench stores an export under its path; auto then takes OpenVINO for the ONNX graph if it was faster."""
    from hub import benchstore
    from hub.api import get_spec
    from hub.export.backends import choose

    spec = get_spec(str(exported))
    assert choose(spec, manager("auto")) == "onnx"  # nothing measured: the export's own runtime
    benchstore.record(benchstore.model_key(spec), "onnx", "fp32", {"throughput": 100.0})
    benchstore.record(benchstore.model_key(spec), "openvino", "fp32", {"throughput": 140.0})
    assert choose(spec, manager("auto")) == "openvino"
    assert choose(spec, manager("onnx")) == "onnx"  # asked for by name: as asked


@pytest.mark.parametrize("value", ["tensorrt", "ONNX-RT", "1"])
def test_a_bad_hub_backend_is_named_before_anything_loads(classifier, value):
    code, output = run_json(classifier, "text", env={"HUB_BACKEND": value})
    assert code == 2 and f"HUB_BACKEND={value!r} is not a backend; use one of torch, onnx, openvino, auto" in output


def test_the_device_manager_reports_and_keys_its_cache_by_backend(monkeypatch):
    from hub.device import DeviceManager, get_device_manager

    monkeypatch.setenv("HUB_BACKEND", "openvino")
    assert DeviceManager("cpu", "fp32").backend == "openvino"
    assert DeviceManager("cpu", "fp32", "torch").backend == "torch"
    assert get_device_manager("cpu", "fp32", "onnx") is not get_device_manager("cpu", "fp32", "torch")
    assert get_device_manager("cpu", "fp32", "onnx").describe()["backend"] == "onnx"


def test_a_catalogue_entry_pointing_at_an_export_runs_on_its_runtime(exported, tmp_path, monkeypatch, fresh_hub):
    import yaml

    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(yaml.safe_dump({"models": {"my-classifier-onnx": {
        "task": "text-classification", "plugin": "transformers", "source": str(exported)}}}))
    monkeypatch.setenv("HUB_CATALOG", str(catalog))
    from hub.plugins import reset_plugin_manager

    reset_plugin_manager()
    code, by_id = run_json("my-classifier-onnx", *TEXTS)
    assert code == 0, by_id
    code, by_path = run_json(exported, *TEXTS)
    assert json.loads(by_id) == json.loads(by_path)


def test_the_server_serves_an_export_with_the_same_answers_as_hub_run(exported):
    httpx = pytest.importorskip("httpx")
    pytest.importorskip("fastapi")
    import hub
    from serve_server import hub_app, running

    expected = [r.to_dict() for r in hub.run(str(exported), TEXTS, dtype="fp32", top_k=3)]
    with running(hub_app(preload=(str(exported),))) as url:
        ready = httpx.get(f"{url}/ready").json()
        answer = httpx.post(f"{url}/v1/run/exported", json={"inputs": TEXTS, "options": {"top_k": 3}}).json()
    assert "exported" in ready["models"] and answer["task"] == "text-classification"
    for got, want in zip(answer["results"], expected):
        assert [x["label"] for x in got["labels"]] == [x["label"] for x in want["labels"]]
        assert max(abs(a["score"] - b["score"]) for a, b in zip(got["labels"], want["labels"])) < 1e-5
