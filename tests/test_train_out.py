"""``hub finetune --out``: refusals, the run's lock, writability, and runs that never end half-written."""
from __future__ import annotations

import errno
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
import _train_digits as D  # noqa: E402

import hub.io as hio  # noqa: E402
from hub.errors import HubError, IncompleteModelError, OutputDirError, WriteError  # noqa: E402
from hub.local import RUN_MARKER, run_in_progress  # noqa: E402
from hub.train import checkpoint as ckpt  # noqa: E402

pytestmark = [pytest.mark.usefixtures("one_thread"), pytest.mark.slow]  # slow: trains tiny models


@pytest.fixture
def digits_hub(fresh_hub, monkeypatch):
    monkeypatch.setenv("HUB_PLUGINS", "")
    D.register()


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return D.write_image_folder(tmp_path_factory.mktemp("digits") / "train", 200)


def finetune(data, out, model="digits-mlp", **kwargs):
    from hub.train.api import finetune as run

    args = dict(max_steps=2, batch_size=32, lr=3e-3, head_lr_mult=1.0, precision="fp32", progress=False)
    args.update(kwargs)
    return run(model, data, out=out, **args)


def snapshot(root: Path) -> dict:
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None) for p in sorted(root.rglob("*"))}


def cli(cli_runner, *argv):
    from hub.cli import cli as group

    return cli_runner.invoke(group, [str(a) for a in argv])


