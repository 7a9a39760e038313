"""torch.distributed: two gloo processes under torchrun on the CPU, and the --nproc launcher."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # trains tiny models


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


def test_shard_passes_on_to_torchrun(monkeypatch, tmp_path, cli_runner):
    from hub.cli import cli
    from hub.train import distributed

    seen = {}
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.setattr(distributed, "launch", lambda nproc, argv: seen.update(nproc=nproc, argv=argv) or 0)
    res = cli_runner.invoke(cli, ["finetune", "m", "--data", str(tmp_path), "--nproc", "2", "--shard"])
    assert res.exit_code == 0, res.output
    assert seen["nproc"] == 2 and seen["argv"][:3] == ["m", "--data", str(tmp_path)]
    assert sorted(seen["argv"][3:]) == ["--group-by-length", "--shard"]  # flags in the order the CLI declares them


def _probe_module():
    import torch
    from torch import nn

    torch.manual_seed(0)
    return nn.ModuleDict({"used": nn.Linear(4, 3), "norm": nn.BatchNorm1d(3), "spare": nn.Linear(4, 3)})


def _probe_loss(module, use_spare: bool):
    import torch

    def loss():
        x = torch.randn(8, 4)  # draws from the RNG, as an augmentation would
        out = module["norm"](module["used"](x))  # updates the batch-norm statistics
        return (out + module["spare"](x)).sum() if use_spare else out.sum()

    return loss


@pytest.mark.parametrize("use_spare", [False, True])
def test_unused_parameter_probe_leaves_the_run_unchanged(use_spare):
    import torch

    from hub.train.distributed import has_unused_parameters

    module = _probe_module()
    stats = {k: v.clone() for k, v in module.state_dict().items()}
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    assert has_unused_parameters(module, _probe_loss(module, use_spare), DistContext()) is (not use_spare)
    assert torch.equal(torch.rand(3), expected)  # the RNG is where it was
    for key, value in module.state_dict().items():
        assert torch.equal(value, stats[key]), key  # batch-norm statistics put back
    assert all(p.grad is None for p in module.parameters())
    module["spare"].requires_grad_(False)  # a frozen part is not "unused"
    assert not has_unused_parameters(module, _probe_loss(module, False), DistContext())


def test_step_module_runs_the_adapters_loss_and_predict():
    import torch

    from hub.train.distributed import step_module

    inner = torch.nn.Linear(2, 2)
    adapter = D.make_adapter([str(i) for i in range(10)])
    adapter.loss = lambda m, b: ("loss", m is inner, b)
    adapter.predict = lambda m, b: ("predict", m is inner, b)
    step = step_module(inner, adapter)
    assert step("b") == ("loss", True, "b") and step("b", predict=True) == ("predict", True, "b")
    assert [name for name, _ in step.named_parameters()] == ["module.weight", "module.bias"]


def test_shard_without_several_processes_warns_and_trains(tmp_path):
    from hub.train.loop import TrainConfig, Trainer

    records = D.index_records(96)
    cfg = TrainConfig(epochs=1, lr=3e-3, batch_size=32, precision="fp32", progress=False, shard=True)
    trainer = Trainer(D.make_adapter([str(i) for i in range(10)]), records[:64], records[64:], cfg, tmp_path)
    with pytest.warns(UserWarning, match="--shard needs several processes"):
        result = trainer.fit()
    assert result.step == 2 and ckpt.pointer(tmp_path / "checkpoints") is not None


def test_bad_input_under_nproc_is_the_ranks_error_line_and_exit_2_without_torchruns_traceback(tmp_path):
    env = {**os.environ, "HUB_PLUGINS": "timm"}
    done = subprocess.run([sys.executable, "-m", "hub.cli", "finetune", "no-such-model", "--data", str(tmp_path),
                           "--nproc", "2", "--out", str(tmp_path / "out")], env=env, capture_output=True, text=True,
                          timeout=180)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines and all(line.startswith("Error: unknown model id 'no-such-model'") for line in lines), done.stderr
    assert "Traceback" not in done.stderr and "OMP_NUM_THREADS" not in done.stderr


@pytest.mark.parametrize("codes, expected, said", [({1: -9}, 1, "rank 1 of 2 stopped with exit code -9 (killed by a "
                                                                  "signal); its messages are above"),
                                                   ({0: 3, 1: 1}, 3, "rank 0 of 2 stopped with exit code 3;"),
                                                   ({0: 1, 1: 2}, 2, None)])
def test_a_failed_rank_is_named_in_one_line_with_its_exit_code(codes, expected, said, monkeypatch, capsys):
    import torch.distributed.run as torchrun
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError, ProcessFailure

    from hub.train import distributed

    def failing(args):
        assert args.nproc_per_node == "2" and args.module and args.training_script == "hub.cli"
        raise ChildFailedError("hub.cli", {r: ProcessFailure(r, 100 + r, c, "") for r, c in codes.items()})

    monkeypatch.setattr(torchrun, "run", failing)
    assert distributed.launch(2, ["m", "--data", "d"]) == expected
    err = capsys.readouterr().err
    assert (said in err and err.count("\n") == 1) if said else err == ""


def test_a_stopped_launcher_says_so_and_exits_as_a_signal_does(monkeypatch, capsys):
    import signal

    import torch.distributed.run as torchrun
    from torch.distributed.elastic.multiprocessing import SignalException

    from hub.train import distributed

    def interrupted(args):
        raise SignalException("Process got signal: 2", signal.SIGINT)

    monkeypatch.setattr(torchrun, "run", interrupted)
    assert distributed.launch(2, ["m"]) == 130
    assert capsys.readouterr().err == "Stopped by SIGINT; resume with --resume\n"
