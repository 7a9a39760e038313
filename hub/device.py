"""The one device manager: which device, which dtype policy, and which models stay loaded.

Every plugin places its modules through it, every pipeline runs under its autocast, and the
fine-tuning loop takes its precision from it. Torch is imported only when a method needs it.

Device choice: an explicit argument, else ``HUB_DEVICE``, else cuda > mps > cpu.
Dtype policy (``auto|fp32|bf16|fp16``, argument or ``HUB_DTYPE``): ``auto`` runs bf16 autocast
where the hardware runs bf16 fast (CUDA with bf16 support; CPUs with AMX or AVX-512 BF16) and
fp32 elsewhere. Backend (``torch|onnx|openvino|auto``, argument or ``HUB_BACKEND``; default auto): what
runs a model's forward pass. ``auto`` takes what ``hub bench`` measured fastest on this machine at the
chosen dtype (:func:`hub.benchstore.fastest_backend`), and torch when nothing was measured; an exported
directory runs on its own runtime (see :mod:`hub.export.backends`). Loaded models are cached, least recently used evicted first, under a memory
budget (``HUB_CACHE_BUDGET``, e.g. ``8GB``; default: half the device's memory).
"""
from __future__ import annotations

import contextlib
import os
import re
from collections import OrderedDict
from dataclasses import dataclass

from hub.errors import HubError
from hub.runtimes import BACKENDS

DTYPE_POLICIES = ("auto", "fp32", "bf16", "fp16")
_CPU_BF16_FLAGS = ("amx_bf16", "avx512_bf16")


def cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|TB|KIB|MIB|GIB|TIB)?$")
_UNITS = {None: 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
          "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}
_DEVICE = re.compile(r"^(cpu|mps|cuda)(?::(\d+))?$")


def parse_bytes(text: str, name: str = "HUB_CACHE_BUDGET") -> int:
    """A positive memory size such as ``8GB``, ``512MiB`` or ``1.5 GB``, in bytes."""
    match = _SIZE.match(str(text).strip().upper())
    size = int(float(match.group(1)) * _UNITS[match.group(2)]) if match else 0
    if size < 1:
        raise HubError(f"{name}={text!r} is not a memory size; write a positive number with a unit, "
                       "e.g. 8GB, 512MiB or 1.5GB")
    return size


def env_setting(name: str) -> str | None:
    """The value of environment variable ``name``, stripped; None when unset or blank."""
    value = os.environ.get(name, "").strip()
    return value or None


def _named(value, env: str | None, what: str) -> str:
    return f"{env}={value!r}" if env else f"{what} {value!r}"


def check_device(device: str | None, env: str | None = None) -> str | None:
    """``device`` if written as cpu, mps, cuda or cuda:N; else a HubError naming it (and ``env``)."""
    if device is None:
        return None
    value = str(device).strip().lower()
    if not _DEVICE.match(value):
        raise HubError(f"{_named(device, env, 'device')} is not a device; use cpu, cuda, cuda:N (N = 0, 1, ...) or mps")
    return value


def check_policy(policy: str | None, env: str | None = None) -> str:
    """``policy`` (default auto) if it is a dtype policy; else a HubError naming it (and ``env``)."""
    value = (policy or "auto").strip().lower()
    if value not in DTYPE_POLICIES:
        raise HubError(f"{_named(policy, env, 'dtype policy')} is not a dtype policy; "
                       f"use one of {', '.join(DTYPE_POLICIES)}")
    return value


def check_backend(backend: str | None, env: str | None = None) -> str:
    """``backend`` (default auto) if it is a backend; else a HubError naming it (and ``env``)."""
    value = (backend or "auto").strip().lower()
    if value not in BACKENDS:
        raise HubError(f"{_named(backend, env, 'backend')} is not a backend; use one of {', '.join(BACKENDS)}")
    return value


def requested_backend(backend: str | None) -> str:
    """The checked backend from the argument, else from HUB_BACKEND, else auto."""
    return check_backend(backend) if backend else check_backend(env_setting("HUB_BACKEND"), "HUB_BACKEND")


def requested(device: str | None, dtype: str | None) -> tuple[str | None, str]:
    """The checked (device, dtype policy) from the arguments, else from HUB_DEVICE / HUB_DTYPE."""
    dev = check_device(device) if device else check_device(env_setting("HUB_DEVICE"), "HUB_DEVICE")
    policy = check_policy(dtype) if dtype else check_policy(env_setting("HUB_DTYPE"), "HUB_DTYPE")
    return dev, policy


@dataclass
class DevicePlan:
    """The device and dtype chosen, and why."""

    device: str
    dtype: str  # the effective compute dtype: fp32, bf16 or fp16
    policy: str
    reason: str


class DeviceManager:
    """Chooses device and dtype, places modules, provides autocast, caches loaded models."""

    def __init__(self, device: str | None = None, dtype: str | None = None, backend: str | None = None):
        self.requested_device, self.policy = requested(device, dtype)
        self.backend = requested_backend(backend)
        self.device_source = "requested" if device else "requested by HUB_DEVICE"
        self._plan: DevicePlan | None = None

    # -- choice -----------------------------------------------------------------------------
    @property
    def plan(self) -> DevicePlan:
        if self._plan is None:
            self._plan = self._choose()
        return self._plan

    @property
    def device(self) -> str:
        return self.plan.device

    @property
    def dtype(self) -> str:
        return self.plan.dtype

    def _choose(self) -> DevicePlan:
        import torch

        device, why = self._choose_device(torch)
        dtype, dwhy = self._choose_dtype(torch, device)
        return DevicePlan(device, dtype, self.policy, f"{why}; {dwhy}")

    def _choose_device(self, torch) -> tuple[str, str]:
        if self.requested_device:
            return self._check_available(torch, self.requested_device), self.device_source
        if torch.cuda.is_available():
            return "cuda", "CUDA is available"
        if hasattr(torch.backends, "mps") and torch.backends.mps.is_available():
            return "mps", "Apple MPS is available"
        return "cpu", "no CUDA or MPS device"

    def _check_available(self, torch, dev: str) -> str:
        """``dev`` if this machine has it; else a HubError saying what it has."""
        kind, _, index = dev.partition(":")
        fix = "use --device cpu" if self.device_source == "requested" else "set HUB_DEVICE=cpu or unset it"
        where = f"device '{dev}'" + ("" if self.device_source == "requested" else " (from HUB_DEVICE)")
        if kind == "cuda" and not torch.cuda.is_available():
            raise HubError(f"{where} was requested but CUDA is not available; {fix}")
        if kind == "cuda" and index and int(index) >= torch.cuda.device_count():
            raise HubError(f"{where} does not exist: this machine has {torch.cuda.device_count()} CUDA "
                           f"device(s), numbered from cuda:0; {fix}")
        if kind == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
            raise HubError(f"{where} was requested but MPS is not available; {fix}")
        return dev

    def _choose_dtype(self, torch, device: str) -> tuple[str, str]:
        kind = device.split(":")[0]
        if self.policy == "fp32":
            return "fp32", "fp32 requested"
        if self.policy in ("bf16", "fp16"):
            return self.policy, f"{self.policy} requested"
        if kind == "cuda" and torch.cuda.is_bf16_supported():
            return "bf16", "auto: CUDA device supports bf16"
        if kind == "cpu":
            fast = sorted(cpu_flags() & set(_CPU_BF16_FLAGS))
            if fast:
                return "bf16", f"auto: CPU has {'/'.join(fast)}"
            return "fp32", "auto: CPU lacks AMX/AVX-512 BF16, bf16 would be slow"
        return "fp32", f"auto: no fast bf16 path on {kind}"

    # -- use --------------------------------------------------------------------------------
    def torch_dtype(self):
        import torch

        return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[self.dtype]

    def autocast(self):
        """Autocast for the chosen dtype; a no-op context for fp32."""
        import torch

        if self.dtype == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.split(":")[0], dtype=self.torch_dtype())

    @contextlib.contextmanager
    def inference(self):
        """``torch.inference_mode`` plus autocast: the one way pipelines run forward."""
        import torch

        with torch.inference_mode(), self.autocast():
            yield

    def place(self, module, channels_last: bool = False):
        """Move a module to the device in eval mode (weights stay fp32; autocast does the rest)."""
        import torch

        module = module.to(self.device).eval()
        if channels_last and self.dtype != "fp32":
            module = module.to(memory_format=torch.channels_last)
        return module

    def to_device(self, batch):
        """Move tensors (in dicts, lists and tuples) to the device."""
        import torch

        if isinstance(batch, torch.Tensor):
            return batch.to(self.device, non_blocking=True)
        if isinstance(batch, dict):
            return type(batch)((k, self.to_device(v)) for k, v in batch.items())
        if isinstance(batch, (list, tuple)):
            return type(batch)(self.to_device(v) for v in batch)
        return batch

    # -- cache ------------------------------------------------------------------------------
    @property
    def budget(self) -> int:
        return MODEL_CACHE.budget_for(self.device)

    def cached(self, key: tuple, loader):
        """Return the cached object for ``key`` on this device/dtype, or load and cache it."""
        return MODEL_CACHE.get_or_load((*key, self.device, self.dtype, self.backend), self.device, loader)

    def describe(self) -> dict:
        plan = self.plan
        return {"device": plan.device, "dtype": plan.dtype, "policy": plan.policy, "reason": plan.reason,
                "backend": self.backend,
                "cache_budget_bytes": self.budget, "cached_models": [k[0] for k in MODEL_CACHE.keys()]}


