"""Measurements of models on this machine, as ``hub bench`` took them; read by ``--backend auto`` and ``hub recommend``.

One JSON file per machine under the hub's cache directory: ``$HUB_CACHE_DIR/bench/``, else
``$XDG_CACHE_HOME/mmhub/bench/``, else ``~/.cache/mmhub/bench/``. The machine key is built from the
CPU model, the core count, the GPU name and torch's version, so a new GPU or a torch upgrade starts
a fresh file. Nothing here imports torch: the torch version is read from its installed metadata and
the GPU name from the NVIDIA driver's ``/proc`` entries (or ``nvidia-smi``).

A file holds, per model key (the catalogue id, or a model directory's resolved path), one record per
(backend, dtype, device kind): the figures ``hub bench`` measured and when. A newer measurement of the
same slot replaces the older one. A store file that cannot be read is reported once as a warning
naming it and the fix, and treated as empty; never an error.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import time
import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from hub.cache import hub_cache_dir  # noqa: F401  (the hub's cache directory; callers import it from here too)

FORMAT = 1
THROUGHPUT = "throughput"  # the figure fastest_backend compares: items per second at the best batch size


class BenchStoreWarning(UserWarning):
    """A store file could not be read; it is treated as empty."""


# -- where ---------------------------------------------------------------------------------------
def store_dir() -> Path:
    return hub_cache_dir() / "bench"


def model_key(spec) -> str:
    """The store's name for a model: its catalogue id, or the resolved path of a model directory.

    A directory given as the model (found by a plugin, or described by its own ``mmhub.yaml``, as
    exports and fine-tuned models are) is keyed by its path, since two directories may share a name;
    a catalogue entry is keyed by its id, even when its source is a directory.
    """
    from hub.local import CARD_NAME

    source, origin = getattr(spec, "source", "") or "", getattr(spec, "origin", "") or ""
    if not source or not origin:
        return spec.id
    where = Path(source).expanduser()
    if not where.is_dir():
        return spec.id
    where = where.resolve()
    declared = Path(origin).expanduser().resolve()
    return str(where) if declared in (where, where / CARD_NAME) else spec.id


def store_path(key: str | None = None) -> Path:
    """This machine's store file (or the file of machine ``key``)."""
    return store_dir() / f"{key or machine_key()}.json"


def check_writable(path: Path | None = None) -> Path:
    """The store file, once it is known that it can be written; else WriteError (exit 2) naming it and the fix.

    ``hub bench`` calls this before it measures anything, so that minutes of figures are never taken
    only to be lost. The test is the one a store write makes: a new file created beside the store file
    (then removed), in the cache directory, which is made if it is missing.
    """
    import errno

    from hub.errors import WriteError
    from hub.io import NOT_WRITABLE, remove_path, temp_name

    path = Path(path) if path else store_path()
    fix = ("nothing was measured. Set HUB_CACHE_DIR to a directory you can write to, or pass --no-store to print "
           "the figures without storing them")
    what = f"cannot store the benchmark figures in '{path}'"
    if path.exists() and not path.is_file():
        kind = "a directory" if path.is_dir() else "a special file"
        raise WriteError(f"{what}: a store file must be a regular file, and that path is {kind}; {fix}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        probe = temp_name(path)
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        remove_path(probe)
    except OSError as exc:
        blocking = _file_in_the_way(path.parent) if exc.errno in (errno.ENOTDIR, errno.EEXIST) else None
        reason = (f"'{blocking}' is a file where a directory is needed" if blocking is not None
                  else NOT_WRITABLE.get(exc.errno) or exc.strerror or type(exc).__name__)
        raise WriteError(f"{what}: {reason}; {fix}") from None
    return path


def _file_in_the_way(directory: Path) -> Path | None:
    """The first path on the way to ``directory`` that exists but is not a directory."""
    for step in [*reversed(directory.parents), directory]:
        if step.exists() and not step.is_dir():
            return step
    return None


# -- which machine -------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def machine() -> dict:
    """What identifies this machine's speed: CPU model, core count, GPU name(s), torch version."""
    return {"cpu": cpu_model(), "cores": os.cpu_count() or 0, "gpu": gpu_name(), "torch": torch_version()}


def machine_key(info: dict | None = None) -> str:
    """A file-name-safe key: a readable slug of the machine plus a short hash of all of it."""
    info = info or machine()
    digest = hashlib.sha1(json.dumps(info, sort_keys=True).encode("utf-8")).hexdigest()[:10]
    gpu = info.get("gpu") or "nogpu"
    slug = _slug(f"{info.get('cpu')}-{info.get('cores')}c-{gpu}-torch{info.get('torch')}")[:80]
    return f"{slug}-{digest}"


machine_id = machine_key  # the name the backend choice first used


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9.]+", "-", str(text).lower()).strip("-") or "unknown"


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, else what the platform module says."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    return " ".join(line.split(":", 1)[1].split())
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown cpu"


def gpu_name() -> str | None:
    """The GPU model(s), joined with '+', without importing torch; None when there is none."""
    names = _proc_nvidia_names() or _nvidia_smi_names()
    if names:
        return "+".join(names)
    if platform.system() == "Darwin" and platform.machine() == "arm64":
        return "Apple MPS"
    return None


def has_gpu() -> bool:
    return gpu_name() is not None


