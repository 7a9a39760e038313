"""The plugin-API version: what a plugin written against this hub's public contract may rely on.

The hub declares ``hub.PLUGIN_API_VERSION`` (``"MAJOR.MINOR"``). A plugin pins the version it was
written against with a module-level ``MMHUB_PLUGIN_API = "1.0"`` in its entry-point module. It loads
when the major versions are equal and the hub's minor version is at least the plugin's: minor
versions only add to the contract, a new major version changes or removes something. A plugin
that pins an incompatible or malformed version is left out like any other failing plugin, and
``hub plugins`` says why.
"""
from __future__ import annotations

import re

PLUGIN_API_VERSION = "1.0"
ATTRIBUTE = "MMHUB_PLUGIN_API"
_VERSION = re.compile(r"^(\d+)\.(\d+)$")


def parse_version(text) -> tuple[int, int] | None:
    """``(major, minor)`` of a ``"MAJOR.MINOR"`` string, or None when it is not one."""
    match = _VERSION.match(text.strip()) if isinstance(text, str) else None
    return (int(match[1]), int(match[2])) if match else None


def api_problem(required, provided: str = PLUGIN_API_VERSION) -> str | None:
    """Why a plugin pinning ``required`` cannot load on a hub providing ``provided``; None when it can."""
    want, have = parse_version(required), parse_version(provided)
    if want is None:
        return (f"it declares {ATTRIBUTE} = {required!r}, which is not a plugin-API version like '1.0'; "
                f"this hub provides {provided}")
    if want[0] != have[0]:
        newer = "a newer" if want[0] > have[0] else "an older"
        return (f"it was written for plugin API {required}, {newer} major version than this hub's {provided}; "
                f"install a version of the plugin made for plugin API {have[0]}.x"
                + (", or upgrade mmhub" if want[0] > have[0] else ""))
    if want[1] > have[1]:
        return f"it needs plugin API {required}, newer than this hub's {provided}; upgrade mmhub"
    return None


def plugin_api_problem(plugin) -> str | None:
    """The problem with the version ``plugin`` (a module or object) pins, or None (also when it pins none)."""
    required = getattr(plugin, ATTRIBUTE, None)
    return None if required is None else api_problem(required)
