"""torch.distributed: two gloo processes under torchrun on the CPU, and the --nproc launcher."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
import _train_digits as D  # noqa: E402

from hub.train import checkpoint as ckpt  # noqa: E402
from hub.train.distributed import DistContext, device_for, env_world, launch_command  # noqa: E402

ARGS = dict(epochs=4, batch_size=16, lr=3e-3, head_lr_mult=1.0, precision="fp32", seed=1)


def _start(cmd, out):
    env = {**os.environ, "HUB_PLUGINS": "", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([*cmd, str(HERE / "_train_digits.py"), str(out.parent / "data"), str(out),
                             json.dumps(ARGS)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _result(proc) -> dict:
    stdout, stderr = proc.communicate(timeout=180)
    assert proc.returncode == 0, stderr[-3000:]
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 1, stdout  # only rank 0 reports
    return json.loads(lines[0])


def test_two_gloo_processes_train_as_well_as_one(tmp_path):
    """Same data, per-process batch 16: two ranks (effective batch 32, half the steps) reach the
    accuracy of one process within 0.05, and only rank 0 writes checkpoints and logs."""
    D.write_image_folder(tmp_path / "data", 600)
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    two = _start(torchrun, tmp_path / "two")
    one = _start([sys.executable], tmp_path / "one")
    r2, r1 = _result(two), _result(one)
    print("one process:", r1, "two processes:", r2)
    assert r1["metrics"]["accuracy"] >= 0.88 and r2["metrics"]["accuracy"] >= 0.88
    assert abs(r1["metrics"]["accuracy"] - r2["metrics"]["accuracy"]) <= 0.05
    assert r2["count"] == r2["val_rows"] == r1["val_rows"]  # every validation row counted once
    assert r2["steps"] == 4 * ((480 // 2 + 15) // 16) and r1["steps"] == 4 * (480 // 16)
    out = tmp_path / "two"
    assert not list((out / "checkpoints").glob(".step-*"))
    assert ckpt.load_state(ckpt.pointer(out / "checkpoints"))["args"]["world_size"] == 2
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    val_steps = [r["step"] for r in rows if r["split"] == "val"]
    assert val_steps == sorted(set(val_steps)) and len(val_steps) == 4  # one line per evaluation
    assert (out / "mmhub.yaml").is_file() and (out / "training_curves.png").is_file()


def test_env_and_devices(monkeypatch):
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert env_world() == (3, 4, 1)
    assert device_for(DistContext(3, 4, 1, "nccl"), None) == "cuda:1"
    assert device_for(DistContext(3, 4, 1, "gloo"), None) == "cpu"
    assert device_for(DistContext(), "cpu") == "cpu" and not DistContext().enabled


def test_launch_command():
    cmd = launch_command(4, ["m", "--data", "d"])
    assert cmd[1:] == ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "4",
                       "-m", "hub.cli", "finetune", "m", "--data", "d"]


def test_nproc_reruns_under_torchrun(monkeypatch, tmp_path, cli_runner):
    from hub.cli import cli
    from hub.train import distributed

    seen = {}

    def fake_launch(nproc, argv):
        seen.update(nproc=nproc, argv=argv)
        return 0

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.setattr(distributed, "launch", fake_launch)
    res = cli_runner.invoke(cli, ["finetune", "some-model", "--data", str(tmp_path), "--nproc", "2", "--epochs", "5",
                                  "--freeze-backbone", "--metric", "f1_macro", "--no-group-by-length"])
    assert res.exit_code == 0, res.output
    assert seen["nproc"] == 2
    assert seen["argv"] == ["some-model", "--data", str(tmp_path), "--epochs", "5", "--freeze-backbone",
                            "--metric", "f1_macro", "--no-group-by-length"]
