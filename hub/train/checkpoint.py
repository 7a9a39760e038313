"""Crash-safe training checkpoints.

Layout under ``OUT/checkpoints``::

    step-00000120/model.safetensors   module weights (safetensors, shared tensors handled)
    step-00000120/state.pt            optimiser, scheduler, grad scaler, RNG states, position,
                                      best metric, early-stopping counter, run arguments
    step-00000120/sharded/            instead of model.safetensors (and the optimiser state) when
                                      trained with --shard: every rank's shards (hub.train.sharded)
    last                              text file naming the newest complete checkpoint
    best                              text file naming the checkpoint with the best metric

A checkpoint is written into a hidden temporary folder, fsynced, and renamed into place
(:func:`hub.io.atomic_directory`); the ``last``/``best`` pointers are replaced the same way. A crash
or a full disk at any moment leaves either the old checkpoint or the new one, never a half-written
one, and leftovers of an interrupted save are ignored and cleaned up by the next save. A checkpoint
that cannot be read all the same (a damaged disk, a copy gone wrong) is moved aside as
``step-N.corrupt`` and the run resumes from the newest one that reads (:func:`latest_loadable`).
``state.pt`` holds only tensors, numbers, strings, lists and dicts, so it loads with
``torch.load(weights_only=True)``.
"""
from __future__ import annotations

import random
import shutil
from pathlib import Path

from hub.errors import HubError
from hub.io import atomic_directory, atomic_write_text

WEIGHTS = "model.safetensors"
STATE = "state.pt"
PREFIX = "step-"
SHARDED = "sharded"  # the DCP folder of a checkpoint written with --shard (hub.train.sharded)


def step_name(step: int) -> str:
    return f"{PREFIX}{step:08d}"


def save_checkpoint(root, module, state: dict, best: bool = False, keep: int = 2) -> Path:
    """Write checkpoint ``step-<state['step']>`` atomically; update ``last`` (and ``best``)."""
    import torch
    from safetensors.torch import save_model

    root = Path(root)
    name = step_name(int(state["step"]))
    final = root / name
    with atomic_directory(final) as tmp:  # the same step saved again (epoch end == eval step) is replaced
        save_model(_unwrap(module), str(tmp / WEIGHTS))
        with open(tmp / STATE, "wb") as fh:
            torch.save(state, fh)
    publish(root, name, best, keep)
    return final


def publish(root, name: str, best: bool = False, keep: int = 2) -> None:
    """Point ``last`` (and ``best``) at the checkpoint ``name`` just written; prune older ones."""
    root = Path(root)
    atomic_write_text(root / "last", name + "\n")
    if best:
        atomic_write_text(root / "best", name + "\n")
    prune(root, keep)


def _unwrap(module):
    return getattr(module, "module", module) if type(module).__name__ == "DistributedDataParallel" else module


def complete(path: Path) -> bool:
    """A checkpoint folder with its state and its weights (a safetensors file, or sharded: hub.train.sharded)."""
    weights = (path / WEIGHTS).is_file() or (path / "sharded" / ".metadata").is_file()
    return path.is_dir() and weights and (path / STATE).is_file()


