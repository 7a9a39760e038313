"""Model directories that describe themselves: ``mmhub.yaml`` beside the weights.

``hub finetune`` writes one, so its output directory is itself a model: ``hub run DIR``,
``hub info DIR``, and a path to it can be listed in a user catalogue (``HUB_CATALOG``).

A run directory is marked by ``.mmhub-run`` from the moment ``hub finetune`` starts: the running
process holds an exclusive lock on it and it records the process id, start time, model and data
(JSON). A directory with that marker (or with checkpoints) but without ``mmhub.yaml`` is a run
that has not finished; it is refused as a model with the command that finishes it.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from hub.io import atomic_write_text

CARD_NAME = "mmhub.yaml"
RUN_MARKER = ".mmhub-run"
MODEL_DIR_CONTENTS = (f"a model directory holds {CARD_NAME} (written by 'hub finetune' and 'hub export') or files a "
                      "plugin recognises: config.json + model.safetensors (transformers save_pretrained, timm), "
                      "open_clip_config.json (open_clip) or torchvision_config.json (torchvision)")
MODEL_FILES = frozenset({CARD_NAME, "config.json", "open_clip_config.json", "torchvision_config.json"})


def spec_from_directory(path):
    """The ModelSpec described by ``path/mmhub.yaml``, or None when there is none.

    Raises IncompleteModelError for a ``hub finetune`` run directory that has no mmhub.yaml yet.
    """
    from hub.errors import CatalogError
    from hub.safe_yaml import load as _yaml_load
    from hub.spec import ModelSpec

    card = Path(path) / CARD_NAME
    if not card.is_file():
        check_finished(path)
        return None
    try:
        data = _yaml_load(card.read_text(encoding="utf-8")) or {}
    except Exception as exc:
        raise CatalogError(card, None, None, f"not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise CatalogError(card, None, None, "expected a mapping of catalogue fields")
    data = dict(data)
    model_id = str(data.pop("id", None) or Path(path).resolve().name)
    data["source"] = str(Path(path).resolve())
    data.pop("local", None)
    return ModelSpec.from_mapping(model_id, data, str(card))


def write_card(path, fields: dict) -> Path:
    """Write ``mmhub.yaml`` atomically (temp file, then rename)."""
    import yaml

    target = Path(path) / CARD_NAME
    atomic_write_text(target, yaml.safe_dump(fields, sort_keys=False))
    return target


def looks_like_path(model_id: str) -> bool:
    """Whether a MODEL argument reads as a path rather than an id: a separator, a leading . or ~, or on disk."""
    text = str(model_id)
    if "/" in text or os.sep in text or text.startswith((".", "~")):
        return True
    try:
        return os.path.lexists(text)
    except (OSError, ValueError):
        return False


def not_a_model_directory(model_id: str, suggestions=()):
    """The HubError for a path given as MODEL that is not a directory: missing, a file, or a special file.

    ``suggestions`` are catalogue ids the text may have meant (a missing path is often a misspelt id,
    or a Hub repository that a catalogue entry serves).
    """
    from hub.errors import HubError
    from hub.inputs import printable

    shown = printable(str(model_id))
    path = Path(str(model_id)).expanduser()
    try:
        kind = ("missing" if not os.path.lexists(path) else "file" if path.is_file() else
                "dangling" if path.is_symlink() and not path.exists() else "other")
    except (OSError, ValueError):
        kind = "missing"
    choose = f"Give a model id from `hub list`, or a directory: {MODEL_DIR_CONTENTS}"
    if kind == "missing":
        where = _nearest_existing(path)
        near = f" (the nearest existing folder is '{printable(str(where))}')" if where is not None else ""
        meant = f" Did you mean: {', '.join(suggestions)}?" if suggestions else ""
        return HubError(f"'{shown}' is not a model id, and no such path exists{near}.{meant} {choose}")
    if kind == "file" and (path.name in MODEL_FILES or path.suffix in (".safetensors", ".bin", ".onnx", ".xml")):
        return HubError(f"'{shown}' is a file of a model, not a model directory: give the directory that holds it, "
                        f"'{printable(str(path.resolve().parent))}'")
    if kind == "dangling":
        return HubError(f"'{shown}' is a symbolic link to '{printable(os.readlink(path))}', which does not exist. "
                        f"{choose}")
    what = "a file" if kind == "file" else "a special file (a device, socket or pipe)"
    return HubError(f"'{shown}' is {what}, not a model directory. {choose}")


def _nearest_existing(path: Path) -> Path | None:
    """The closest folder above ``path`` that exists, unless that is only the root or the working directory."""
    for parent in path.absolute().parents:
        if parent.is_dir():
            return None if parent in (Path(parent.anchor), Path.cwd()) else parent
    return None


# -- run directories ------------------------------------------------------------------------------
def is_run_directory(path) -> bool:
    """Whether ``path`` was made by ``hub finetune``: it has the run marker or a checkpoint pointer."""
    path = Path(path)
    return (path / RUN_MARKER).is_file() or (path / "checkpoints" / "last").is_file()


def read_run_marker(path) -> dict:
    """What the run marker of directory ``path`` records (empty when absent or unreadable)."""
    try:
        data = json.loads((Path(path) / RUN_MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def run_in_progress(path) -> bool:
    """Whether a process holds the lock of the run in directory ``path`` right now."""
    import fcntl

    try:
        fd = open(Path(path) / RUN_MARKER, "rb")  # noqa: SIM115  (read-only: only to test the lock)
    except OSError:
        return False
    with fd:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return True
        fcntl.flock(fd, fcntl.LOCK_UN)
    return False


def check_finished(path) -> None:
    """Raise IncompleteModelError when ``path`` is a run directory without its mmhub.yaml."""
    from hub.errors import IncompleteModelError

    path = Path(path)
    if (path / CARD_NAME).is_file() or not is_run_directory(path):
        return
    info = read_run_marker(path)
    if run_in_progress(path):
        raise IncompleteModelError(
            f"the run in '{path}' is still training (pid {info.get('pid', '?')}, started "
            f"{info.get('started', '?')}); its model is written when it finishes. Wait for it to end")
    raise IncompleteModelError(f"the run in '{path}' did not finish: it has no {CARD_NAME}. Finish it with "
                               f"{resume_command(path, info)} (the same options as before)")


def resume_command(path, info: dict) -> str:
    """The ``hub finetune ... --resume`` command that continues the run in ``path``."""
    from hub.errors import shell_command

    argv = ["hub", "finetune", info.get("model") or "MODEL", "--data", info.get("data") or "DATA"]
    for option in ("val", "task"):
        if info.get(option):
            argv += [f"--{option}", info[option]]
    return shell_command(*argv, "--out", str(path), "--resume")
