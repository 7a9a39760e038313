"""Contract properties measured in a fresh process: what listing imports, and how long a plugin takes to import."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from hub.testing.skip import Skip

HEAVY = ("torch", "fastapi", "uvicorn")
MARK = "@@mmhub-testing@@"

_LISTING = f"""
import json, sys
from hub.cli import _add_plugin_commands, cli
_add_plugin_commands()
try:
    cli.main(["list", "--all"], prog_name="hub", standalone_mode=False)
except SystemExit:
    pass
from hub.plugins import get_plugin_manager
pm = get_plugin_manager()
print({MARK!r} + json.dumps({{"heavy": [m for m in {HEAVY!r} if m in sys.modules], "loaded": sorted(pm.names()),
      "failed": {{n: i.error for n, i in pm.failures.items()}}}}))
"""

_IMPORT_TIME = f"""
import importlib, json, sys, time
import hub, hub.api, hub.plugins, hub.registry
started = time.perf_counter()
importlib.import_module(sys.argv[1])
elapsed = time.perf_counter() - started
print({MARK!r} + json.dumps({{"ms": elapsed * 1000, "torch": "torch" in sys.modules}}))
"""


def _python(code: str, *args: str, env: dict | None = None) -> dict:
    """Run ``code`` in a new interpreter; the JSON it printed after the mark."""
    done = subprocess.run([sys.executable, "-c", code, *args], env=env or dict(os.environ), capture_output=True,
                          text=True, timeout=300)
    for line in reversed(done.stdout.splitlines()):
        if line.startswith(MARK):
            return json.loads(line[len(MARK):])
    tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
    raise RuntimeError(f"the check's process failed (exit {done.returncode}): {' | '.join(tail)}")


def check_listing_imports(plugin: str | None):
    """``hub list --all`` with only ``plugin`` loaded imports none of :data:`HEAVY`; a problem or None."""
    if not plugin or not _is_entry_point(plugin):
        return Skip(f"plugin {plugin!r} is not an installed entry point, so a new process cannot load it")
    got = _python(_LISTING, env={**os.environ, "HUB_PLUGINS": plugin})
    if plugin not in got["loaded"]:
        return f"cannot be listed: its plugin '{plugin}' did not load ({got['failed'].get(plugin, 'not found')})"
    if got["heavy"]:
        return (f"imports {', '.join(got['heavy'])} when the catalogue is listed with only plugin '{plugin}' "
                "loaded; import heavy libraries inside load_model/trainable, not at module level")
    return None


def check_import_time(module: str | None, budget_ms: float, tries: int = 3):
    """Importing ``module`` (after the hub's own modules) takes under ``budget_ms``: the best of ``tries`` runs."""
    if not module:
        return Skip("the plugin's module is unknown (not an entry point); pass plugin_module=")
    best = None
    for _ in range(tries):
        got = _python(_IMPORT_TIME, module)
        best = got["ms"] if best is None else min(best, got["ms"])
        if best <= budget_ms:
            return None
    extra = " (it imports torch)" if got["torch"] else ""
    return (f"has a plugin module '{module}' that takes {best:.0f} ms to import, over the budget of "
            f"{budget_ms:.0f} ms{extra}; import heavy libraries inside the hooks that need them")


def _is_entry_point(name: str) -> bool:
    from hub.plugins import _entry_points

    return any(ep.name == name for ep in _entry_points())
