"""Where weights come from: a local directory, a directory inside a Python package, or a hub id.

Forms of ``spec.source`` and ``spec.local``:

- ``hf-hub:org/name`` - a Hugging Face hub repository, at ``spec.revision`` when pinned. Found in
  the local HF cache first; downloaded only when ``HF_HUB_OFFLINE`` is not set. When the weights
  cannot be had, :class:`hub.errors.ModelUnavailableError` says which id and how to get them.
- ``package:module/sub/dir`` - a directory shipped inside an installed Python package.
- anything else - a local directory (``~`` expanded, relative to the working directory).

``spec.local``, when given and present, is used before ``spec.source``.

Weights files are checked before a library reads them: a safetensors file by its header (a truncated
or corrupt file is refused with its path and the fix), a pickle only as plain tensors
(``torch.load(weights_only=True)``), so that no code inside it runs.
"""
from __future__ import annotations

import importlib.util
import json
import os
from contextlib import contextmanager
from pathlib import Path

from hub.errors import ModelUnavailableError, WeightsError, shell_command

HF_PREFIX = "hf-hub:"
PACKAGE_PREFIX = "package:"
MAX_SAFETENSORS_HEADER = 100_000_000  # the safetensors format's own limit on its JSON header
MIN_KEY_COVERAGE = 0.9  # a checkpoint giving fewer of a model's weights than this is refused
MISSING_SHOWN = 8  # missing weight names an error lists before "and N more"


def is_hub_id(source: str) -> bool:
    return source.startswith(HF_PREFIX)


def offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes", "on")


def package_dir(source: str) -> Path | None:
    """The directory ``package:module/sub`` points at, or None when the package is not installed."""
    module, _, sub = source[len(PACKAGE_PREFIX):].partition("/")
    try:
        found = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if found is None or not found.submodule_search_locations:
        return None
    path = Path(list(found.submodule_search_locations)[0]) / sub
    return path if path.exists() else None


def local_path(source: str) -> Path | None:
    """The directory for a non-hub source if it exists, else None."""
    if source.startswith(PACKAGE_PREFIX):
        return package_dir(source)
    path = Path(source).expanduser()
    return path if path.exists() else None


def resolve(spec, allow_patterns: list[str] | None = None) -> Path:
    """A local directory holding the weights of ``spec``; downloads only when online."""
    for source in (spec.local, spec.source):
        if not source or is_hub_id(source):
            continue
        path = local_path(source)
        if path is not None:
            return path
    if is_hub_id(spec.source):
        return hub_snapshot(spec.id, spec.source[len(HF_PREFIX):], spec.revision, allow_patterns)
    raise ModelUnavailableError(
        f"weights for model '{spec.id}' not found at '{spec.source}'"
        + (f" (nor at '{spec.local}')" if spec.local else "")
        + ". Check the path, or install the package that ships them."
    )


def hub_snapshot(model_id: str, repo: str, revision: str | None, allow_patterns=None) -> Path:
    """The cached snapshot of ``repo``; fetched only when not offline. Never hangs offline."""
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise ModelUnavailableError(
            f"model '{model_id}' comes from the hub ('{repo}') and needs huggingface_hub: "
            f"{shell_command('pip', 'install', 'huggingface_hub')}"
        ) from None
    try:
        return Path(snapshot_download(repo, revision=revision, allow_patterns=allow_patterns,
                                      local_files_only=True))
    except Exception:
        if offline():
            raise ModelUnavailableError(_how_to_get(model_id, repo, revision, "HF_HUB_OFFLINE=1 is set")) from None
    try:
        return Path(snapshot_download(repo, revision=revision, allow_patterns=allow_patterns, etag_timeout=10))
    except Exception as exc:
        raise ModelUnavailableError(_how_to_get(model_id, repo, revision, f"download failed: {type(exc).__name__}")) from None


def download_command(repo: str, revision: str | None, force: bool = False) -> str:
    """The ``hf download`` command (shell-quoted, in backticks) that fetches ``repo`` at ``revision``."""
    argv = ["hf", "download", repo]
    if revision:
        argv += ["--revision", revision]
    if force:
        argv.append("--force-download")
    return shell_command(*argv)


def _how_to_get(model_id: str, repo: str, revision: str | None, why: str) -> str:
    return (
        f"weights for model '{model_id}' (hub id '{repo}') are not in the local Hugging Face cache and "
        f"cannot be downloaded now ({why}). On a machine with network access run "
        f"{download_command(repo, revision)} (or run the model once while online), or point the "
        f"catalogue entry's 'local' field at a directory with the weights."
    )


def refetch_hint(spec, local_fix: str) -> str:
    """How to replace broken weights: download them again for a hub id, else ``local_fix``."""
    source = getattr(spec, "source", "") or ""
    if is_hub_id(source):
        return f"download them again: {download_command(source[len(HF_PREFIX):], spec.revision, force=True)}"
    return local_fix


def check_safetensors(path, fix: str) -> None:
    """Refuse a truncated or corrupt safetensors file from its header alone (no tensor is read)."""
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as fh:
        prefix = fh.read(8)
        length = int.from_bytes(prefix, "little") if len(prefix) == 8 else -1
        if length < 2 or length > min(MAX_SAFETENSORS_HEADER, size - 8):
            raise WeightsError(f"'{path}' is not a complete safetensors file ({size} bytes, no readable header: "
                               f"truncated or corrupt); {fix}")
        raw = fh.read(length)
    ends = _tensor_ends(path, raw, fix)
    data = size - 8 - length
    needed = max(ends, default=0)
    if needed > data:
        raise WeightsError(f"'{path}' is truncated: its header describes {8 + length + needed} bytes but the file has "
                           f"{size}; {fix}")
    if needed < data:
        raise WeightsError(f"'{path}' is corrupt: {data - needed} bytes follow its last tensor; {fix}")


