"""A fixture plugin whose import takes 0.4 s (standing in for a heavy import at module level)."""
from __future__ import annotations

import time

from hub import hookimpl

time.sleep(0.4)  # the fault under test


@hookimpl
def register_models(register):
    register({"id": "slow-letters", "task": "text-embedding", "source": "builtin", "params": 0})


@hookimpl
def load_model(spec, device_manager, options):
    from kit_letters import Letters

    return Letters(spec, model=None, device_manager=device_manager)