def _proc_nvidia_names() -> list[str]:
    names = []
    try:
        for info in sorted(Path("/proc/driver/nvidia/gpus").glob("*/information")):
            for line in info.read_text(encoding="utf-8", errors="replace").splitlines():
                if line.startswith("Model:"):
                    names.append(" ".join(line.split(":", 1)[1].split()))
    except OSError:
        return []
    return names


def _nvidia_smi_names() -> list[str]:
    import shutil
    import subprocess

    exe = shutil.which("nvidia-smi")
    if exe is None:
        return []
    try:
        out = subprocess.run([exe, "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=10, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in out.splitlines() if line.strip()]


def torch_version() -> str | None:
    """The installed torch's version from its metadata (torch is not imported); None without torch."""
    from importlib import metadata

    try:
        return metadata.version("torch")
    except metadata.PackageNotFoundError:
        return None


# -- the records -----------------------------------------------------------------------------------
@dataclass
class Record:
    """One measurement: a model under one backend, dtype and device kind, and its figures."""

    model: str
    backend: str
    dtype: str
    device: str
    figures: dict = field(default_factory=dict)
    measured_at: float = 0.0

    @property
    def throughput(self) -> float | None:
        return number(self.figures.get(THROUGHPUT))

    def to_dict(self) -> dict:
        return {"model": self.model, "backend": self.backend, "dtype": self.dtype, "device": self.device,
                "figures": self.figures, "measured_at": self.measured_at}


def number(value) -> float | None:
    """``value`` as a float when it is a real number (not a bool), else None."""
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def record(model_key: str, backend: str, dtype: str, figures: dict, device: str = "cpu",
           path: Path | None = None) -> Record:
    """Store ``figures`` for the model under (backend, dtype, device kind), replacing an earlier record."""
    from hub.io import atomic_write_json

    path = Path(path) if path else store_path()
    data = _read(path)
    entry = Record(model_key, backend, dtype, device_kind(device), dict(figures), time.time())
    slot = f"{entry.backend}/{entry.dtype}/{entry.device}"
    item = {k: v for k, v in entry.to_dict().items() if k != "model"}
    data.setdefault("models", {}).setdefault(model_key, {})[slot] = item
    data["format"], data["machine"] = FORMAT, machine()
    atomic_write_json(path, data)
    return entry


def lookup(model_key: str, backend: str | None = None, dtype: str | None = None, device: str | None = None,
           path: Path | None = None) -> list[Record]:
    """The model's records on this machine, narrowed by backend, dtype and device kind when given."""
    data = _read(Path(path) if path else store_path())
    kind = device_kind(device) if device else None
    found = []
    for item in (data.get("models", {}).get(model_key) or {}).values():
        rec = _as_record(model_key, item)
        if rec is None:
            continue
        if (backend and rec.backend != backend) or (dtype and rec.dtype != dtype) or (kind and rec.device != kind):
            continue
        found.append(rec)
    return sorted(found, key=lambda r: (r.backend, r.dtype, r.device))


def records(model_key: str | None = None, path: Path | None = None) -> list[dict]:
    """Every record on this machine (of ``model_key`` only, when given), as plain dicts."""
    keys = [model_key] if model_key is not None else measured_models(path)
    return [r.to_dict() for key in keys for r in lookup(key, path=path)]


def fastest_backend(model_key: str, dtype: str, device: str | None = None, path: Path | None = None) -> str | None:
    """The backend with the highest measured throughput for the model at ``dtype`` here; None if none measured."""
    measured = [r for r in lookup(model_key, dtype=dtype, device=device, path=path) if r.throughput is not None]
    if not measured:
        return None
    return max(measured, key=lambda r: (r.throughput, r.backend == "torch")).backend


def measured_models(path: Path | None = None) -> list[str]:
    """The model keys with at least one record on this machine."""
    return sorted((_read(Path(path) if path else store_path()).get("models") or {}).keys())


def device_kind(device: str) -> str:
    """cuda:1 and cuda are the same kind of device for a measurement's purpose: 'cuda'."""
    return str(device).split(":", 1)[0].strip().lower() or "cpu"


def _as_record(model_key: str, item) -> Record | None:
    if not isinstance(item, dict) or not all(isinstance(item.get(k), str) for k in ("backend", "dtype", "device")):
        return None
    figures = item.get("figures") if isinstance(item.get("figures"), dict) else {}
    return Record(model_key, item["backend"], item["dtype"], item["device"], figures,
                  number(item.get("measured_at")) or 0.0)


_warned: set[tuple[str, str]] = set()


def _read(path: Path) -> dict:
    """The store file's content; {} when absent, and {} with a warning when it cannot be read."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        return _unreadable(path, f"it cannot be read ({type(exc).__name__}: {exc})")
    try:
        data = json.loads(text)
    except ValueError as exc:
        return _unreadable(path, f"it is not valid JSON ({exc})")
    if not isinstance(data, dict) or not isinstance(data.get("models", {}), dict):
        return _unreadable(path, "it is not a mapping with a 'models' mapping")
    if data.get("format", FORMAT) != FORMAT:
        return _unreadable(path, f"it has format {data.get('format')!r}; this hub reads format {FORMAT}")
    return data


def _unreadable(path: Path, why: str) -> dict:
    key = (str(path), why)
    if key not in _warned:
        _warned.add(key)
        warnings.warn(f"benchmark store '{path}' is ignored: {why}. Delete it, or run 'hub bench MODEL' to "
                      "write a fresh one (its earlier measurements are lost)", BenchStoreWarning, stacklevel=3)
    return {}
