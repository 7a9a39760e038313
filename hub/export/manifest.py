"""What an exported directory says about itself in ``mmhub.yaml``, and the cache of exports on first use.

The card is an ordinary catalogue entry (task, plugin, preprocess, licence, ...) whose ``options.export``
names the format, the graph files, the runtime and its version, the precision and how it was reached,
the source model and revision, the measured quality against the fp32 torch model, and the sha256 of
every file (``files``, checked on load by :mod:`hub.export.integrity`).
"""
from __future__ import annotations

import hashlib
import re
from pathlib import Path

from hub.errors import HubError
from hub.runtimes import EXPORT_FORMATS
from hub.tasks.builtin import CORE_BACKENDS

EXPORT_KEY = "export"
FORMATS = EXPORT_FORMATS  # what hub export writes, each the own format of a core runtime (hub.runtimes)
SUFFIX = {b["name"]: b["suffix"] for b in CORE_BACKENDS}  # the graph file's suffix in each


class UnsupportedExportError(HubError):
    """A model or task that ``hub export`` cannot export (exit 2)."""


class ExportGateError(HubError):
    """An export refused because its measured agreement with the fp32 model missed the gate."""

    exit_code = 1


def export_info(spec) -> dict | None:
    """The ``options.export`` mapping of an exported model's spec; None for any other model."""
    info = (getattr(spec, "options", None) or {}).get(EXPORT_KEY)
    return info if isinstance(info, dict) and isinstance(info.get("graphs"), dict) else None


def card(spec, info: dict) -> dict:
    """The ``mmhub.yaml`` fields of an export of ``spec`` described by ``info``."""
    what = f"{info['format']} export of {spec.id}" + (" (int8)" if info["precision"] == "int8" else "")
    fields = {"task": spec.task, "plugin": spec.plugin, "source": ".", "description": what,
              "license": spec.license, "params": spec.params, "arch": spec.arch,
              "preprocess": dict(spec.preprocess or {}), "options": {**_plain(spec.options), EXPORT_KEY: info}}
    return {k: v for k, v in fields.items() if v not in (None, "", {}, [])}


def _plain(options: dict | None) -> dict:
    return {k: v for k, v in (options or {}).items() if k != EXPORT_KEY}


def export_lines(data: dict) -> list[str]:
    """``hub info`` lines for an export (taken out of ``data['options']``); [] for any other model."""
    info = (data.get("options") or {}).pop(EXPORT_KEY, None)
    if not isinstance(info, dict):
        return []
    from hub.export.gates import summary

    quality = info.get("quality") or {}
    lines = [f"{'export:':<13}{info.get('format')} ({info.get('runtime')}), {info.get('precision')}, "
             f"from {info.get('source_model')} ({info.get('source', '?')}) @ {info.get('source_revision')}"]
    lines.append(f"{'quality:':<13}{summary(quality)} against {quality.get('reference', 'fp32 torch')}; "
                 f"gate {quality.get('gate', '?')}")
    for method in info.get("quantization") or []:
        lines.append(f"{'int8:':<13}{method}") if info.get("precision") == "int8" else None
    lines.append(f"{'graphs:':<13}" + ", ".join(f"{k}={v}" for k, v in (info.get("graphs") or {}).items())
                 + f" (opset {info.get('opset')}, {info.get('exporter')})")
    return lines


def cache_dir(spec, fmt: str, precision: str, runtime_version: str) -> Path:
    """Where the export of ``spec`` on first use lives: the hub cache, keyed by id, revision, runtime, precision."""
    from hub.benchstore import hub_cache_dir

    revision = spec.revision or _local_revision(spec.source)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", spec.id).strip("_")[:80] or "model"
    key = hashlib.sha256(f"{spec.id}|{spec.source}|{revision}".encode()).hexdigest()[:12]
    runtime = re.sub(r"[^A-Za-z0-9_.-]+", "-", runtime_version)
    return hub_cache_dir() / "exports" / f"{name}-{key}" / f"{spec.task}-{fmt}-{precision}-{runtime}"


def _local_revision(source: str) -> str:
    """A revision for a model without one: the newest modification time of its weights directory's files."""
    path = Path(source)
    if not path.is_dir():
        return "unpinned"
    times = [p.stat().st_mtime_ns for p in path.iterdir() if p.is_file()]
    return f"mtime-{max(times) if times else 0}"
