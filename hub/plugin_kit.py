"""Small helpers for plugin authors: refer to heavy code as "module:attr" strings, import it late."""
from __future__ import annotations

import importlib


def resolve_ref(ref: str):
    """The object named by ``"package.module:attribute"``, imported now."""
    module, _, name = ref.partition(":")
    return getattr(importlib.import_module(module), name)


def build_pipeline(ref: str, spec, device_manager, options: dict | None):
    """Import the pipeline class ``ref`` and build it with its ``from_spec`` classmethod."""
    return resolve_ref(ref).from_spec(spec, device_manager, **(options or {}))
