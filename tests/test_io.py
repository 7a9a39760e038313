"""hub.io: every write appears complete or not at all, whichever step fails, and leaves no debris."""
from __future__ import annotations

import errno
import os
import stat
import subprocess
import uuid
from pathlib import Path

import pytest

import hub.io as hio
from hub.errors import HubError, WriteError

FAULTS = [errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EIO]
STEPS = ("open", "write", "fsync", "replace", "rename", "mkdir", "link", "ftruncate", "fchmod")


class Spy:
    """Stands in for ``os`` inside hub.io: counts each step and fails the ``fail_at``-th with ``code``."""

    def __init__(self, code: int | None = None, fail_at: int | None = None, exchange: bool = True):
        self.code, self.fail_at, self.exchange = code, fail_at, exchange
        self.steps: list[str] = []

    def __getattr__(self, name):
        real = getattr(os, name)
        if name not in STEPS:
            return real

        def step(*args, **kwargs):
            self._count(name)
            if name == "write" and self.fail_at == len(self.steps) + 1:
                real(args[0], bytes(args[1])[:3])  # the disk fills up part way through a write
            return real(*args, **kwargs)

        return step

    def _count(self, name: str) -> None:
        self.steps.append(name)
        if self.fail_at == len(self.steps):
            raise OSError(self.code, os.strerror(self.code))

    def exchange_step(self, real):
        def exchange(a, b):
            if not self.exchange:
                return False
            self._count("exchange")
            return real(a, b)

        return exchange


def install(monkeypatch, spy: Spy) -> Spy:
    monkeypatch.setattr(hio, "os", spy)
    monkeypatch.setattr(hio, "_exchange", spy.exchange_step(hio._exchange))
    return spy


def snapshot(root: Path) -> dict:
    """Every file under ``root`` with its bytes (directories as None)."""
    found = {}
    for path in sorted(root.rglob("*")):
        found[str(path.relative_to(root))] = path.read_bytes() if path.is_file() else None
    return found


def debris(root: Path) -> list[str]:
    return [str(p) for p in root.rglob("*") if hio.is_temp_name(p.name)]


# -- the operations under test: each turns an "old" state into a "new" one ------------------------
def write_bytes_over(root: Path):
    (root / "weights.bin").write_bytes(b"old weights")
    return lambda: hio.atomic_write_bytes(root / "weights.bin", b"new weights" * 1000)


def write_new_json(root: Path):
    return lambda: hio.atomic_write_json(root / "metrics.json", {"accuracy": 0.9})


def library_writes_path(root: Path):
    (root / "plot.png").write_bytes(b"old plot")

    def run():
        with hio.atomic_path(root / "plot.png") as tmp:
            Path(tmp).write_bytes(b"new plot")  # what savefig / save_file do with the path given

    return run


def new_directory(root: Path):
    def run():
        with hio.atomic_directory(root / "model") as stage:
            (stage / "config.json").write_text("{}")
            (stage / "sub").mkdir()
            (stage / "sub" / "weights").write_bytes(b"w" * 100)

    return run


def replace_directory_carrying_over(root: Path):
    old = root / "run"
    (old / "checkpoints" / "step-1").mkdir(parents=True)
    (old / "checkpoints" / "step-1" / "state").write_bytes(b"state")
    (old / "metrics.jsonl").write_text('{"step": 1}\n')
    (old / "weights").write_bytes(b"old weights")

    def run():
        with hio.atomic_directory(old, carry_over=True) as stage:
            (stage / "weights").write_bytes(b"new weights")
            (stage / "mmhub.yaml").write_text("task: x\n")

    return run


def append_record(root: Path):
    (root / "metrics.jsonl").write_text('{"step": 1}\n')
    return lambda: hio.append_line(root / "metrics.jsonl", '{"step": 2, "loss": 0.5}')


OPERATIONS = [write_bytes_over, write_new_json, library_writes_path, new_directory, replace_directory_carrying_over,
              append_record]


def _expected_new(op, tmp_path) -> tuple[dict, dict]:
    """The state before and after a successful run of ``op``, and the steps it takes."""
    clean = tmp_path / "clean"
    clean.mkdir()
    run = op(clean)
    before = snapshot(clean)
    run()
    return before, snapshot(clean)


