"""hub recommend: rankings and their one-line explanations for fixed fake bench results, limits that exclude
models, advice from the number of examples, the accuracy data in the catalogue, and bad input."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from hub import benchstore
from hub.cli import cli
from hub.errors import CatalogError
from hub.recommend.advice import data_advice

TIMM_ACC = "timm results/results-imagenet.csv"


@pytest.fixture
def hub_env(tmp_path, monkeypatch, fresh_hub):
    """Only the timm plugin (so the candidates are the catalogue's ResNets), no user catalogue, an empty store."""
    monkeypatch.setenv("HUB_PLUGINS", "timm")
    monkeypatch.setenv("HUB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("HUB_CATALOG", raising=False)
    from hub.plugins import reset_plugin_manager

    reset_plugin_manager()
    return tmp_path


@pytest.fixture
def measured(hub_env):
    """Fake hub bench results for two ResNets on this machine's CPU."""
    benchstore.record("resnet50.a1_in1k", "torch", "bf16", {"latency_ms_p50": 40.0, "throughput": 90.0,
                                                            "peak_memory_bytes": 300e6}, device="cpu")
    benchstore.record("resnet18.a1_in1k", "torch", "bf16", {"latency_ms_p50": 15.0, "throughput": 250.0,
                                                            "peak_memory_bytes": 120e6}, device="cpu")
    return hub_env


def recommend(cli_runner, *args):
    done = cli_runner.invoke(cli, ["recommend", "--task", "image-classification", "--device", "cpu", *args])
    assert done.exit_code == 0, done.output
    return done.stdout.splitlines()


def ranked_ids(lines):
    return [line.split(":")[0].split(". ", 1)[1] for line in lines if line[:1].isdigit()]


def test_the_ranking_follows_published_accuracy_and_each_line_explains_its_rank(measured, cli_runner):
    lines = recommend(cli_runner, "--max-latency-ms", "50")
    assert lines[0] == "Models for image-classification on cpu within 50 ms per input:"
    # this machine's speed from the two measured models: median of 8.22 GFLOPs / 40 ms and 3.64 GFLOPs / 15 ms
    assert ranked_ids(lines) == ["resnet50d.ra2_in1k", "resnet50.a1_in1k", "resnetrs50.tf_in1k", "resnet34.a1_in1k",
                                 "resnet50.tv_in1k", "resnet18.a1_in1k"]
    by_id = {line.split(":")[0].split(" ", 1)[1].strip(): line for line in lines if ": " in line}
    assert by_id["resnet50.a1_in1k"].startswith(
        f"2. resnet50.a1_in1k: ImageNet top-1 80.382 ({TIMM_ACC}); 40 ms per input, 90 inputs/s batched, 300 MB "
        "(measured: measured here by hub bench (cpu, bf16, torch, ")
    assert by_id["resnet50.a1_in1k"].endswith("); fits; 0.2 points below #1, about as fast")
    assert by_id["resnet50d.ra2_in1k"] == (
        f"1. resnet50d.ra2_in1k: ImageNet top-1 80.546 ({TIMM_ACC}); 38.8 ms per input, 153 MB (estimate: 8.7 GFLOPs "
        "per input (published), at 224 GFLOP/s, this machine's speed on 2 measured model(s)); fits; the highest "
        "ImageNet top-1 that fits")
    assert by_id["resnet18.a1_in1k"].endswith("; fits; 9.0 points below #1, 2.6x faster")
    excluded = lines[lines.index("Excluded:") + 1:]
    assert any(line.startswith("-  resnet152.a1h_in1k: ImageNet top-1 82.818") and
               line.endswith("excluded: latency 103 ms (estimate) > 50 ms") for line in excluded)
    assert lines[-1].startswith("Costs marked 'estimate' come from FLOPs or parameters")


def test_limits_exclude_by_measured_and_estimated_cost(measured, cli_runner):
    lines = recommend(cli_runner, "--max-memory", "0.2", "--max-latency-ms", "30")
    assert ranked_ids(lines) == ["resnet18.a1_in1k"]
    excluded = "\n".join(lines[lines.index("Excluded:"):])
    assert "resnet50.a1_in1k" in excluded and "memory 300 MB (measured) > 0.2 GB" in excluded
    assert "latency 40 ms (measured) > 30 ms" in excluded
    assert "resnet152.a1h_in1k" in excluded and "(estimate) > 30 ms" in excluded
    nothing = recommend(cli_runner, "--max-latency-ms", "1")
    assert "(no model fits: loosen the limits, or see the excluded ones)" in nothing


def test_without_measurements_every_cost_is_an_estimate_at_an_assumed_speed(hub_env, cli_runner):
    lines = [line for line in recommend(cli_runner) if line[:1].isdigit()]
    assert len(lines) == 9 and ranked_ids(lines)[0] == "resnet152.a1h_in1k"
    assert all("(estimate: " in line and "at an assumed 50 GFLOP/s for cpu" in line for line in lines)
    assert not any("(measured" in line for line in lines)


def test_json_carries_the_same_ranking_with_costs_marked(measured, cli_runner):
    data = json.loads("\n".join(recommend(cli_runner, "--max-latency-ms", "50", "--examples", "40", "--json")))
    assert data["task"] == "image-classification" and data["device"] == "cpu"
    assert data["constraints"] == {"max_latency_ms": 50.0, "max_memory_gb": None}
    assert [c["rank"] for c in data["ranked"]] == list(range(1, len(data["ranked"]) + 1))
    measured_ids = {c["id"] for c in data["ranked"] if c["cost"]["measured"]}
    assert measured_ids == {"resnet50.a1_in1k", "resnet18.a1_in1k"}
    first = data["ranked"][0]
    assert first["accuracy"] == {"metric": "imagenet-top1", "value": 80.546, "note": "224 px", "source": TIMM_ACC}
    assert first["line"].startswith("1. resnet50d.ra2_in1k: ")
    assert all(c["excluded"] and c["rank"] is None for c in data["excluded"])
    assert data["advice"].startswith("few examples (40): a frozen backbone with a linear head")


def test_a_limit_that_cannot_be_checked_is_said_so(hub_env, cli_runner, tmp_path, monkeypatch):
    catalog = tmp_path / "extra.yaml"
    catalog.write_text("models:\n  mystery-net:\n    task: image-classification\n    plugin: timm\n"
                       "    source: hf-hub:someone/mystery-net\n    arch: resnet18\n")
    monkeypatch.setenv("HUB_CATALOG", str(catalog))
    lines = recommend(cli_runner, "--max-latency-ms", "1000")
    (line,) = [line for line in lines if "mystery-net" in line]
    assert "no published accuracy in the catalogue; cost unknown (no FLOPs or parameter count in the catalogue)" in line
    assert line.endswith("(latency not checked: cost unknown)")


@pytest.mark.parametrize("value, text", [(0.5123, "0.512"), (38.84, "38.8"), (999.4, "999"), (3241.2, "3,241"),
                                         (1_250_000.0, "1,250,000")])
def test_figures_have_three_significant_digits_and_never_an_exponent(value, text):
    from hub.recommend.cost import figure_text

    assert figure_text(value) == text


@pytest.mark.parametrize("nbytes, text", [(850e3, "850 kB"), (190e6, "190 MB"), (2.414e9, "2.41 GB")])
def test_sizes_are_in_the_decimal_units_max_memory_takes(nbytes, text):
    from hub.recommend.cost import size_text

    assert size_text(nbytes) == text


def test_slow_models_and_large_limits_read_without_exponents(hub_env, cli_runner):
    benchstore.record("resnet18.a1_in1k", "torch", "fp32", {"latency_ms_p50": 2500.0, "throughput": 0.4}, device="cpu")
    lines = recommend(cli_runner, "--max-latency-ms", "150000")
    assert lines[0] == "Models for image-classification on cpu within 150,000 ms per input:"
    (line,) = [line for line in lines if " resnet18.a1_in1k: " in line]
    assert "2,500 ms per input, 0.4 inputs/s batched" in line
    text = "\n".join(lines)
    assert "(estimate: 23.1 GFLOPs per input (published), at 1 GFLOP/s" in text
    assert "15,879 ms per input" in text and "e+" not in text  # resnet152: 23.12 GFLOPs x 2500 ms / 3.64 GFLOPs


@pytest.mark.parametrize("examples, start", [
    (0, "no labelled examples: use the models' own labels as they are, or no training at all: hub recommend "
        "--task zero-shot-image-classification"),
    (50, "few examples (50): a frozen backbone with a linear head (hub finetune MODEL --data FILE --freeze-backbone)"),
    (500, "some examples (500): train the head, then the last blocks"),
    (50_000, "many examples (50000): a full fine-tune (hub finetune MODEL --data FILE) pays off"),
])
def test_advice_follows_the_number_of_examples(examples, start, hub_env):
    assert data_advice("image-classification", examples).startswith(start)


def test_advice_for_tasks_that_need_no_training_or_give_embeddings(hub_env):
    assert data_advice("image-classification", None) is None
    assert "needs no training" in data_advice("zero-shot-image-classification", 10)
    assert data_advice("text-embedding", 10).startswith("10 examples: use the embeddings as they are")
    assert "fine-tune the embedder" in data_advice("text-embedding", 10_000)


@pytest.mark.parametrize("task", ["translation", "summarization", "text-generation", "image-captioning"])
def test_generators_are_not_advised_a_linear_head(task, hub_env):
    for few in (0, 50, 500):
        advice = data_advice(task, few)
        assert advice.startswith(f"{few} examples: use the pretrained model as it is")
        assert "--freeze-backbone" not in advice
    assert data_advice(task, 5000).startswith("many examples (5000): a full fine-tune (hub finetune MODEL --data FILE")


BAD = {
    "unknown task": (["--task", "imag-clasification"], "Did you mean: image-classification"),
    "no task": ([], "--task"),
    "negative examples": (["--task", "image-classification", "--examples", "-1"], "--examples"),
    "zero latency": (["--task", "image-classification", "--max-latency-ms", "0"], "--max-latency-ms"),
    "word for memory": (["--task", "image-classification", "--max-memory", "lots"], "--max-memory"),
    "bad device": (["--task", "image-classification", "--device", "tpu"], "tpu"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_one_line_and_exit_2(case, hub_env, cli_runner):
    args, expected = BAD[case]
    done = cli_runner.invoke(cli, ["recommend", *args])
    assert done.exit_code == 2, done.output
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:") and expected in lines[0], done.stderr
    assert "Traceback" not in done.output


@pytest.mark.slow
def test_recommend_reads_only_the_catalogue_and_the_store_without_importing_torch(measured):
    code = ("import sys; from hub.recommend import recommend; r = recommend('image-classification', device='cpu'); "
            "assert r.ranked; assert 'torch' not in sys.modules, 'torch was imported'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


# -- the accuracy data in the catalogue ------------------------------------------------------------------------------
def test_every_published_figure_in_the_shipped_catalogue_names_its_source():
    from hub.pinning import shipped_files
    from hub.registry import read_catalog_file

    specs = [spec for path in shipped_files() for spec in read_catalog_file(path)]  # the hub's and the plugins' files
    with_accuracy = [s for s in specs if s.accuracy]
    assert {s.id for s in with_accuracy} >= {"resnet50.a1_in1k", "clip-vit-b-32-openai", "bge-small-en-v1.5"}
    assert all(s.accuracy["source"].strip() and 0 < s.accuracy["value"] <= 100 for s in with_accuracy)
    assert all(s.flops["source"].strip() for s in specs if s.flops)


BAD_FIELDS = {
    "not a mapping": ("accuracy: 80.4", "expected dict"),
    "no source": ("accuracy: {metric: imagenet-top1, value: 80.4}", "'source' is required"),
    "no metric": ("accuracy: {value: 80.4, source: x}", "'metric' is required"),
    "value not a number": ("accuracy: {metric: m, value: high, source: x}", "'value' must be a percentage"),
    "value over 100": ("accuracy: {metric: m, value: 180, source: x}", "'value' must be a percentage"),
    "unknown key": ("accuracy: {metric: m, value: 1, source: x, year: 2020}", "unknown key(s) year"),
    "flops without source": ("flops: {gmacs: 4.1}", "'source' is required"),
    "flops both units": ("flops: {gmacs: 4.1, gflops: 8.2, source: x}", "exactly one of"),
    "flops negative": ("flops: {gflops: -1, source: x}", "positive number"),
}


@pytest.mark.parametrize("case", sorted(BAD_FIELDS))
def test_a_bad_accuracy_or_flops_field_names_the_file_entry_and_field(case, tmp_path):
    from hub.registry import read_catalog_file

    line, expected = BAD_FIELDS[case]
    path = tmp_path / "catalog.yaml"
    path.write_text(f"models:\n  m:\n    task: image-classification\n    plugin: timm\n    source: x\n    {line}\n")
    with pytest.raises(CatalogError) as caught:
        read_catalog_file(path)
    field = line.split(":")[0]
    assert f"entry 'm', field '{field}'" in str(caught.value) and expected in str(caught.value)


def test_hub_info_shows_the_published_figures_with_their_sources(hub_env, cli_runner):
    done = cli_runner.invoke(cli, ["info", "resnet50.a1_in1k"])
    assert done.exit_code == 0, done.output
    assert f"accuracy:    ImageNet top-1 80.382, 224 px ({TIMM_ACC})" in done.stdout.splitlines()
    assert "flops:       4.11 GMACs per input, 224 px (timm results/" in done.stdout