def assert_one_error_line(res, *needles):
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output
    errors = [line for line in res.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and res.output.rstrip().splitlines()[-1] == errors[0], res.output
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


# -- refusals: nothing is written -----------------------------------------------------------------
FOREIGN = {
    "a-file": {"notes.txt": b"my notes"},
    "a-hidden-file": {".env": b"SECRET=1"},
    "a-model": {"config.json": b"{}", "model.safetensors": b"weights"},
    "a-folder": {"photos/cat.jpg": b"jpeg"},
    "a-hand-written-card": {"mmhub.yaml": b"task: text-embedding\n"},
}


@pytest.mark.parametrize("contents", FOREIGN.values(), ids=FOREIGN.keys())
def test_a_non_empty_directory_that_is_no_run_is_refused(contents, digits_hub, data, tmp_path, cli_runner):
    out = tmp_path / "out"
    for name, body in contents.items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_bytes(body)
    before = snapshot(tmp_path)
    with pytest.raises(OutputDirError, match="is not empty .* not a 'hub finetune' run.*--overwrite"):
        finetune(data, out)
    with pytest.raises(OutputDirError, match="not a 'hub finetune' run"):
        finetune(data, out, resume=True)
    assert_one_error_line(cli(cli_runner, "finetune", "digits-mlp", "--data", data, "--out", out), str(out))
    assert snapshot(tmp_path) == before


def test_overwrite_moves_the_old_contents_aside_and_deletes_nothing(digits_hub, data, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    (out / "model.safetensors").write_bytes(b"someone's weights")
    with pytest.warns(UserWarning, match="moved what was in"):
        finetune(data, out, overwrite=True)
    aside = [p for p in out.iterdir() if p.name.startswith(".replaced-")]
    assert len(aside) == 1
    assert (aside[0] / "notes.txt").read_text() == "mine"
    assert (aside[0] / "model.safetensors").read_bytes() == b"someone's weights"
    assert (out / "mmhub.yaml").is_file() and not (out / "notes.txt").exists()
    with pytest.warns(UserWarning, match="moved what was in"):  # an earlier run, started over
        finetune(data, out, overwrite=True)
    replaced = sorted(p.name for p in out.iterdir() if p.name.startswith(".replaced-"))
    assert len(replaced) == 2 and (out / aside[0].name / "notes.txt").read_text() == "mine"
    assert (out / replaced[-1] / "mmhub.yaml").is_file()  # the first run's model, kept


def test_an_earlier_run_needs_resume_or_overwrite(digits_hub, data, tmp_path, cli_runner):
    out = tmp_path / "out"
    finetune(data, out)
    before = snapshot(out)
    with pytest.raises(OutputDirError, match="holds a finished earlier run; pass --resume .*--overwrite"):
        finetune(data, out)
    with pytest.raises(OutputDirError, match="--resume continues .* --overwrite starts"):
        finetune(data, out, resume=True, overwrite=True)
    assert_one_error_line(cli(cli_runner, "finetune", "digits-mlp", "--data", data, "--out", out), "--resume")
    assert snapshot(out) == before
    result = finetune(data, out, resume=True, max_steps=4)
    assert result.steps == 4


def test_a_file_as_out_is_refused(digits_hub, data, tmp_path):
    (tmp_path / "out").write_text("x")
    with pytest.raises(OutputDirError, match="is a file"):
        finetune(data, tmp_path / "out")


@pytest.fixture
def source_model(tmp_path):
    """A model directory (mmhub.yaml of the digits plugin) to start from."""
    src = tmp_path / "models" / "digits-start"
    src.mkdir(parents=True)
    (src / "mmhub.yaml").write_text("task: image-classification\nplugin: digits-test\n")
    return src


@pytest.mark.parametrize("where", ["itself", "inside", "around"])
def test_the_models_own_directory_is_refused(where, source_model, digits_hub, data, tmp_path, cli_runner):
    out = {"itself": source_model, "inside": source_model / "run", "around": source_model.parent}[where]
    before = snapshot(tmp_path / "models")
    with pytest.raises(OutputDirError, match="the directory the weights of .* come from"):
        finetune(data, out, model=str(source_model))
    assert_one_error_line(cli(cli_runner, "finetune", source_model, "--data", data, "--out", out, "--overwrite"),
                          "come from")
    assert snapshot(tmp_path / "models") == before


def test_a_failed_start_leaves_a_new_directory_as_it_was(digits_hub, tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("text,label\n")
    with pytest.raises(HubError):
        finetune(empty, tmp_path / "new" / "out")
    assert not (tmp_path / "new" / "out").exists()


# -- the lock -------------------------------------------------------------------------------------
def _run_script(data, out, extra_env=None, **kwargs):
    env = {**os.environ, "HUB_PLUGINS": "", "OMP_NUM_THREADS": "1", **(extra_env or {})}
    cmd = [sys.executable, str(HERE / "_train_digits.py"), str(data), str(out), json.dumps(kwargs)]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait(predicate, proc, seconds=60):
    deadline = time.time() + seconds
    while not predicate() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    assert predicate(), "the first run never reached the expected point"


def test_a_second_run_on_the_same_out_fails_at_once_naming_the_first(digits_hub, data, tmp_path, cli_runner):
    out = tmp_path / "out"
    first = _run_script(data, out, {"DIGITS_SLOW": "0.1"}, epochs=30, batch_size=16, precision="fp32")
    try:
        _wait(lambda: run_in_progress(out), first)
        started = time.time()
        for kwargs in ({}, {"resume": True}, {"overwrite": True}):
            with pytest.raises(OutputDirError, match=rf"another 'hub finetune' is writing .*pid {first.pid}\b"):
                finetune(data, out, **kwargs)
        assert_one_error_line(cli(cli_runner, "finetune", "digits-mlp", "--data", data, "--out", out, "--resume"),
                              f"pid {first.pid}", "started 20")
        assert time.time() - started < 10, "the second run waited for the first"
        with pytest.raises(IncompleteModelError, match=rf"still training \(pid {first.pid}"):
            from hub.api import get_spec

            get_spec(str(out))
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    assert not run_in_progress(out)  # the kernel drops the lock with its holder


def test_the_lock_is_released_when_a_run_ends(digits_hub, data, tmp_path):
    out = tmp_path / "out"
    finetune(data, out)
    assert (out / RUN_MARKER).is_file() and not run_in_progress(out)
    marker = json.loads((out / RUN_MARKER).read_text())
    assert marker["pid"] == os.getpid() and marker["model"] == "digits-mlp" and marker["data"] == str(data)
    with open(out / RUN_MARKER) as fh:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)  # nobody holds it any more


# -- writability and space ------------------------------------------------------------------------
@pytest.fixture
def read_only_dir(tmp_path):
    """A directory on a really read-only file system: a tmpfs remounted read-only, else chmod as non-root."""
    mnt = tmp_path / f"ro-{uuid.uuid4().hex[:6]}"
    mnt.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], capture_output=True)
    if mounted.returncode == 0:
        (mnt / "existing").mkdir()
        if subprocess.run(["mount", "-o", "remount,ro", str(mnt)], capture_output=True).returncode == 0:
            yield mnt
            subprocess.run(["umount", "-l", str(mnt)], check=False)
            return
        subprocess.run(["umount", "-l", str(mnt)], check=False)
    if os.geteuid() == 0:
        pytest.skip("running as root without mount rights: no way to make a directory really read-only")
    (mnt / "existing").mkdir()
    mnt.chmod(0o555)
    (mnt / "existing").chmod(0o555)
    yield mnt
    (mnt / "existing").chmod(0o755)
    mnt.chmod(0o755)


