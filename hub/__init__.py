"""mmhub: a plugin-based multimodal model hub.

Cheap to import: the catalogue and CLI never import torch or a backbone library.

    >>> import hub
    >>> [m.id for m in hub.list_models("*minilm*")]
    >>> emb = hub.run("all-minilm-l6-v2", ["a cat", "a kitten"])
"""
from __future__ import annotations

import pluggy

from hub.plugin_api import PLUGIN_API_VERSION  # the public plugin contract's version, defined there once

__version__ = "0.1.0"

hookimpl = pluggy.HookimplMarker("mmhub")

_LAZY = {
    "list_models": "hub.api", "get_spec": "hub.api", "load": "hub.api", "run": "hub.api",
    "catalog": "hub.api", "ModelSpec": "hub.spec", "Pipeline": "hub.tasks.base",
    "DeviceManager": "hub.device", "get_device_manager": "hub.device",
    "list_tasks": "hub.tasks", "resolve_task": "hub.tasks", "HubError": "hub.errors",
    "get_plugin_manager": "hub.plugins",
}

__all__ = ["hookimpl", "__version__", "PLUGIN_API_VERSION", *_LAZY]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'hub' has no attribute '{name}'")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
