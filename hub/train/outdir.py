"""The output directory of ``hub finetune``: which directories a run may use, and the run's lock.

Checked before any data is read or any weights are loaded:

- ``--out`` is a directory, or does not exist yet (it is then created); never a special file, and
  never ``--data`` or ``--val``, a directory holding them or one inside them (:mod:`hub.outputs`).
- It is not the model's own source directory, nor inside it, nor around it: the starting weights
  are never written over.
- A non-empty ``--out`` must be a hub run: a directory holding ``.mmhub-run``, the marker that
  ``hub finetune`` writes when a run starts (or, from older runs, ``checkpoints/last``). Any other
  non-empty directory is refused unless ``--overwrite``.
- A hub run with results (checkpoints, a model, a log) is continued with ``--resume`` or started
  over with ``--overwrite``; without either it is refused.
- ``--overwrite`` never deletes anything: the entries already in ``--out`` are moved into
  ``OUT/.replaced-<time>/`` (named in a warning), to be removed by the user once no longer needed.
- The run holds an exclusive, non-blocking ``flock`` on ``OUT/.mmhub-run`` from the start to the
  end, so a second run on the same ``--out`` fails at once, naming the first (pid, start time).
  The marker is the one file the hub rewrites in place (the lock belongs to its inode); it holds
  JSON: pid, host, start time, model, task, data.
- ``--out`` must be writable (a probe file is written and removed) and have room for at least the
  model and one checkpoint (:func:`check_space`; less than a whole run's estimate warns).

A run that fails before it wrote anything leaves ``--out`` as it found it (a directory the run
created is removed again).
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
import warnings
from pathlib import Path

from hub.errors import OutputDirError, WriteError
from hub.io import atomic_write_text, free_bytes, human_bytes, is_temp_name, remove_path
from hub.local import CARD_NAME, RUN_MARKER, is_run_directory, read_run_marker
from hub.outputs import check_output_dir

REPLACED_PREFIX = ".replaced-"
PROBE = ".mmhub-write-test"


class RunLock:
    """The held lock of one run on its output directory; ``release`` when the run ends."""

    def __init__(self, out: Path, fd: int, created: bool):
        self.out, self.fd, self.created = out, fd, created

    def release(self, failed: bool = False) -> None:
        """Unlock; after a failure that wrote nothing, leave the directory as it was found."""
        if self.fd < 0:
            return
        if failed and _entries(self.out) == {RUN_MARKER}:
            with contextlib.suppress(OSError):
                (self.out / RUN_MARKER).unlink()
                if self.created:
                    self.out.rmdir()
        os.close(self.fd)  # closing the descriptor drops the flock
        self.fd = -1

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, kind, exc, tb) -> None:
        self.release(failed=exc is not None)


def open_run(out, spec, info: dict, resume: bool = False, overwrite: bool = False) -> RunLock:
    """Check ``out`` for a run of ``spec``, create it, take its lock and record ``info`` in the marker."""
    out = Path(out)
    if resume and overwrite:
        raise OutputDirError("--resume continues the run in --out and --overwrite starts it over; pass one of them")
    check_output_dir(out, "--out", [("--data", info.get("data")), ("--val", info.get("val"))])
    check_not_source(out, spec)
    fd = _lock_existing(out)
    try:
        move = _decide(out, resume, overwrite)
        created = not out.exists()
        if fd < 0:
            fd = _create_and_lock(out)
        lock = RunLock(out, fd, created)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        raise
    try:
        _write_marker(fd, info)
        check_writable(out)
        _remove_debris(out)
        if move:
            aside = move_aside(out)
            warnings.warn(f"--overwrite: moved what was in '{out}' to '{aside}'; delete it when it is no longer "
                          "needed", stacklevel=3)
    except BaseException:
        lock.release(failed=True)
        raise
    return lock


# -- the checks ---------------------------------------------------------------------------------
def check_not_source(out: Path, spec) -> None:
    """Refuse an ``out`` that is, holds or lies inside a directory the model's weights come from."""
    target = Path(os.path.realpath(out))
    for source in source_directories(spec):
        src = Path(os.path.realpath(source))
        if target == src or src in target.parents or target in src.parents:
            where = "is" if target == src else ("is inside" if src in target.parents else "contains")
            raise OutputDirError(f"--out '{out}' {where} the directory the weights of '{spec.id}' come from "
                                 f"('{src}'); writing there could overwrite them. Choose another --out")


def source_directories(spec) -> list[Path]:
    """Local directories that hold (or cache) ``spec``'s starting weights."""
    from hub.weights import is_hub_id, local_path

    found = []
    for source in (getattr(spec, "local", None), spec.source):
        if not source:
            continue
        if is_hub_id(source):
            cache = _hf_cache()
            if cache is not None:
                found.append(cache)
        else:
            path = local_path(source)
            if path is not None:
                found.append(path)
    return found


def _hf_cache() -> Path | None:
    try:
        from huggingface_hub import constants
    except ImportError:
        return None
    return Path(constants.HF_HUB_CACHE)