def checkpoints(root) -> list[Path]:
    """Complete checkpoints under ``root``, oldest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.name.startswith(PREFIX) and p.name[len(PREFIX):].isdigit()]
    return sorted((p for p in found if complete(p)), key=lambda p: int(p.name[len(PREFIX):]))


def pointer(root, which: str = "last") -> Path | None:
    """The checkpoint named by ``last``/``best``, else (for ``last``) the newest complete one."""
    root = Path(root)
    try:
        target = root / (root / which).read_text(encoding="utf-8").strip()
        if complete(target):
            return target
    except OSError:
        pass
    if which == "last":
        found = checkpoints(root)
        return found[-1] if found else None
    return None


def prune(root, keep: int) -> None:
    """Delete all but the newest ``keep`` checkpoints (never ``best``) and stale temp folders."""
    root = Path(root)
    protect = {p for p in (pointer(root, "last"), pointer(root, "best")) if p is not None}
    found = checkpoints(root)
    for path in found[:max(0, len(found) - keep)]:
        if path not in protect:
            shutil.rmtree(path, ignore_errors=True)
    for path in root.glob(f".{PREFIX}*"):
        if path.name.endswith((".tmp", ".old")):  # what a killed save leaves (hub.io temporary names)
            shutil.rmtree(path, ignore_errors=True)


def latest_loadable(root, move_aside: bool = True) -> tuple[Path | None, dict | None, list[str]]:
    """The newest checkpoint under ``root`` that reads, its state, and what was wrong with newer ones.

    Unreadable checkpoints met on the way are renamed ``<name>.corrupt`` (with ``move_aside``; one
    process of a distributed run does it) so they are not tried again.
    """
    root = Path(root)
    candidates = [p for p in [pointer(root, "last")] + checkpoints(root)[::-1] if p is not None]
    problems: list[str] = []
    for path in dict.fromkeys(candidates):
        try:
            check_weights(path)
            return path, load_state(path), problems
        except HubError as exc:
            if not move_aside:
                problems.append(str(exc))
                continue
            aside = path.with_name(path.name + ".corrupt")
            shutil.rmtree(aside, ignore_errors=True)
            path.rename(aside)
            problems.append(f"{exc} (moved to {aside.name})")
    return None, None, problems


def check_weights(path) -> None:
    """Raise HubError when checkpoint ``path``'s weights file is not a whole safetensors file."""
    from safetensors import safe_open

    if (Path(path) / "sharded").is_dir():
        return check_sharded(path)
    try:
        with safe_open(str(Path(path) / WEIGHTS), framework="pt") as fh:
            fh.keys()
    except Exception as exc:
        raise HubError(f"cannot read the checkpoint weights '{Path(path) / WEIGHTS}': {exc}") from None


def load_state(path) -> dict:
    """The training state of checkpoint folder ``path`` (weights_only load)."""
    import torch

    try:
        return torch.load(Path(path) / STATE, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise HubError(f"cannot read the checkpoint '{path}': {exc}. Delete it to resume from an older one") from None


def load_weights(module, path, device: str = "cpu") -> None:
    """Load checkpoint ``path``'s weights into ``module`` (strict: every tensor must match)."""
    from safetensors.torch import load_model

    missing, unexpected = load_model(_unwrap(module), str(Path(path) / WEIGHTS), strict=False, device=device)
    if missing or unexpected:
        raise HubError(f"checkpoint '{path}' does not match the model: missing {sorted(missing)[:5]}, "
                       f"unexpected {sorted(unexpected)[:5]}. Resume with the same model and task")


# -- RNG states ------------------------------------------------------------------------------
def rng_state() -> dict:
    """Python, numpy, torch and CUDA generator states as weights_only-loadable values."""
    import numpy as np
    import torch

    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {"python": {"version": version, "state": list(internal), "gauss": gauss},
             "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                       "has_gauss": int(has_gauss), "cached": float(cached)},
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    import numpy as np
    import torch

    py = state["python"]
    random.setstate((py["version"], tuple(py["state"]), py["gauss"]))
    nps = state["numpy"]
    np.random.set_state((nps["kind"], nps["keys"].numpy().astype(np.uint32), nps["pos"], nps["has_gauss"],
                         nps["cached"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        cuda = state["cuda"]
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)


def argument_differences(saved: dict, current: dict, ignore=("resume", "out", "nproc")) -> list[str]:
    """``name: old -> new`` for every run argument that changed since the checkpoint."""
    diffs = []
    for key in sorted(set(saved) | set(current)):
        if key in ignore:
            continue
        old, new = saved.get(key, "<unset>"), current.get(key, "<unset>")
        if old != new:
            diffs.append(f"{key}: {old!r} -> {new!r}")
    return diffs


def is_sharded(path) -> bool:
    return (Path(path) / SHARDED).is_dir()


def check_sharded(path) -> None:
    """Raise HubError when checkpoint ``path``'s sharded state has no readable DCP metadata."""
    import torch.distributed.checkpoint as dcp

    try:
        dcp.FileSystemReader(str(Path(path) / SHARDED)).read_metadata()
    except Exception as exc:
        raise HubError(f"cannot read the sharded checkpoint '{Path(path) / SHARDED}': {exc}") from None
