"""The Trainer and the finetune/eval API and CLI, driven by a pure-torch digits adapter."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).parent))
import _train_digits as D  # noqa: E402

from hub.train import checkpoint as ckpt  # noqa: E402
from hub.train.batching import MEGA_BATCHES, epoch_batches  # noqa: E402
from hub.train.loop import TrainConfig, Trainer  # noqa: E402

LABELS = [str(i) for i in range(10)]


pytestmark = [pytest.mark.usefixtures("one_thread"), pytest.mark.slow]  # tiny models: one thread is faster


@pytest.fixture
def digits_hub(fresh_hub, monkeypatch):
    """Only the digits test plugin is installed."""
    monkeypatch.setenv("HUB_PLUGINS", "")
    D.register()


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("digits")
    D.write_image_folder(root / "train", 700)
    test = root / "test"
    x, target = D.digits()
    import numpy as np
    from PIL import Image

    for i in range(1400, 1700):  # held out: never seen in training or validation
        folder = test / str(int(target[i]))
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray((x[i].reshape(8, 8) * 255).astype(np.uint8), mode="L").save(folder / f"{i}.png")
    return root


def _config(**kw):
    base = dict(epochs=1, lr=3e-3, head_lr_mult=1.0, batch_size=32, precision="fp32", progress=False)
    base.update(kw)
    return TrainConfig(**base)


def test_learns_digits_and_output_is_a_model(digits_hub, folders, tmp_path):
    from hub.api import get_spec
    from hub.train.api import evaluate, finetune

    out = tmp_path / "run"
    result = finetune("digits-mlp", folders / "train", epochs=5, lr=3e-3, head_lr_mult=1.0, batch_size=32,
                      eval_every=12, out=out, progress=False)
    assert result.metric == "accuracy" and result.metrics["accuracy"] >= 0.9
    assert result.train_rows + result.val_rows == 700 and result.val_rows >= 130
    spec = get_spec(str(out))
    assert spec.task == "image-classification" and spec.plugin == "digits-test"
    assert spec.options["labels"] == LABELS and spec.options["base_model"] == "digits-mlp"
    # the saved weights are the best checkpoint's
    best = ckpt.pointer(out / "checkpoints", "best")
    assert ckpt.load_state(best)["step"] == result.best_step
    saved, kept = load_file(str(out / "model.safetensors")), load_file(str(best / "model.safetensors"))
    assert all(torch.equal(saved[k], kept[k]) for k in saved)
    assert json.loads((out / "metrics.json").read_text())["accuracy"] == result.metrics["accuracy"]
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert {r["split"] for r in rows} == {"train", "val"}
    assert (out / "training_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    held_out = evaluate(str(out), folders / "test", precision="fp32")
    assert held_out["accuracy"] >= 0.85 and held_out["count"] == 300
    assert set(held_out["per_class"]) == set(LABELS) and len(held_out["confusion"]) == 10


def test_grad_accumulation_matches_a_big_batch(tmp_path):
    """32 x 1 and 16 x 2 give the same weights (fp32, no dropout, no length grouping)."""
    records = D.index_records(256)
    weights = []
    for batch_size, accum in ((32, 1), (16, 2)):
        torch.manual_seed(0)  # the same initial weights
        adapter = D.make_adapter(LABELS, dropout=0.0)
        cfg = _config(batch_size=batch_size, grad_accum=accum, group_by_length=False, warmup=0.2)
        result = Trainer(adapter, records, [], cfg, tmp_path / f"b{batch_size}").fit()
        assert result.step == 8
        weights.append({k: v.clone() for k, v in adapter.module.state_dict().items()})
    for name in weights[0]:
        torch.testing.assert_close(weights[0][name], weights[1][name], rtol=0, atol=1e-5, msg=name)


def test_length_grouped_batches():
    lengths = [(i * 37) % 101 for i in range(3000)]
    batches = epoch_batches(3000, 16, seed=3, epoch=0, lengths=lengths)
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(3000))
    assert batches == epoch_batches(3000, 16, seed=3, epoch=0, lengths=lengths)
    assert batches != epoch_batches(3000, 16, seed=3, epoch=1, lengths=lengths)
    spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches) / len(batches)
    plain = epoch_batches(3000, 16, seed=3, epoch=0)
    plain_spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in plain) / len(plain)
    assert spread < plain_spread / 5  # far less padding
    assert MEGA_BATCHES == 50
    shards = [epoch_batches(3000, 16, 3, 0, lengths, rank=r, world_size=2) for r in (0, 1)]
    assert len(shards[0]) == len(shards[1])
    assert not {i for b in shards[0] for i in b} & {i for b in shards[1] for i in b}


def test_freeze_backbone_trains_only_the_head(tmp_path):
    records = D.index_records(200)
    adapter = D.make_adapter(LABELS)
    before = {k: v.clone() for k, v in adapter.module.state_dict().items()}
    Trainer(adapter, records[:160], records[160:], _config(freeze_backbone=True), tmp_path).fit()
    after = adapter.module.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed == {"head.weight", "head.bias"}


def test_early_stopping(tmp_path):
    records = D.index_records(320)
    cfg = _config(lr=1e-12, head_lr_mult=1.0, eval_every=2, patience=2, epochs=3, metric="f1_macro")
    result = Trainer(D.make_adapter(LABELS), records[:256], records[256:], cfg, tmp_path).fit()
    assert result.stopped_early and result.step == 6 and result.best_step == 2
    again = Trainer(D.make_adapter(LABELS), records[:256], records[256:], cfg, tmp_path, resume=True).fit()
    assert again.stopped_early and again.step == 6  # a stopped run stays stopped


def _adapter(kind, predict, collate=None):
    from hub.train.adapter import TrainAdapter

    return TrainAdapter(module=torch.nn.Linear(1, 1), kind=kind, load_example=lambda r, train: r,
                        collate=collate or (lambda rows: {"rows": rows}), loss=None, predict=predict, save=None)


def test_contrastive_and_ctc_evaluation():
    from hub.device import DeviceManager
    from hub.train.adapter import Record
    from hub.train.evaluation import evaluate_module

    dm = DeviceManager("cpu", "fp32")
    pairs = [Record(input=i, text=f"caption {i}") for i in range(6)]

    def embed(module, batch):  # image i and caption i share a one-hot direction; image 5 points at caption 4
        eye = torch.eye(6)
        images = torch.stack([eye[min(r.input, 4)] for r in batch["rows"]])
        return images, torch.stack([eye[r.input] for r in batch["rows"]])

    got = evaluate_module(_adapter("contrastive", embed), torch.nn.Linear(1, 1), pairs, dm, batch_size=6)
    assert got["i2t_recall@1"] == got["t2i_recall@1"] == pytest.approx(5 / 6) and got["count"] == 6
    clips = [Record(input=0, text="the cat sat"), Record(input=1, text="on the mat")]
    hyps = {0: "the cat sat", 1: "on a mat"}
    got = evaluate_module(_adapter("ctc", lambda m, b: [hyps[r.input] for r in b["rows"]]),
                          torch.nn.Linear(1, 1), clips, dm, batch_size=1)
    assert got["wer"] == pytest.approx(1 / 6) and got["cer"] == pytest.approx(3 / 21)  # "the" -> "a": 3 of 21 characters


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_keeps_fp32_master_weights(tmp_path, precision):
    records = D.index_records(200)
    adapter = D.make_adapter(LABELS)
    result = Trainer(adapter, records[:160], records[160:], _config(precision=precision, epochs=2), tmp_path).fit()
    assert all(p.dtype == torch.float32 for p in adapter.module.parameters())
    assert result.metrics["loss"] < 2.3  # it learned something (chance is ln 10 = 2.30)


def test_max_steps_stops_mid_epoch(tmp_path):
    records = D.index_records(320)
    result = Trainer(D.make_adapter(LABELS), records[:256], records[256:], _config(max_steps=3), tmp_path).fit()
    assert result.step == 3 and result.epoch == 0 and result.metrics


def test_unknown_metric_is_named(tmp_path):
    from hub.errors import HubError

    with pytest.raises(HubError, match="metric 'wer' is not computed for classification"):
        Trainer(D.make_adapter(LABELS), D.index_records(50), [], _config(metric="wer"), tmp_path)


# -- the command line ----------------------------------------------------------------------------
def test_cli_finetune_and_eval(digits_hub, folders, tmp_path, cli_runner):
    from hub.cli import cli

    out = tmp_path / "cli-run"
    res = cli_runner.invoke(cli, ["finetune", "digits-mlp", "--data", str(folders / "train"), "--out", str(out),
                                  "--max-steps", "30", "--lr", "0.003", "--batch-size", "16", "--precision", "fp32"])
    assert res.exit_code == 0, res.output
    assert f"Saved the model to {out}" in res.output
    res = cli_runner.invoke(cli, ["eval", str(out), "--data", str(folders / "test"), "--json"])
    assert res.exit_code == 0, res.output
    metrics = json.loads(res.output[res.output.index("{"):])
    assert metrics["accuracy"] > 0.5 and metrics["count"] == 300
    res = cli_runner.invoke(cli, ["info", str(out)])
    assert res.exit_code == 0 and "image-classification" in res.output
    res = cli_runner.invoke(cli, ["finetune", "digits-mlp", "--data", str(folders / "train"), "--out", str(out)])
    assert res.exit_code == 2 and "--resume" in res.output


def test_cli_bad_input_exits_2_without_traceback(digits_hub, folders, tmp_path, cli_runner):
    from hub.cli import cli

    res = cli_runner.invoke(cli, ["finetune", "digits-mlp", "--data", str(tmp_path / "nowhere")])
    assert res.exit_code == 2 and "does not exist" in res.output and "Traceback" not in res.output
    res = cli_runner.invoke(cli, ["finetune", "digits-mlp", "--data", str(folders / "train"), "--task", "fill-mask",
                                  "--out", str(tmp_path / "x")])
    assert res.exit_code == 2 and "cannot serve the task 'fill-mask'" in res.output and "Traceback" not in res.output
    res = cli_runner.invoke(cli, ["finetune", "digits-mlp", "--data", str(folders / "train"), "--task",
                                  "image-embedding", "--out", str(tmp_path / "x")])
    assert res.exit_code == 2 and "cannot be fine-tuned" in res.output and "Traceback" not in res.output
    res = cli_runner.invoke(cli, ["eval", "digits-mlp", "--data", str(tmp_path / "nowhere")])
    assert res.exit_code == 2 and "does not exist" in res.output
    empty = tmp_path / "empty.csv"
    empty.write_text("text,label\n")
    res = cli_runner.invoke(cli, ["finetune", "digits-mlp", "--data", str(empty), "--out", str(tmp_path / "y")])
    assert res.exit_code == 2 and "Error:" in res.output and "Traceback" not in res.output
