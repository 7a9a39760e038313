"""Benchmark records kept per machine: what ``hub bench`` measured, read by ``--backend auto``.

One JSON file per machine under the hub's cache (``HUB_CACHE_DIR``, else ``$XDG_CACHE_HOME/mmhub``, else
``~/.cache/mmhub``): ``bench/<machine>.json`` holding ``{"records": [{model, backend, dtype, figures}]}``.
A record for the same (model, backend, dtype) replaces the older one. Only the standard library is used.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import time
from pathlib import Path

THROUGHPUT = "throughput"  # items per second: the figure ``fastest_backend`` compares


def hub_cache_dir() -> Path:
    """The hub's own cache directory (exports, bench records)."""
    explicit = os.environ.get("HUB_CACHE_DIR", "").strip()
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME", "").strip() or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "mmhub"


def machine_id() -> str:
    """A stable name for this machine: host name plus a short digest of its CPU model and core count."""
    cpu = _cpu_model()
    digest = hashlib.sha256(f"{cpu}|{os.cpu_count()}|{platform.machine()}".encode()).hexdigest()[:8]
    host = re.sub(r"[^A-Za-z0-9_.-]", "_", platform.node() or "machine")
    return f"{host}-{digest}"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "cpu"


def store_path() -> Path:
    return hub_cache_dir() / "bench" / f"{machine_id()}.json"


def records(model_key: str | None = None) -> list[dict]:
    """This machine's records (those of ``model_key`` only, when given); [] when none are stored."""
    try:
        data = json.loads(store_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    rows = data.get("records", []) if isinstance(data, dict) else []
    return [r for r in rows if isinstance(r, dict) and (model_key is None or r.get("model") == model_key)]


def record(model_key: str, backend: str, dtype: str, figures: dict) -> None:
    """Store ``figures`` (e.g. ``{"throughput": 221.0, "latency_ms": 9.1}``) for one measured configuration."""
    from hub.io import atomic_write_json

    keep = [r for r in records() if (r.get("model"), r.get("backend"), r.get("dtype")) != (model_key, backend, dtype)]
    keep.append({"model": model_key, "backend": backend, "dtype": dtype, "figures": dict(figures),
                 "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    atomic_write_json(store_path(), {"machine": machine_id(), "records": keep})


def fastest_backend(model_key: str, dtype: str) -> str | None:
    """The backend with the highest measured throughput for ``model_key`` at ``dtype``; None if none measured."""
    best, best_rate = None, 0.0
    for row in records(model_key):
        rate = (row.get("figures") or {}).get(THROUGHPUT)
        if row.get("dtype") == dtype and isinstance(rate, (int, float)) and rate > best_rate:
            best, best_rate = row.get("backend"), float(rate)
    return best
