"""Checkpoints: atomic writes, weights_only state, RNG round trip, and kill -9 + resume."""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
import _train_digits as D  # noqa: E402

from hub.train import checkpoint as ckpt  # noqa: E402
from hub.train.loop import TrainConfig, Trainer  # noqa: E402

LABELS = [str(i) for i in range(10)]


pytestmark = [pytest.mark.usefixtures("one_thread"), pytest.mark.slow]  # tiny models: one thread is faster


def _state(step: int) -> dict:
    return {"step": step, "epoch": 0, "batch_in_epoch": step, "rng": ckpt.rng_state(), "args": {"lr": 0.1},
            "best": None}


def test_save_and_load_roundtrip(tmp_path):
    module = D.build_module()
    path = ckpt.save_checkpoint(tmp_path, module, _state(3))
    assert path.name == "step-00000003" and ckpt.pointer(tmp_path) == path
    state = ckpt.load_state(path)  # weights_only=True inside
    assert state["step"] == 3 and state["args"] == {"lr": 0.1}
    other = D.build_module()
    ckpt.load_weights(other, path)
    for (name, a), (_, b) in zip(module.state_dict().items(), other.state_dict().items()):
        assert torch.equal(a, b), name


def test_keeps_newest_and_best(tmp_path):
    module = D.build_module()
    ckpt.save_checkpoint(tmp_path, module, _state(1), best=True, keep=2)
    for step in (2, 3, 4):
        ckpt.save_checkpoint(tmp_path, module, _state(step), keep=2)
    names = [p.name for p in ckpt.checkpoints(tmp_path)]
    assert names == ["step-00000001", "step-00000003", "step-00000004"]
    assert ckpt.pointer(tmp_path, "best").name == "step-00000001"


def test_crash_during_save_leaves_previous_checkpoint(tmp_path, monkeypatch):
    module = D.build_module()
    good = ckpt.save_checkpoint(tmp_path, module, _state(5))
    real_save = torch.save

    def dying_save(obj, fh, *args, **kwargs):
        fh.write(b"half a state")
        raise KeyboardInterrupt("killed while writing")

    monkeypatch.setattr(torch, "save", dying_save)
    with pytest.raises(KeyboardInterrupt):
        ckpt.save_checkpoint(tmp_path, module, _state(6))
    monkeypatch.setattr(torch, "save", real_save)
    assert ckpt.pointer(tmp_path) == good and ckpt.load_state(good)["step"] == 5
    assert not list(tmp_path.glob(".step-*")) and not (tmp_path / "step-00000006").exists()


def test_leftovers_of_a_killed_save_are_ignored(tmp_path):
    module = D.build_module()
    good = ckpt.save_checkpoint(tmp_path, module, _state(5))
    stale = tmp_path / ".step-00000006.abc.tmp"  # what SIGKILL mid-save leaves
    stale.mkdir()
    (stale / "model.safetensors").write_bytes(b"\0" * 10)
    half = tmp_path / "step-00000007"  # a folder without its state file
    half.mkdir()
    (half / "model.safetensors").write_bytes(b"\0" * 10)
    (tmp_path / "last").write_text("step-00000009\n")  # a pointer to nothing
    assert ckpt.pointer(tmp_path) == good
    ckpt.save_checkpoint(tmp_path, module, _state(8))
    assert not stale.exists()


def test_rng_state_roundtrip():
    state = ckpt.rng_state()
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    random.seed(123), np.random.seed(123), torch.manual_seed(123)
    ckpt.set_rng_state(state)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected


def test_argument_differences_named():
    diffs = ckpt.argument_differences({"lr": 0.1, "epochs": 3, "out": "a"}, {"lr": 0.2, "epochs": 3, "out": "b"})
    assert diffs == ["lr: 0.1 -> 0.2"]


def _trainer(out, **overrides):
    records = D.index_records(400)
    cfg = dict(epochs=1, lr=3e-3, head_lr_mult=1.0, batch_size=32, precision="fp32", progress=False)
    cfg.update(overrides)
    resume = cfg.pop("resume", False)
    return Trainer(D.make_adapter(LABELS), records[:320], records[320:], TrainConfig(**cfg), out, resume=resume)


def test_resume_with_different_arguments_warns(tmp_path):
    _trainer(tmp_path, max_steps=4, save_every=2).fit()
    with pytest.warns(UserWarning, match=r"different arguments: .*lr: 0\.003 -> 0\.002.*max_steps: 4 -> 6"):
        result = _trainer(tmp_path, max_steps=6, save_every=2, lr=2e-3, resume=True).fit()
    assert result.step == 6


# -- kill -9 in the middle of an epoch, then resume --------------------------------------------
def _run(data, out, extra_env=None, **kwargs):
    env = {**os.environ, "HUB_PLUGINS": "", "OMP_NUM_THREADS": "1", **(extra_env or {})}
    cmd = [sys.executable, str(HERE / "_train_digits.py"), str(data), str(out), json.dumps(kwargs)]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _weights(path: Path) -> dict:
    return load_file(str(path / "model.safetensors"))


def test_sigkill_mid_epoch_then_resume_matches_uninterrupted(tmp_path):
    data = D.write_image_folder(tmp_path / "digits", 500)
    # 400 train rows / 16 = 25 micro-batches per epoch, grad_accum 2 -> 13 steps per epoch
    args = dict(epochs=2, batch_size=16, grad_accum=2, lr=3e-3, precision="fp32", save_every=3, seed=7)
    full = _run(data, tmp_path / "full", **args)  # runs alongside the victim
    killed_out = tmp_path / "killed"
    victim = _run(data, killed_out, {"DIGITS_SLOW": "0.15"}, **args)
    target = killed_out / "checkpoints" / ckpt.step_name(6)  # mid-epoch 0 (batch 12 of 25)
    deadline = time.time() + 90
    while not ckpt.complete(target) and victim.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=30)
    assert victim.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    last = ckpt.load_state(ckpt.pointer(killed_out / "checkpoints"))
    assert 0 < last["batch_in_epoch"] < 25 and last["epoch"] == 0 and last["step"] < 26
    assert full.wait(timeout=120) == 0, full.stderr.read()
    resumed = _run(data, killed_out, resume=True, **args)
    assert resumed.wait(timeout=120) == 0, resumed.stderr.read()
    assert "resumed from step-" in resumed.stderr.read()
    for a, b in ((tmp_path / "full", killed_out), (ckpt.pointer(tmp_path / "full" / "checkpoints"),
                                                   ckpt.pointer(killed_out / "checkpoints"))):
        wa, wb = _weights(a), _weights(b)
        assert wa.keys() == wb.keys()
        for name in wa:
            torch.testing.assert_close(wa[name], wb[name], rtol=0, atol=1e-6, msg=name)
    steps = [json.loads(line)["step"] for line in (killed_out / "metrics.jsonl").read_text().splitlines()
             if json.loads(line)["split"] == "val"]
    assert steps == sorted(set(steps)), "metrics.jsonl repeats steps after the resume"