@pytest.mark.parametrize("name", ["new", "existing"])
def test_an_unwritable_out_fails_before_training(name, read_only_dir, digits_hub, data, cli_runner):
    out = read_only_dir / name
    with pytest.raises(WriteError, match=f"'{out}' cannot be written"):
        finetune(data, out)
    assert_one_error_line(cli(cli_runner, "finetune", "digits-mlp", "--data", data, "--out", out), str(out))


@pytest.mark.parametrize("code", [errno.EACCES, errno.EROFS, errno.ENOSPC])
def test_a_failing_probe_write_is_reported_and_leaves_nothing(code, digits_hub, data, tmp_path, monkeypatch):
    from test_io import Spy, install

    spy = install(monkeypatch, Spy(code, fail_at=1))  # the probe's temporary file cannot be created
    out = tmp_path / "new"
    with pytest.raises(WriteError, match=f"the output directory '{out}' cannot be written"):
        finetune(data, out)
    assert spy.steps == ["open"] and not out.exists()


class _Module:
    def __init__(self, n):
        import torch

        self.weight = torch.nn.Parameter(torch.zeros(n))

    def parameters(self):
        return [self.weight]

    def buffers(self):
        return []


@pytest.mark.parametrize("free, outcome", [(0, "error"), (7_999, "error"), (8_000, "warn"), (51_999, "warn"),
                                           (52_000, "ok")])
def test_free_space_is_checked_before_training(free, outcome, tmp_path, monkeypatch):
    from hub.train import outdir

    monkeypatch.setattr(outdir, "free_bytes", lambda path: free)
    module = _Module(1000)  # 4 kB of weights, 8 kB of Adam moments: the model and a copy at least, and for a
    # whole run the model plus 4 checkpoints (2 kept, the best, one being written) with their moments: 52 kB
    if outcome == "error":
        with pytest.raises(WriteError, match="not enough free space .* at least 7.8 KB needed"):
            outdir.check_space(tmp_path, module, keep_checkpoints=2)
    elif outcome == "warn":
        with pytest.warns(UserWarning, match="may need up to 50.8 KB"):
            outdir.check_space(tmp_path, module, keep_checkpoints=2)
    else:
        outdir.check_space(tmp_path, module, keep_checkpoints=2)


