"""The plugin manager: entry points of the ``mmhub`` group, loaded like any third party's.

``HUB_PLUGINS`` restricts which plugins load: a comma-separated list of entry-point names
(``HUB_PLUGINS=transformers,timm``); an empty value loads none. A plugin that raises while
importing is recorded in ``failures`` (shown by ``hub plugins``) and the rest keep working.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from importlib import metadata

import pluggy

from hub import hookspecs

ENTRY_POINT_GROUP = "mmhub"


@dataclass
class PluginInfo:
    name: str
    version: str | None
    distribution: str | None
    hooks: list[str] = field(default_factory=list)
    error: str | None = None

    def to_dict(self) -> dict:
        return {"name": self.name, "version": self.version, "distribution": self.distribution,
                "hooks": self.hooks, "error": self.error}


class HubPluginManager(pluggy.PluginManager):
    """A pluggy manager that also remembers which plugins failed to load, and why."""

    def __init__(self):
        super().__init__("mmhub")
        self.add_hookspecs(hookspecs)
        self.failures: dict[str, PluginInfo] = {}
        self.dists: dict[str, tuple[str | None, str | None]] = {}

    def load_entry_points(self, allowed: set[str] | None) -> None:
        for ep in _entry_points():
            if allowed is not None and ep.name not in allowed:
                continue
            if self.get_plugin(ep.name) is not None or ep.name in self.failures:
                continue
            dist = getattr(ep, "dist", None)
            dist_info = (getattr(dist, "name", None), getattr(dist, "version", None))
            try:
                plugin = ep.load()
            except Exception as exc:  # a broken plugin must not break the hub
                self.failures[ep.name] = PluginInfo(ep.name, dist_info[1], dist_info[0],
                                                    error=f"{type(exc).__name__}: {exc}")
                continue
            self.register(plugin, name=ep.name)
            self.dists[ep.name] = dist_info

    def info(self) -> list[PluginInfo]:
        rows = []
        for name, plugin in self.list_name_plugin():
            if name in self.failures:
                continue
            dist, version = self.dists.get(name, (None, None))
            hooks = sorted(h.name for h in self.get_hookcallers(plugin) or [])
            rows.append(PluginInfo(name, version, dist, hooks))
        rows.extend(self.failures.values())
        return sorted(rows, key=lambda r: r.name)

    def names(self) -> set[str]:
        return {name for name, _ in self.list_name_plugin()}


def _entry_points():
    return metadata.entry_points(group=ENTRY_POINT_GROUP)


def allowed_plugins() -> set[str] | None:
    raw = os.environ.get("HUB_PLUGINS")
    if raw is None:
        return None
    return {p.strip() for p in raw.split(",") if p.strip()}


_manager: HubPluginManager | None = None


def get_plugin_manager() -> HubPluginManager:
    """The process-wide plugin manager, built on first use."""
    global _manager
    if _manager is None:
        pm = HubPluginManager()
        pm.load_entry_points(allowed_plugins())
        _manager = pm
    return _manager


def reset_plugin_manager() -> None:
    """Forget loaded plugins (tests, and after ``hub install``/``uninstall``)."""
    global _manager
    _manager = None
    from hub import api

    api.invalidate_catalog()
