"""hub export round trips: each exportable task in each format, measured, then run through hub run.

Every export is built once per module from a tiny model; the checks read its mmhub.yaml (the measured
agreement with the fp32 torch model, within the gate) and compare ``hub run DIR`` with the torch model.
"""
from __future__ import annotations

import json
import os
import re

import pytest
import yaml

from export_models import save_classifier, save_clip, save_embedder, save_timm
from hub.cli import cli

pytestmark = pytest.mark.slow  # exports to ONNX Runtime / OpenVINO

os.environ["HUB_RUNTIME_THREADS"] = "1"  # runtime sessions: one thread each, as the torch side below
DYNAMO = {"embed-onnx"}  # torch's default (dynamo) exporter takes 10-20 s per graph here; the others use TorchScript
TEXTS = ["the cat sat on the mat", "stocks fell 3% today!", "ok"]

# (source builder, task, format, int8)
CASES = {
    "embed-onnx": (save_embedder, "text-embedding", "onnx", False),
    "embed-openvino": (save_embedder, "text-embedding", "openvino", False),
    "embed-onnx-int8": (save_embedder, "text-embedding", "onnx", True),
    "embed-openvino-int8": (save_embedder, "text-embedding", "openvino", True),
    "classify-onnx-int8": (save_classifier, "text-classification", "onnx", True),
    "classify-openvino": (save_classifier, "text-classification", "openvino", False),
    "image-classify-onnx": (save_timm, "image-classification", "onnx", False),
    "image-classify-openvino": (save_timm, "image-classification", "openvino", False),
    "image-embed-onnx-int8": (save_timm, "image-embedding", "onnx", True),
    "image-embed-openvino": (save_timm, "image-embedding", "openvino", False),
    "image-embed-openvino-int8": (save_timm, "image-embedding", "openvino", True),
    "clip-onnx": (save_clip, "zero-shot-image-classification", "onnx", False),
    "clip-openvino": (save_clip, "image-text-similarity", "openvino", False),
}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield tmp_path_factory.mktemp("export")
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def sources(workdir):
    return {builder: builder(workdir / builder.__name__) for builder in {c[0] for c in CASES.values()}}


@pytest.fixture(scope="module")
def exported(workdir, sources):
    """Case name -> (source dir, export dir, CLI output), exported on first use."""
    from click.testing import CliRunner

    done = {}

    def get(name):
        if name not in done:
            builder, task, fmt, int8 = CASES[name]
            out = workdir / name
            args = ["export", str(sources[builder]), "--task", task, "--format", fmt, "--out", str(out)]
            env = {"HUB_ONNX_EXPORTER": "dynamo" if name in DYNAMO else "torchscript"}
            result = CliRunner(env=env).invoke(cli, args + (["--int8"] if int8 else []))
            assert result.exit_code == 0, result.output
            done[name] = (sources[builder], out, result.output)
        return done[name]

    return get


@pytest.fixture(scope="module")
def images(workdir):
    from hub.export.heldout import images

    paths = []
    for i, image in enumerate(images("heldout", count=3)):
        paths.append(str(workdir / f"img{i}.png"))
        image.save(paths[-1])
    return paths


def card(out):
    return yaml.safe_load((out / "mmhub.yaml").read_text())


def hub_run(model, inputs, *extra):
    from click.testing import CliRunner

    result = CliRunner().invoke(cli, ["run", str(model), *inputs, "--json", "--dtype", "fp32", *extra])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def torch_run(source, task, inputs, **kwargs):
    import hub

    return [r.to_dict() for r in hub.run(str(source), inputs, task=task, dtype="fp32", backend="torch", **kwargs)]


@pytest.mark.parametrize("name", list(CASES))
def test_the_export_records_its_measured_agreement_within_the_gate(exported, name):
    source, out, output = exported(name)
    _, task, fmt, int8 = CASES[name]
    data = card(out)
    info = data["options"]["export"]
    assert (data["task"], data["plugin"], info["format"], info["precision"]) == (
        task, {"text-embedding": "transformers", "text-classification": "transformers"}.get(
            task, "openclip" if "clip" in name else "timm"), fmt, "int8" if int8 else "fp32")
    assert info["source_model"] == source.name or info["source_model"] == str(source)
    assert info["opset"] == 18 and info["runtime"].split()[0] in ("onnxruntime", "openvino")
    assert info["exporter"] == f"torch.onnx.export ({'dynamo' if name in DYNAMO else 'torchscript'})"
    quality = info["quality"]
    assert quality["inputs"] >= 12 and quality["reference"] == "fp32 torch"
    if "cosine_min" in quality:
        assert 0.99 <= quality["cosine_min"] <= 1.000001
        assert quality["cosine_min"] > 0.99999 or int8  # fp32 graphs match torch to rounding
    if "top1_agreement" in quality:
        assert quality["top1_agreement"] >= 0.99 and quality["max_score_delta"] < (0.05 if int8 else 1e-4)
    if int8 and fmt == "openvino":  # full int8 (activations too), the transformer preset for text
        preset = "transformer preset, SmoothQuant alpha " if task == "text-embedding" else "calibrated on "
        assert info["quantization"][0].startswith(f"model: NNCF post-training int8 ({preset}"), info["quantization"]
    for graph in info["graphs"].values():
        assert (out / graph).is_file()
    assert not list(out.parent.glob(f".{out.name}*")), "a temporary directory was left beside --out"
    assert "quality against fp32 torch" in output
    assert not list(out.rglob("*.safetensors")), "an export carries no torch weights"
    assert all(p.with_suffix(".xml").is_file() for p in out.rglob("*.bin")), "only OpenVINO's weight files"


