"""DDP and FSDP2 (--shard) under gloo with 2 processes against one process, and resuming either.

Every run trains the step-deterministic digits network (``_train_exact``): one process with batch
16, or two ranks with 8 each, two micro-batches per step (gradient accumulation), see the same 32
examples per step, so the per-step loss curves (rank means) and the validation metrics agree up
to float rounding.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
import _train_digits as D  # noqa: E402

from hub.train import checkpoint as ckpt  # noqa: E402

pytestmark = pytest.mark.slow
ARGS = dict(epochs=1, lr=3e-3, head_lr_mult=1.0, precision="fp32", seed=1, group_by_length=False,
            schedule="constant", warmup=0.0, eval_every=5, grad_accum=2)
# 600 digits: 480 train rows = 15 steps of 2 x 16 (one process) or 2 x 8 per rank (two); the 120
# validation rows make 15 batches of 8, which the two ranks share unevenly (8 and 7)
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
TOL = 1e-5


def _start(launcher, data, out, **kwargs):
    env = {**os.environ, "HUB_PLUGINS": "", "OMP_NUM_THREADS": "1"}
    cmd = [*launcher, str(HERE / "_train_exact.py"), str(data), str(out), json.dumps({**ARGS, **kwargs})]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(proc) -> tuple[dict, str]:
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr[-3000:]
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 1, stdout  # only rank 0 reports
    return json.loads(lines[0]), stderr


def _log(out: Path, split: str) -> dict[int, dict]:
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return {row["step"]: row for row in rows if row["split"] == split}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One process, DDP and FSDP on 2 processes, and a DDP and an FSDP run stopped at step 7 (mid-epoch)."""
    root = tmp_path_factory.mktemp("sharded")
    data = D.write_image_folder(root / "data", 600)
    procs = {"one": _start([sys.executable], data, root / "one", batch_size=16),
             "ddp": _start(TORCHRUN, data, root / "ddp", batch_size=8),
             "fsdp": _start(TORCHRUN, data, root / "fsdp", batch_size=8, shard=True),
             "part-fsdp": _start(TORCHRUN, data, root / "part-fsdp", batch_size=8, shard=True, max_steps=7),
             "part-ddp": _start(TORCHRUN, data, root / "part-ddp", batch_size=8, max_steps=7)}
    results = {name: _finish(proc)[0] for name, proc in procs.items()}
    return root, data, results


@pytest.mark.parametrize("name", ["ddp", "fsdp"])
def test_two_processes_follow_the_single_process_curve(runs, name):
    root, _, results = runs
    one, two = _log(root / "one", "train"), _log(root / name, "train")
    assert sorted(one) == sorted(two) == list(range(1, 16))
    for step in one:
        assert abs(one[step]["loss"] - two[step]["loss"]) <= TOL, (step, one[step]["loss"], two[step]["loss"])
    val_one, val_two = _log(root / "one", "val"), _log(root / name, "val")
    assert sorted(val_one) == sorted(val_two) == [5, 10, 15]
    for step in val_one:
        assert val_one[step]["accuracy"] == val_two[step]["accuracy"]
        assert abs(val_one[step]["loss"] - val_two[step]["loss"]) <= TOL
    assert results[name]["val_rows"] == results["one"]["val_rows"] == 120
    final_one = load_file(str(root / "one" / "model.safetensors"))
    final_two = load_file(str(root / name / "model.safetensors"))
    assert final_one.keys() == final_two.keys()  # FSDP: gathered on rank 0 into an ordinary model directory
    for key in final_one:
        torch.testing.assert_close(final_one[key], final_two[key], rtol=0, atol=1e-4, msg=key)
    assert (root / name / "mmhub.yaml").is_file() and (root / name / "training_curves.png").is_file()


def test_fsdp_checkpoints_are_sharded(runs):
    root, _, _ = runs
    found = ckpt.checkpoints(root / "fsdp" / "checkpoints")
    assert [p.name for p in found][-2:] == ["step-00000010", "step-00000015"]
    for path in found:
        assert (path / "sharded" / ".metadata").is_file() and not (path / ckpt.WEIGHTS).exists()
        ckpt.check_weights(path)
        state = ckpt.load_state(path)  # weights_only load: no optimiser tensors in it
        assert state["args"]["world_size"] == 2 and "optimizer" not in state  # it is in the shards
    assert not list((root / "fsdp" / "checkpoints").glob(".step-*"))


@pytest.mark.parametrize("name", ["ddp", "fsdp"])
def test_resume_continues_the_same_curve(runs, name):
    """Stopped at step 7 and resumed: the same losses and final weights as the run never stopped."""
    root, data, _ = runs
    part = root / f"part-{name}"
    assert ckpt.load_state(ckpt.pointer(part / "checkpoints"))["step"] == 7
    result, stderr = _finish(_start(TORCHRUN, data, part, batch_size=8, shard=name == "fsdp", resume=True))
    assert "resumed from step-00000007" in stderr and result["steps"] == 15
    full, resumed = _log(root / name, "train"), _log(part, "train")
    assert sorted(resumed) == list(range(1, 16))  # the log holds the whole run, once
    for step in full:
        assert abs(full[step]["loss"] - resumed[step]["loss"]) <= 1e-6, step
    wa, wb = load_file(str(root / name / "model.safetensors")), load_file(str(part / "model.safetensors"))
    for key in wa:
        torch.testing.assert_close(wa[key], wb[key], rtol=0, atol=1e-6, msg=key)


def test_resume_refuses_a_checkpoint_of_the_other_kind(runs, tmp_path):
    """A sharded checkpoint resumed without --shard (one process) is one clear error, not a crash."""
    import shutil

    root, data, _ = runs
    out = tmp_path / "copy"
    shutil.copytree(root / "fsdp", out)
    proc = _start([sys.executable], data, out, batch_size=16, resume=True)
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode != 0 and "was saved with --shard" in stderr