class ModelCache:
    """Loaded models shared by every manager: least recently used evicted first, per-device budget."""

    def __init__(self):
        self._entries: OrderedDict[tuple, tuple[object, int, str]] = OrderedDict()
        self._budgets: dict[str, int] = {}

    def budget_for(self, device: str) -> int:
        if device not in self._budgets:
            env = env_setting("HUB_CACHE_BUDGET")
            self._budgets[device] = parse_bytes(env) if env else _default_budget(device)
        return self._budgets[device]

    def set_budget(self, device: str, nbytes: int) -> None:
        self._budgets[device] = nbytes

    def get_or_load(self, key: tuple, device: str, loader):
        if key in self._entries:
            self._entries.move_to_end(key)
            return self._entries[key][0]
        budget = self.budget_for(device)  # a bad HUB_CACHE_BUDGET fails before the weights load
        obj = loader()
        size = module_bytes(obj)
        while self.bytes_on(device) + size > budget and self.keys(device):
            self.evict(self.keys(device)[0])
        self._entries[key] = (obj, size, device)
        return obj

    def keys(self, device: str | None = None) -> list[tuple]:
        return [k for k, (_, _, d) in self._entries.items() if device is None or d == device]

    def bytes_on(self, device: str) -> int:
        return sum(size for _, size, d in self._entries.values() if d == device)

    def evict(self, key: tuple) -> None:
        entry = self._entries.pop(key, None)
        if entry is None:
            return
        import gc

        on_cuda = entry[2].startswith("cuda")
        del entry
        gc.collect()
        if on_cuda:
            import torch

            torch.cuda.empty_cache()

    def clear(self) -> None:
        for key in self.keys():
            self.evict(key)


def _default_budget(device: str) -> int:
    if device.startswith("cuda"):
        import torch

        index = torch.device(device).index or 0
        return int(torch.cuda.get_device_properties(index).total_memory * 0.5)
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") * 0.5)
    except (ValueError, OSError, AttributeError):
        return 8 * 10**9


MODEL_CACHE = ModelCache()


def module_bytes(obj) -> int:
    """Bytes held by the parameters and buffers of ``obj`` (or of its ``.model``)."""
    module = getattr(obj, "model", obj)
    try:
        tensors = list(module.parameters()) + list(module.buffers())
    except AttributeError:
        return 0
    return sum(t.numel() * t.element_size() for t in tensors)


_managers: dict[tuple, DeviceManager] = {}


def get_device_manager(device: str | None = None, dtype: str | None = None,
                       backend: str | None = None) -> DeviceManager:
    """The shared manager for a (device, dtype, backend) request; all share one model cache."""
    key = (*requested(device, dtype), requested_backend(backend))
    if key not in _managers:
        _managers[key] = DeviceManager(device, dtype, backend)
    return _managers[key]