@pytest.mark.parametrize("name", ["embed-onnx", "embed-openvino", "embed-onnx-int8", "embed-openvino-int8"])
def test_hub_run_on_an_embedding_export_matches_the_torch_model(exported, name):
    import torch

    source, out, _ = exported(name)
    got = torch.tensor([r["embedding"] for r in hub_run(out, TEXTS)])
    want = torch.tensor([r["embedding"] for r in torch_run(source, "text-embedding", TEXTS)])
    assert torch.allclose(got.norm(dim=1), torch.ones(3), atol=1e-5)  # the normalisation travelled
    cosine = torch.nn.functional.cosine_similarity(got, want).min().item()
    if CASES[name][3]:
        assert cosine > 0.99
    else:
        assert torch.allclose(got, want, atol=1e-5)


@pytest.mark.parametrize("name", ["classify-onnx-int8", "classify-openvino"])
def test_hub_run_on_a_text_classifier_export_matches_the_torch_model(exported, name):
    source, out, _ = exported(name)
    got, want = hub_run(out, TEXTS, "--top-k", "3"), torch_run(source, "text-classification", TEXTS, top_k=3)
    for g, w in zip(got, want):
        assert [x["label"] for x in g["labels"]][0] == [x["label"] for x in w["labels"]][0]
        assert {x["label"] for x in g["labels"]} == {"bad", "neutral", "good"}
        tolerance = 0.05 if CASES[name][3] else 1e-5
        assert all(abs(a["score"] - b["score"]) < tolerance
                   for a, b in zip(sorted(g["labels"], key=lambda x: x["index"]),
                                   sorted(w["labels"], key=lambda x: x["index"])))


@pytest.mark.parametrize("name", ["image-classify-onnx", "image-classify-openvino", "image-embed-openvino"])
def test_hub_run_on_an_image_export_matches_the_torch_model(exported, images, name):
    source, out, _ = exported(name)
    task = CASES[name][1]
    got, want = hub_run(out, images), torch_run(source, task, images)
    for g, w in zip(got, want):
        if task == "image-classification":
            assert [(x["label"], x["index"]) for x in g["labels"]] == [(x["label"], x["index"]) for x in w["labels"]]
            assert all(abs(a["score"] - b["score"]) < 1e-5 for a, b in zip(g["labels"], w["labels"]))
        else:
            assert max(abs(a - b) for a, b in zip(g["embedding"], w["embedding"])) < 1e-4


def test_hub_run_on_a_clip_export_serves_both_clip_tasks(exported, images):
    source, out, _ = exported("clip-onnx")
    labels = ["--label", "a red disc", "--label", "stripes", "--label", "noise"]
    got = hub_run(out, images, *labels)
    want = torch_run(source, "zero-shot-image-classification", images, labels=["a red disc", "stripes", "noise"])
    for g, w in zip(got, want):
        assert [x["label"] for x in g["labels"]] == [x["label"] for x in w["labels"]]
        assert all(abs(a["score"] - b["score"]) < 1e-4 for a, b in zip(g["labels"], w["labels"]))
    got = hub_run(out, images[:1], "--task", "image-text-similarity", "--text", "a photo", "--text", "a cat")
    want = torch_run(source, "image-text-similarity", images[:1], texts=["a photo", "a cat"])
    assert max(abs(a - b) for a, b in zip(got[0]["matrix"][0], want[0]["matrix"][0])) < 1e-4


def test_hub_info_shows_the_export_and_its_quality(exported):
    from click.testing import CliRunner

    _, out, _ = exported("embed-onnx-int8")
    result = CliRunner().invoke(cli, ["info", str(out)])
    assert result.exit_code == 0, result.output
    assert "export:      onnx (onnxruntime" in result.output and "int8" in result.output
    assert re.search(r"quality: +cosine min (0\.99|1\.00)\d+ \(mean .*\) on 24 held-out inputs", result.output)
    assert "int8:        model: onnxruntime dynamic" in result.output