# -- failures while writing the model: the previous model stays --------------------------------------
@pytest.mark.parametrize("step", ["adapter-save", "card", "exchange"])
def test_disk_full_at_the_end_keeps_the_previous_model_loadable(step, digits_hub, data, tmp_path, monkeypatch,
                                                                 cli_runner):
    from hub.api import get_spec

    out = tmp_path / "out"
    finetune(data, out)
    before = {k: v for k, v in snapshot(out).items() if not k.startswith("checkpoints")}
    full = OSError(errno.ENOSPC, "No space left on device")
    with monkeypatch.context() as m:
        if step == "adapter-save":
            import safetensors.torch as st

            def broken(*args, **kwargs):
                raise RuntimeError("Error while serializing: I/O error: No space left on device (os error 28)")

            m.setattr(st, "save_model", broken)
            m.setattr(ckpt, "save_checkpoint", lambda *a, **k: None)  # the failure hits the model only
        elif step == "card":
            import hub.local

            m.setattr(hub.local, "atomic_write_text", lambda *a: (_ for _ in ()).throw(full))
        else:
            m.setattr(hio, "_exchange", lambda a, b: (_ for _ in ()).throw(full))
        with pytest.raises(WriteError, match=f"cannot write '{out}': no space left .* free"):
            finetune(data, out, resume=True, max_steps=4)
    kept = ("checkpoints", "metrics.jsonl", "training_curves.png", RUN_MARKER)  # the run's own files go on
    after = {k: v for k, v in snapshot(out).items() if not k.startswith(kept)}
    assert after == {k: v for k, v in before.items() if not k.startswith(kept)}
    assert not [p for p in tmp_path.rglob("*") if hio.is_temp_name(p.name)]
    assert get_spec(str(out)).options["metrics"]  # still a complete model
    assert finetune(data, out, resume=True, max_steps=4).steps == 4


# -- stray and damaged files in a run directory --------------------------------------------------------
def test_stray_files_do_not_stop_a_run_and_are_kept(digits_hub, data, tmp_path):
    out = tmp_path / "out"
    finetune(data, out, save_every=1)
    (out / "notes.txt").write_text("mine")
    (out / "checkpoints" / "README").write_text("stray")
    (out / ".metrics.json.0123abcd.tmp").write_text("left by a killed run")
    (tmp_path / ".out.89abcdef.tmp").mkdir()  # a half-built model directory beside it
    result = finetune(data, out, resume=True, max_steps=4, save_every=1)
    assert result.steps == 4 and (out / "notes.txt").read_text() == "mine"
    assert (out / "checkpoints" / "README").read_text() == "stray"
    assert not (out / ".metrics.json.0123abcd.tmp").exists() and not (tmp_path / ".out.89abcdef.tmp").exists()


def _damage_log(path: Path) -> None:
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0], "{not json", *lines[1:]]) + '\n{"split": "train", "st')


