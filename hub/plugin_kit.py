"""Small helpers for plugin authors: refer to heavy code as "module:attr" strings, import it late."""
from __future__ import annotations

import json
from pathlib import Path

from hub.refs import resolve_ref

__all__ = ["build_pipeline", "pipeline_options", "read_json_file", "register_catalog", "resolve_ref"]


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


def register_catalog(register, package_file) -> None:
    """Register every model of the plugin's own catalogue file from its ``register_models`` hook.

    ``package_file`` is the plugin package's ``__file__`` (the file ``catalog.yaml`` beside it is read) or the path
    of the catalogue file itself. The file has the format of the hub's ``registry.yaml`` and user catalogues
    (``models: {id: fields}``) and is read through the same safe, cached loader, so listing stays cheap. It must
    ship in the distribution (package data); a missing file is an error naming it.
    """
    from hub.errors import CatalogError
    from hub.registry import PLUGIN_CATALOG, read_catalog_file

    path = Path(package_file)
    if path.suffix == ".py":
        path = path.with_name(PLUGIN_CATALOG)
    if not path.is_file():
        raise CatalogError(path, None, None, "the plugin's catalogue file is missing; reinstall the plugin "
                           f"(its distribution must ship {path.name} as package data)")
    for spec in read_catalog_file(path):
        register(spec)