def _decide(out: Path, resume: bool, overwrite: bool) -> bool:
    """Whether the run may use ``out``; True when its entries are to be moved aside first."""
    entries = {e for e in _entries(out) if not is_temp_name(e) and not e.startswith(REPLACED_PREFIX)}
    if not entries - {RUN_MARKER, PROBE}:
        return False
    if not is_run_directory(out):
        if overwrite:
            return True
        shown = ", ".join(sorted(entries)[:3]) + (", ..." if len(entries) > 3 else "")
        raise OutputDirError(f"--out '{out}' is not empty ({shown}) and is not a 'hub finetune' run (it has no "
                             f"{RUN_MARKER}); choose an empty or new directory, or pass --overwrite to move what "
                             f"is there into {out / (REPLACED_PREFIX + '<time>')} first")
    if resume:
        return False
    if overwrite:
        return True
    done = "a finished" if (out / CARD_NAME).is_file() else "an unfinished"
    raise OutputDirError(f"--out '{out}' holds {done} earlier run; pass --resume to continue it, --overwrite to "
                         f"start over (its files are moved into {out / (REPLACED_PREFIX + '<time>')}), or choose "
                         "another --out")


def check_writable(out: Path) -> None:
    """Write, fsync and remove a probe file in ``out``; a WriteError names the directory."""
    try:
        atomic_write_text(out / PROBE, "the output directory is writable\n")
    except WriteError as exc:
        raise WriteError(f"the output directory '{out}' cannot be written: {exc}") from None
    with contextlib.suppress(OSError):
        (out / PROBE).unlink()


def check_space(out, module, keep_checkpoints: int = 2) -> None:
    """Refuse when ``out`` cannot hold the model and one checkpoint; warn below a whole run's estimate."""
    tensors = list(module.parameters()) + list(module.buffers())
    weights = sum(t.numel() * t.element_size() for t in tensors)
    moments = sum(p.numel() * 4 * 2 for p in module.parameters() if p.requires_grad)  # Adam, fp32
    minimum = 2 * weights
    estimate = weights + (keep_checkpoints + 2) * (weights + moments)
    free = free_bytes(out)
    if free < minimum:
        raise WriteError(f"not enough free space in '{out}': {human_bytes(free)} free, at least "
                         f"{human_bytes(minimum)} needed for the model and one checkpoint. Free some space or "
                         "choose another --out")
    if free < estimate:
        warnings.warn(f"'{out}' has {human_bytes(free)} free; the run may need up to {human_bytes(estimate)} "
                      f"(model and {keep_checkpoints + 1} checkpoints with optimiser state)", stacklevel=3)


# -- the lock -----------------------------------------------------------------------------------
def _lock_existing(out: Path) -> int:
    """Lock an existing marker (-1 when there is none); a held one names the run that holds it."""
    marker = out / RUN_MARKER
    if not marker.is_file():
        return -1
    try:
        fd = os.open(marker, os.O_RDWR)
    except OSError as exc:
        raise WriteError(f"the output directory '{out}' cannot be written: cannot open {marker} "
                         f"({exc.strerror}). Choose a directory you can write to") from None
    _flock_or_refuse(fd, out)
    return fd


def _create_and_lock(out: Path) -> int:
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd = os.open(out / RUN_MARKER, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as exc:
        raise WriteError(f"the output directory '{out}' cannot be written: {exc.strerror}. Choose a directory "
                         "you can write to") from None
    _flock_or_refuse(fd, out)
    return fd


def _flock_or_refuse(fd: int, out: Path) -> None:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        info = read_run_marker(out)
        raise OutputDirError(f"another 'hub finetune' is writing to '{out}' (pid {info.get('pid', '?')} on "
                             f"{info.get('host', '?')}, started {info.get('started', '?')}); wait for it to finish "
                             "or choose another --out") from None


def _write_marker(fd: int, info: dict) -> None:
    record = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S %z"),
              **info}
    data = (json.dumps(record, indent=2) + "\n").encode("utf-8")
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, data, 0)
        os.fsync(fd)
    except OSError as exc:
        raise WriteError(f"cannot write the run marker: {exc.strerror}. Choose a directory you can write to") from None


# -- moving aside and cleaning up -----------------------------------------------------------------
def move_aside(out: Path) -> Path:
    """Move every entry of ``out`` but the marker (and earlier moved-aside folders) into a new folder."""
    aside = out / f"{REPLACED_PREFIX}{time.strftime('%Y%m%d-%H%M%S')}"
    n = 1
    while aside.exists():
        n += 1
        aside = out / f"{REPLACED_PREFIX}{time.strftime('%Y%m%d-%H%M%S')}-{n}"
    aside.mkdir()
    for name in sorted(_entries(out)):
        if name == RUN_MARKER or name.startswith(REPLACED_PREFIX) or is_temp_name(name):
            continue
        os.rename(out / name, aside / name)
    return aside


def _remove_debris(out: Path) -> None:
    """Remove temporary files a killed run left in ``out``, and its half-built model beside it."""
    for name in _entries(out):
        if is_temp_name(name):
            remove_path(out / name)
    parent = Path(os.path.realpath(out)).parent
    with contextlib.suppress(OSError):
        for entry in os.scandir(parent):
            if is_temp_name(entry.name, of=Path(os.path.realpath(out)).name):
                remove_path(Path(entry.path))


def _entries(path: Path) -> set[str]:
    try:
        return set(os.listdir(path))
    except OSError:
        return set()