@pytest.mark.parametrize("exchange", [True, False], ids=["exchange", "two-renames"])
@pytest.mark.parametrize("code", FAULTS, ids=[errno.errorcode[c] for c in FAULTS])
@pytest.mark.parametrize("op", OPERATIONS, ids=lambda f: f.__name__)
def test_a_failure_at_any_step_keeps_the_old_state_and_leaves_no_debris(op, code, exchange, tmp_path, monkeypatch):
    before, after = _expected_new(op, tmp_path)
    assert before != after
    probe = tmp_path / "probe"
    probe.mkdir()
    run = op(probe)
    with monkeypatch.context() as m:
        spy = install(m, Spy(exchange=exchange))
        run()
    steps = list(spy.steps)
    assert steps, "the operation took no step that can fail"
    for k in range(1, len(steps) + 1):
        root = tmp_path / f"case-{k}"
        root.mkdir()
        run = op(root)
        with monkeypatch.context() as m:
            install(m, Spy(code, fail_at=k, exchange=exchange))
            try:
                run()
            except WriteError as exc:
                message = str(exc)
                assert str(root) in message, message
                if code in hio.DISK_FULL:
                    assert "free" in message and "no space left" in message
                assert snapshot(root) == before, f"step {k} ({steps[k - 1]}) changed the old state"
            else:  # a step after the commit point (directory fsync) may fail quietly
                assert snapshot(root) == after, f"step {k} ({steps[k - 1]}) left a half state"
        assert debris(root) == [], f"step {k} ({steps[k - 1]}) left temporary files"


def test_the_steps_include_every_kind_of_write(tmp_path, monkeypatch):
    """The fault test above really reaches write, fsync, rename/exchange, link and truncate."""
    seen = set()
    for op in OPERATIONS:
        root = tmp_path / op.__name__
        root.mkdir()
        run = op(root)
        with monkeypatch.context() as m:
            spy = install(m, Spy())
            run()
        seen.update(spy.steps)
    assert {"open", "write", "fsync", "replace", "rename", "mkdir", "link", "exchange"} <= seen


def test_disk_full_message_names_path_free_space_and_need(tmp_path, monkeypatch):
    install(monkeypatch, Spy(errno.ENOSPC, fail_at=2))  # the write of the data
    with pytest.raises(WriteError) as info:
        hio.atomic_write_bytes(tmp_path / "model.safetensors", b"x" * 3_000_000)
    message = str(info.value)
    assert f"'{tmp_path / 'model.safetensors'}'" in message
    assert "2.9 MB needed" in message and " free" in message and isinstance(info.value, HubError)


class LibraryError(Exception):
    """Like safetensors' SafetensorError: errno only in the message."""


def _torch_like_failure():
    try:
        raise OSError(errno.ENOSPC, "No space left on device")
    except OSError:
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 832 vs 726")  # noqa: B904


@pytest.mark.parametrize("failure", [
    lambda: (_ for _ in ()).throw(OSError(errno.ENOSPC, "No space left on device")),
    lambda: (_ for _ in ()).throw(LibraryError("Error while serializing: I/O error: No space left on device "
                                               "(os error 28)")),
    _torch_like_failure,
    lambda: (_ for _ in ()).throw(OSError(errno.EROFS, "Read-only file system")),
], ids=["oserror", "errno-in-message", "wrapped-oserror", "read-only"])
@pytest.mark.parametrize("kind", ["path", "directory"])
def test_library_write_failures_become_one_write_error(failure, kind, tmp_path):
    target = tmp_path / "out"
    target.mkdir() if kind == "directory" else target.write_bytes(b"old")
    before = snapshot(tmp_path)
    opener = hio.atomic_directory if kind == "directory" else hio.atomic_path
    with pytest.raises(WriteError, match="cannot write"):
        with opener(target) as tmp:
            (Path(tmp) / "half" if kind == "directory" else Path(tmp)).write_bytes(b"half")
            failure()
    assert snapshot(tmp_path) == before and debris(tmp_path) == []


@pytest.mark.parametrize("exc", [KeyboardInterrupt(), ValueError("a bug, not the disk"),
                                 FileNotFoundError(errno.ENOENT, "a file the writer reads is missing")])
def test_other_failures_propagate_unchanged_and_clean_up(exc, tmp_path):
    (tmp_path / "f").write_bytes(b"old")
    with pytest.raises(type(exc)):
        with hio.atomic_path(tmp_path / "f") as tmp:
            Path(tmp).write_bytes(b"half")
            raise exc
    with pytest.raises(type(exc)):
        with hio.atomic_directory(tmp_path / "d") as stage:
            (stage / "x").write_bytes(b"half")
            raise exc
    assert snapshot(tmp_path) == {"f": b"old"}


def test_modes_follow_umask_for_new_files_and_are_kept_for_replaced_ones(tmp_path):
    umask = os.umask(0o022)
    try:
        hio.atomic_write_text(tmp_path / "new.txt", "x")
        (tmp_path / "private").write_text("old")
        os.chmod(tmp_path / "private", 0o600)
        hio.atomic_write_text(tmp_path / "private", "new")
        with hio.atomic_directory(tmp_path / "dir") as stage:
            (stage / "a").write_text("a")
    finally:
        os.umask(umask)
    assert stat.S_IMODE((tmp_path / "new.txt").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "private").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "dir").stat().st_mode) == 0o755


def test_replacing_a_directory_keeps_carried_files_and_a_held_lock(tmp_path):
    import fcntl

    run = tmp_path / "run"
    run.mkdir()
    (run / "notes.txt").write_text("mine")
    lock = open(run / ".lock", "a+")  # noqa: SIM115
    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    try:
        with hio.atomic_directory(run, carry_over=True) as stage:
            (stage / "model").write_text("weights")
        assert snapshot(run) == {".lock": b"", "model": b"weights", "notes.txt": b"mine"}
        with open(run / ".lock") as other, pytest.raises(OSError):
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)  # still the same, locked, file
    finally:
        lock.close()


