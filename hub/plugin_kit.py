"""Small helpers for plugin authors: refer to heavy code as "module:attr" strings, import it late."""
from __future__ import annotations

import json
from pathlib import Path

from hub.refs import resolve_ref

__all__ = ["build_pipeline", "pipeline_options", "read_json_file", "resolve_ref"]


def build_pipeline(ref: str, spec, device_manager, options: dict | None):
    """Import the pipeline class ``ref`` and build it with its ``from_spec`` classmethod, or around an exported
    graph (``from_runtime``) when the backend chosen for the model is a runtime (see hub.export.backends)."""
    from hub.export.backends import load

    return load(resolve_ref(ref), spec, device_manager, dict(options or {}))


def pipeline_options(pipelines: dict[str, str], spec) -> list | None:
    """The ``call_options`` of the pipeline class that ``pipelines`` (task -> "module:Class") names for
    ``spec.task``; imports the class (which must not import torch at module level), loads nothing."""
    ref = pipelines.get(spec.task)
    return None if ref is None else list(resolve_ref(ref).call_options)


def read_json_file(path):
    """The parsed content of a small JSON file (a config), or None when it is missing or unreadable."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