def _tensor_ends(path: Path, raw: bytes, fix: str) -> list[int]:
    """The end offset of each tensor in a safetensors header; WeightsError when the header is malformed."""
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        header = None
    if not isinstance(header, dict):
        raise WeightsError(f"'{path}' is corrupt: its safetensors header is not a JSON object; {fix}")
    ends = []
    for name, info in header.items():
        if name == "__metadata__":
            continue
        offsets = info.get("data_offsets") if isinstance(info, dict) else None
        if (not isinstance(offsets, list) or len(offsets) != 2 or not all(type(x) is int for x in offsets)
                or not 0 <= offsets[0] <= offsets[1]):
            raise WeightsError(f"'{path}' is corrupt: tensor '{name}' has no valid data offsets; {fix}")
        ends.append(offsets[1])
    return ends


def check_coverage(model_id: str, expected, missing, where, fix: str) -> None:
    """Refuse a checkpoint holding fewer than ``MIN_KEY_COVERAGE`` of the weights a model expects.

    ``expected`` are the model's weight names, ``missing`` those the checkpoint did not give (absent or of
    another shape). Such a load would run a mostly random model; the WeightsError lists what is missing."""
    names = list(dict.fromkeys(expected))
    if not names:
        return
    gone = sorted(set(missing))
    found = max(0, len(names) - len(gone))
    if found >= MIN_KEY_COVERAGE * len(names):
        return
    shown = ", ".join(gone[:MISSING_SHOWN]) + (f" and {len(gone) - MISSING_SHOWN} more" if len(gone) > MISSING_SHOWN
                                               else "")
    raise WeightsError(f"model '{model_id}': the checkpoint in '{where}' holds {found} of the {len(names)} weights "
                       f"the model expects (under {MIN_KEY_COVERAGE:.0%}), so it would run as a mostly random model. "
                       f"Missing: {shown}. Check that the checkpoint is of this architecture; {fix}")


def load_safetensors(path, fix: str) -> dict:
    """The tensors of a checked safetensors file, on the CPU; errors name the file and ``fix``."""
    check_safetensors(path, fix)
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except Exception as exc:
        raise WeightsError(f"'{path}' cannot be read as safetensors ({_first_line(exc)}); {fix}") from None


def load_pickled_tensors(path, fix: str) -> dict:
    """Plain tensors from a pickle (``torch.load(weights_only=True)``); anything else is refused, never run."""
    import torch

    try:
        with quiet_pickle_warnings():
            return torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise unsafe_pickle_error(path, exc, fix) from None


@contextmanager
def quiet_pickle_warnings():
    """Silence torch's note on a pickle's protocol version: the pickle is refused or loaded either way."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
        yield


def is_pickle_failure(exc: BaseException) -> bool:
    """Whether ``exc`` comes from torch.load refusing or failing to read a pickled checkpoint."""
    import pickle

    text = str(exc)
    return (isinstance(exc, (pickle.UnpicklingError, EOFError)) or "Weights only load failed" in text
            or "PytorchStreamReader" in text)


def unsafe_pickle_error(path, exc: BaseException, fix: str) -> WeightsError:
    """The error for a pickle that is not plain tensors (or not a readable pickle at all)."""
    return WeightsError(
        f"'{path}' cannot be read as plain tensors ({_pickle_problem(exc)}). The hub loads pickled weights only "
        f"with torch.load(weights_only=True), so that no code inside them runs; {fix}")


def _pickle_problem(exc: BaseException) -> str:
    """What torch's weights-only unpickler refused, in a few words."""
    import re

    text = str(exc)
    found = re.search(r"GLOBAL ([\w.]+)", text)
    if found:
        return f"it refers to {found.group(1)}, which is not a tensor"
    if "Weights only load failed" in text or "Unsupported operand" in text:
        return "it holds more than tensors"
    if "PytorchStreamReader" in text or isinstance(exc, EOFError):
        return "it is not a complete PyTorch checkpoint: truncated or corrupt"
    return _first_line(exc)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def availability(spec) -> str:
    """Where the weights of ``spec`` are, found without loading or fetching anything: ``'local'`` (a directory
    here, or the hub id's snapshot in the local Hugging Face cache), ``'download'`` (a hub id fetched on first
    use), ``'missing'`` (a hub id not cached while offline, or a directory that is not there) or ``'unknown'``
    (a plugin's own kind of source, which only its loader understands)."""
    for source in (spec.local, spec.source):
        if source and not is_hub_id(source) and local_path(source) is not None:
            return "local"
    source = spec.source or ""
    if is_hub_id(source):
        if hub_cached(source[len(HF_PREFIX):], spec.revision):
            return "local"
        return "missing" if offline() else "download"
    if source.startswith(PACKAGE_PREFIX) or "/" in source or "\\" in source or source.startswith(("~", ".")):
        return "missing"
    return "unknown"


def hub_cached(repo: str, revision: str | None) -> bool:
    """Whether a snapshot of ``repo`` at ``revision`` is in the local Hugging Face cache (no network)."""
    try:
        from huggingface_hub import snapshot_download

        snapshot_download(repo, revision=revision, local_files_only=True)
    except Exception:  # not cached, or huggingface_hub missing: either way not here
        return False
    return True
