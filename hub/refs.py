"""References to code as ``"package.module:attribute"`` strings, imported only when used.

Plugins name heavy code this way (a pipeline class, a task's result class, loader or save function) so
that the hub can list and describe them without importing torch. Re-exported by :mod:`hub.plugin_kit`.
"""
from __future__ import annotations

import importlib


def resolve_ref(ref: str):
    """The object named by ``"package.module:attribute"``, imported now."""
    module, _, name = ref.partition(":")
    return getattr(importlib.import_module(module), name)