def test_a_damaged_metrics_log_is_moved_aside_on_resume(digits_hub, data, tmp_path):
    out = tmp_path / "out"
    finetune(data, out, max_steps=4, save_every=2, eval_every=2)
    log = out / "metrics.jsonl"
    _damage_log(log)
    damaged = log.read_bytes()
    with pytest.warns(UserWarning, match=r"2 unreadable line\(s\) \(first: line 2\); moved it to metrics.jsonl.corrupt"):
        finetune(data, out, resume=True, max_steps=6, save_every=2, eval_every=2)
    aside = list(out.glob("metrics.jsonl.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_bytes() == damaged
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["step"] for r in rows if r["split"] == "val"] == [2, 4, 5, 6]  # 5: the end of the first epoch
    assert (out / "training_curves.png").read_bytes()[:4] == b"\x89PNG"


CORRUPTIONS = {
    "truncated-weights": lambda p: (p / ckpt.WEIGHTS).write_bytes((p / ckpt.WEIGHTS).read_bytes()[:100]),
    "garbage-state": lambda p: (p / ckpt.STATE).write_bytes(b"not a torch file"),
    "empty-state": lambda p: (p / ckpt.STATE).write_bytes(b""),
}


@pytest.mark.parametrize("damage", CORRUPTIONS.values(), ids=CORRUPTIONS.keys())
def test_a_corrupt_checkpoint_falls_back_to_the_previous_one(damage, digits_hub, data, tmp_path):
    out = tmp_path / "out"
    finetune(data, out, max_steps=4, save_every=2)
    newest = ckpt.pointer(out / "checkpoints")
    assert newest.name == ckpt.step_name(4)
    damage(newest)
    with pytest.warns(UserWarning, match="skipped an unreadable checkpoint"):
        result = finetune(data, out, resume=True, max_steps=6, save_every=2)
    assert result.steps == 6
    assert (out / "checkpoints" / f"{ckpt.step_name(4)}.corrupt").is_dir()
    assert ckpt.load_state(ckpt.pointer(out / "checkpoints"))["step"] == 6


# -- a run killed before its model was written ---------------------------------------------------------
def _killed_run(tmp_path: Path) -> Path:
    """A run directory as a kill between the weights and mmhub.yaml would leave it (older writers)."""
    out = tmp_path / "killed"
    (out / "checkpoints" / ckpt.step_name(2)).mkdir(parents=True)
    (out / "checkpoints" / "last").write_text(ckpt.step_name(2) + "\n")
    (out / "model.safetensors").write_bytes(b"weights")
    (out / "config.json").write_text('{"architecture": "resnet18"}')
    (out / RUN_MARKER).write_text(json.dumps({"pid": 1, "model": "digits mlp", "data": "/data/my digits"}))
    return out


def test_an_unfinished_run_is_refused_by_info_and_run(tmp_path, cli_runner, fresh_hub):
    from hub.api import get_spec

    out = _killed_run(tmp_path)
    command = f"`hub finetune 'digits mlp' --data '/data/my digits' --out {out} --resume`"
    with pytest.raises(IncompleteModelError) as info:
        get_spec(str(out))
    assert str(info.value) == (f"the run in '{out}' did not finish: it has no mmhub.yaml. Finish it with {command} "
                               "(the same options as before)")
    for argv in (["info", out], ["info", out, "--json"], ["run", out, "a cat"]):
        assert_one_error_line(cli(cli_runner, *argv), "did not finish", command)
    (out / RUN_MARKER).unlink()  # from a version of the hub without the marker: checkpoints tell
    assert_one_error_line(cli(cli_runner, "info", out), "did not finish", "--resume")


def test_a_directory_with_weights_and_no_run_marker_is_not_a_run(tmp_path, fresh_hub):
    from hub.api import get_spec

    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "model.safetensors").write_bytes(b"weights")
    with pytest.raises(HubError) as info:
        get_spec(str(plain))
    assert not isinstance(info.value, IncompleteModelError)


def test_a_killed_run_is_reported_then_finished_with_resume(digits_hub, data, tmp_path, cli_runner):
    from hub.api import get_spec

    out = tmp_path / "out"
    victim = _run_script(data, out, {"DIGITS_SLOW": "0.1"}, epochs=30, batch_size=16, precision="fp32",
                         save_every=2)
    _wait(lambda: ckpt.pointer(out / "checkpoints") is not None, victim)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=30)
    assert_one_error_line(cli(cli_runner, "info", out), "did not finish",
                          f"hub finetune digits-mlp --data {data} --task image-classification --out {out} --resume")
    result = finetune(data, out, resume=True, epochs=30, batch_size=16, max_steps=6, save_every=2)
    assert result.steps == 6 and get_spec(str(out)).task == "image-classification"
    assert not [p for p in tmp_path.rglob("*") if hio.is_temp_name(p.name)]


def test_an_unreadable_best_checkpoint_at_the_end_keeps_the_last_weights(tmp_path):
    import torch

    from hub.train.loop import TrainConfig, Trainer

    records = D.index_records(200)
    config = TrainConfig(max_steps=2, save_every=1, lr=3e-3, batch_size=32, precision="fp32", progress=False)
    trainer = Trainer(D.make_adapter([str(i) for i in range(10)]), records[:160], records[160:], config,
                      tmp_path / "out")
    trainer.fit()
    first = tmp_path / "out" / "checkpoints" / ckpt.step_name(1)
    last = {k: v.clone() for k, v in trainer.module.state_dict().items()}
    (first / ckpt.WEIGHTS).write_bytes(b"\0" * 16)
    with pytest.warns(UserWarning, match="best checkpoint cannot be read .* saved with the last weights"):
        assert trainer._load_best(first) is None
    assert trainer.best_metrics is None
    assert all(torch.equal(v, last[k]) for k, v in trainer.module.state_dict().items())
    assert trainer._load_best(tmp_path / "out" / "checkpoints" / ckpt.step_name(2)) is not None
