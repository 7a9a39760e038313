"""A fixture plugin that imports torch at module level: listing the catalogue then imports torch too."""
from __future__ import annotations

import torch  # noqa: F401  (the fault under test)

from hub import hookimpl


@hookimpl
def register_models(register):
    register({"id": "heavy-letters", "task": "text-embedding", "source": "builtin", "params": 0})


@hookimpl
def load_model(spec, device_manager, options):
    from kit_letters import Letters

    return Letters(spec, model=None, device_manager=device_manager)