def test_a_file_in_the_way_of_a_directory_is_named(tmp_path):
    (tmp_path / "out").write_text("a file")
    with pytest.raises(WriteError, match="a file of that name is in the way"):
        with hio.atomic_directory(tmp_path / "out"):
            pass
    with pytest.raises(WriteError, match="cannot write"):
        hio.atomic_write_text(tmp_path / "out" / "x", "y")  # a file where a directory must be


def test_append_failure_cuts_back_to_whole_lines(tmp_path, monkeypatch):
    log = tmp_path / "metrics.jsonl"
    log.write_text('{"step": 1}\n')
    install(monkeypatch, Spy(errno.ENOSPC, fail_at=2))  # open, then the write that half succeeds
    with pytest.raises(WriteError, match="no space left"):
        hio.append_line(log, '{"step": 2}')
    assert log.read_text() == '{"step": 1}\n'


# -- real file systems: a full disk and a read-only mount (needs mount rights; skipped without) ----
@pytest.fixture
def tiny_fs(tmp_path):
    """A 1 MiB tmpfs mounted at a temporary directory."""
    mnt = tmp_path / f"fs-{uuid.uuid4().hex[:6]}"
    mnt.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_real_disk_full_keeps_the_previous_file(tiny_fs):
    target = tiny_fs / "model.safetensors"
    hio.atomic_write_bytes(target, b"old" * 1000)
    with pytest.raises(WriteError) as info:
        hio.atomic_write_bytes(target, b"x" * 2_000_000)
    assert "no space left" in str(info.value) and "1.9 MB needed" in str(info.value)
    assert target.read_bytes() == b"old" * 1000 and sorted(os.listdir(tiny_fs)) == ["model.safetensors"]
    with pytest.raises(WriteError, match="no space left"):
        with hio.atomic_directory(tiny_fs / "model") as stage:
            from safetensors.numpy import save_file
            import numpy as np

            save_file({"w": np.zeros(400_000, dtype=np.float32)}, str(stage / "model.safetensors"))
    assert sorted(os.listdir(tiny_fs)) == ["model.safetensors"]


def test_real_read_only_file_system(tiny_fs):
    (tiny_fs / "metrics.json").write_text("old")
    remount = subprocess.run(["mount", "-o", "remount,ro", str(tiny_fs)], capture_output=True)
    if remount.returncode != 0:
        pytest.skip("cannot remount read-only here")
    with pytest.raises(WriteError, match="read-only"):
        hio.atomic_write_text(tiny_fs / "metrics.json", "new")
    with pytest.raises(WriteError, match="read-only"):
        hio.append_line(tiny_fs / "metrics.jsonl", "{}")
    assert os.listdir(tiny_fs) == ["metrics.json"] and (tiny_fs / "metrics.json").read_text() == "old"


def test_a_working_directory_inside_a_replaced_directory_follows_it(tmp_path, monkeypatch):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "last").write_text("step-1")
    monkeypatch.chdir(run / "checkpoints")
    with hio.atomic_directory(run, carry_over=True) as stage:
        (stage / "model").write_text("weights")
    assert os.getcwd() == str(run / "checkpoints") and Path("last").read_text() == "step-1"
    assert Path("../model").read_text() == "weights"


def _special(kind: str, path: Path) -> None:
    import socket

    if kind == "character device":
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    elif kind == "block device":
        os.mknod(path, stat.S_IFBLK | 0o600, os.makedev(7, 201))
    elif kind == "named pipe":
        os.mkfifo(path)
    elif kind == "socket":
        with socket.socket(socket.AF_UNIX) as sock:
            sock.bind(str(path))
    else:  # a link to /dev/null
        path.symlink_to("/dev/null")


@pytest.mark.parametrize("write", ["bytes", "text", "json", "path"])
@pytest.mark.parametrize("kind", ["character device", "block device", "named pipe", "socket", "link to /dev/null"])
def test_a_special_file_is_never_written_over(kind, write, tmp_path):
    if "device" in kind and os.geteuid() != 0:
        pytest.skip("making a device node needs root")
    target = tmp_path / "out"
    _special(kind, target)
    before = os.lstat(target)
    with pytest.raises(WriteError, match="never writes over special files"):
        if write == "path":
            with hio.atomic_path(target) as tmp:
                tmp.write_text("x")
        else:
            {"bytes": lambda: hio.atomic_write_bytes(target, b"x"), "text": lambda: hio.atomic_write_text(target, "x"),
             "json": lambda: hio.atomic_write_json(target, {"x": 1})}[write]()
    after = os.lstat(target)
    assert (after.st_mode, after.st_ino, after.st_rdev) == (before.st_mode, before.st_ino, before.st_rdev)
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no temporary file left
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
