"""A plugin's own kind of training runs through the shared loop (hub.train.kinds, TrainKind, SummedMetrics).

The kind is a third party's (tests/_train_regression.py): a task the hub does not know
(``digit-value``), data read by the plugin, an MSE loss, and metrics named by the plugin (mae,
lower is better; within_1; loss). The loop gives it everything it gives the built-in kinds:
accumulation and schedules, best-checkpoint choice by ``--metric``, resume, two ranks under
torchrun with metrics summed across them, metrics.jsonl and the plot, and ``hub eval``.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # trains tiny models

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
import _train_regression as R  # noqa: E402

from hub.errors import HubError, PluginError  # noqa: E402

FAST = dict(epochs=4, batch_size=32, precision="fp32", progress=False, seed=0)


@pytest.fixture
def reg_hub(fresh_hub, one_thread, monkeypatch):
    monkeypatch.setenv("HUB_PLUGINS", "")
    R.FAIL_AT["batches"] = None
    yield R.register()
    R.FAIL_AT["batches"] = None


@pytest.fixture
def rows(tmp_path):
    return R.write_rows(tmp_path / "train.jsonl", range(0, 600)), R.write_rows(tmp_path / "val.jsonl", range(600, 800))


def test_a_plugin_kind_learns_through_the_loop(reg_hub, rows, tmp_path):
    """Its metrics pick the best checkpoint (mae, lower is better), go to metrics.jsonl, the plot and mmhub.yaml."""
    from hub.train.api import evaluate, finetune

    train, val = rows
    before = evaluate("digit-reg", val, precision="fp32")
    result = finetune("digit-reg", train, val=val, out=tmp_path / "out", grad_accum=2, schedule="cosine",
                      eval_every=5, **FAST)
    out = result.out_dir
    print("untrained:", before["mae"], "trained:", result.metrics["mae"], result.metrics["within_1"])
    assert result.metric == "mae" and result.metrics["mae"] < 0.5 * before["mae"]
    assert result.metrics["count"] == 200 and result.steps == 4 * 10  # 19 batches of 32, 2 per step
    logged = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    val_rows = [r for r in logged if r["split"] == "val"]
    assert {"mae", "within_1", "loss"} <= set(val_rows[0]) and len(val_rows) >= 6
    assert result.best_metric == min(r["mae"] for r in val_rows)  # lower is better, as the kind declares
    assert (out / "training_curves.png").stat().st_size > 0
    card = (out / "mmhub.yaml").read_text()
    assert "task: digit-value" in card and "metric: mae" in card
    again = evaluate(str(out), val, precision="fp32")  # hub eval reproduces metrics.json
    recorded = json.loads((out / "metrics.json").read_text())
    for key in ("mae", "within_1", "loss"):
        assert again[key] == pytest.approx(recorded[key], abs=1e-5)


def test_metric_picks_the_best_by_a_higher_is_better_name(reg_hub, rows, tmp_path):
    from hub.train.api import finetune

    train, val = rows
    result = finetune("digit-reg", train, val=val, out=tmp_path / "out", metric="within_1", eval_every=4, **FAST)
    logged = [json.loads(line) for line in (result.out_dir / "metrics.jsonl").read_text().splitlines()]
    assert result.metric == "within_1"
    assert result.best_metric == max(r["within_1"] for r in logged if r["split"] == "val")


def test_an_unknown_metric_names_the_kinds_metrics(reg_hub, rows, tmp_path, cli_runner):
    from hub.cli import cli
    from hub.train.api import finetune

    train, val = rows
    with pytest.raises(HubError, match=r"metric 'f1_macro' is not computed for regression training; choose one "
                                       r"of: mae, within_1, loss"):
        finetune("digit-reg", train, val=val, out=tmp_path / "a", metric="f1_macro", **FAST)
    assert not (tmp_path / "a").exists()  # refused before anything was written
    res = cli_runner.invoke(cli, ["finetune", "digit-reg", "--data", str(train), "--metric", "wer",
                                  "--out", str(tmp_path / "b")])
    assert res.exit_code == 2 and "mae, within_1, loss" in res.output and "Traceback" not in res.output
    assert len(res.output.strip().splitlines()) == 1


def test_bad_rows_are_reported_like_the_rest(reg_hub, tmp_path):
    from hub.train.api import finetune

    train = R.write_rows(tmp_path / "train.jsonl", range(100), extra=['{"digit": 99999, "value": 1}',
                                                                       '{"digit": 3}', "not json"])
    with pytest.warns(UserWarning, match=r"skipped 3 bad training rows: train.jsonl:101: no digit index"):
        result = finetune("digit-reg", train, out=tmp_path / "out", **{**FAST, "epochs": 1})
    assert result.train_rows + result.val_rows == 100 and len(result.problems) == 3
    with pytest.raises(HubError, match=r"has 3 bad rows: .*train.jsonl:102: no numeric value"):
        finetune("digit-reg", train, out=tmp_path / "strict", on_bad_rows="error", **FAST)
    with pytest.raises(HubError, match="does not exist"):
        finetune("digit-reg", tmp_path / "nowhere.jsonl", out=tmp_path / "x", **FAST)


def test_resume_ends_with_the_weights_of_an_uninterrupted_run(reg_hub, rows, tmp_path):
    from safetensors.torch import load_file

    from hub.train.api import finetune

    train, val = rows
    args = dict(val=val, save_every=3, **FAST)
    whole = finetune("digit-reg", train, out=tmp_path / "whole", **args)
    R.FAIL_AT["batches"] = 25  # stops during the second epoch
    with pytest.raises(Exception, match="stopped on purpose"):
        finetune("digit-reg", train, out=tmp_path / "cut", **args)
    R.FAIL_AT["batches"] = None
    resumed = finetune("digit-reg", train, out=tmp_path / "cut", resume=True, **args)
    assert resumed.steps == whole.steps and resumed.metrics["mae"] == pytest.approx(whole.metrics["mae"], abs=1e-6)
    a, b = load_file(str(whole.out_dir / "model.safetensors")), load_file(str(resumed.out_dir / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_two_ranks_sum_the_kinds_metrics(tmp_path, rows):
    """Under torchrun (two gloo processes) every validation row is counted once, and the saved model
    measured in this process gives the metrics the two ranks reported."""
    train, val = rows
    out = tmp_path / "two"
    env = {**os.environ, "HUB_PLUGINS": "", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(HERE / "_train_regression.py"), str(train), str(val), str(out),
           json.dumps({"epochs": 2, "batch_size": 32, "precision": "fp32"})]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 1  # only rank 0 reports
    reported = json.loads(lines[0])
    assert reported["metrics"]["count"] == reported["val_rows"] == 200
    assert reported["steps"] == 2 * 10  # 300 rows per rank, batches of 32
    recorded = json.loads((out / "metrics.json").read_text())
    assert recorded["mae"] == pytest.approx(reported["metrics"]["mae"], abs=1e-6)


def test_hub_eval_of_a_plugin_kind_from_the_cli(reg_hub, rows, tmp_path, cli_runner):
    from hub.cli import cli
    from hub.train.api import finetune

    train, val = rows
    out = finetune("digit-reg", train, val=val, out=tmp_path / "out", **{**FAST, "epochs": 1}).out_dir
    res = cli_runner.invoke(cli, ["eval", str(out), "--data", str(val), "--json", "--precision", "fp32"])
    assert res.exit_code == 0, res.output
    shown = json.loads(res.output)
    assert shown["mae"] == pytest.approx(json.loads((out / "metrics.json").read_text())["mae"], abs=1e-5)


def test_a_kind_that_breaks_its_contract_is_the_plugins_fault(reg_hub, rows, tmp_path):
    from hub.train.adapter import TrainKind
    from hub.train.api import finetune

    train, val = rows
    reg_hub.kind_factory = lambda: R.kind(names=("mae", "within_1", "loss", "r2"))  # never reports r2
    with pytest.raises(HubError, match=r"did not report r2, which the training kind declares"):
        finetune("digit-reg", train, val=val, out=tmp_path / "a", **FAST)
    reg_hub.kind_factory = lambda: "regression"  # a kind the hub does not have, not a TrainKind
    with pytest.raises(PluginError, match=r"unknown kind 'regression'"):
        finetune("digit-reg", train, val=val, out=tmp_path / "b", **FAST)
    with pytest.raises(HubError, match=r"default_metric 'mae' is not among its metric_names \(r2\)"):
        TrainKind(name="x", read=R.read, metrics=R.metrics, metric_names=("r2",), default_metric="mae")


def test_the_built_in_kinds_keep_their_metrics():
    from hub.train.evaluation import is_lower_better, metric_names, resolve_metric

    assert resolve_metric("classification", None) == "accuracy" and resolve_metric("ctc", "accuracy") == "wer"
    assert metric_names("contrastive")[0] == "recall@1" and is_lower_better("ctc", "wer")
    kind = R.kind()
    assert resolve_metric(kind, "accuracy") == "mae" and is_lower_better(kind, "mae")
    assert not is_lower_better(kind, "within_1") and is_lower_better(kind, "loss")


def test_segmentation_report_counts_iou_over_present_classes():
    import numpy as np

    from hub.train.metrics import segmentation_report

    cm = np.array([[8, 2, 0], [1, 3, 0], [0, 0, 0]])  # class 2 absent from truth and predictions
    report = segmentation_report(cm, ["bg", "a", "b"])
    assert report["per_class"]["bg"]["iou"] == pytest.approx(8 / 11)
    assert report["per_class"]["a"]["iou"] == pytest.approx(3 / 6)
    assert report["miou"] == pytest.approx((8 / 11 + 3 / 6) / 2)
    assert report["pixel_accuracy"] == pytest.approx(11 / 14) and report["pixels"] == 14
    assert report["mean_class_accuracy"] == pytest.approx((8 / 10 + 3 / 4) / 2)
