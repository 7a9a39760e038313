"""The installed entry points of one group, without scanning every distribution on each start.

``importlib.metadata`` reads every installed distribution's metadata to find a group's entry points,
and importing it alone costs more than the rest of ``hub list``. The entry points found are cached
(:mod:`hub.cache`) under a key made of each ``sys.path`` entry's modification time, plus the
``entry_points.txt`` of each distribution that declared one: installing, upgrading or removing a
distribution changes the directory it lives in, and editing a declaration changes its file, so
either is seen on the next start. A distribution whose files cannot be located is never cached.
"""
from __future__ import annotations

import re
import sys
from hub.cache import file_stats, read_cached, settled, short_name, write_cached

_VALUE = re.compile(r"(?P<module>[\w.]+)\s*(:\s*(?P<attr>[\w.]+)\s*)?(\[.*\]\s*)?$")


class Distribution:
    """What the hub reads of a distribution that declares an entry point: its name and version."""

    __slots__ = ("name", "version")

    def __init__(self, name: str | None, version: str | None):
        self.name, self.version = name, version


class EntryPoint:
    """One entry point, as ``importlib.metadata.EntryPoint`` has it: name, value (``module:attr``), group, dist.
    (Plain classes: a dataclass would cost more to define than the whole lookup when it is cached.)"""

    __slots__ = ("name", "value", "group", "dist")

    def __init__(self, name: str, value: str, group: str, dist: Distribution):
        self.name, self.value, self.group, self.dist = name, value, group, dist

    def __repr__(self) -> str:
        return f"EntryPoint(name={self.name!r}, value={self.value!r}, group={self.group!r})"

    def load(self):
        """Import the module the value names and return the attribute it names (the module without one)."""
        import importlib

        match = _VALUE.match(self.value.strip())
        if match is None:
            raise ValueError(f"entry point '{self.name}' has a malformed value {self.value!r} (expected module:attr)")
        found = importlib.import_module(match.group("module"))
        for attr in (match.group("attr") or "").split("."):
            found = getattr(found, attr) if attr else found
        return found


def entry_points(group: str) -> list[EntryPoint]:
    """Every entry point of ``group`` (the first of each name, in ``sys.path`` order), cached while nothing changed."""
    paths = _path_stats()
    name = f"entry-points-{group}-{short_name(repr([path for path, _, _ in paths]))}.json"  # one per search path
    cached = read_cached(name, paths)
    if isinstance(cached, dict):
        found = _from_cache(cached, group)
        if found is not None:
            return found
    found, files = _scan(group)
    if files is not None:
        stats = file_stats(files)
        if settled(paths + stats) and _path_stats() == paths:
            write_cached(name, paths, {"files": stats, "entry_points": [
                [ep.name, ep.value, ep.dist.name, ep.dist.version] for ep in found]})
    return found


def _path_stats() -> list:
    """The stats of every ``sys.path`` entry ('' is the current directory, as importlib.metadata reads it)."""
    import os

    return file_stats([entry or os.getcwd() for entry in sys.path])


def _from_cache(cached: dict, group: str) -> list[EntryPoint] | None:
    """The cached entry points when the declaring files are unchanged too; None when anything differs."""
    try:
        files = cached["files"]
        if file_stats([path for path, _, _ in files]) != files:
            return None
        return [EntryPoint(str(name), str(value), group, Distribution(dist, version))
                for name, value, dist, version in cached["entry_points"]]
    except (KeyError, TypeError, ValueError):
        return None


def _scan(group: str) -> tuple[list[EntryPoint], list[str] | None]:
    """The entry points as importlib.metadata finds them, and the files declaring them (None: not locatable)."""
    from importlib import metadata

    unique: dict[str, EntryPoint] = {}
    files: list[str] | None = []
    for ep in metadata.entry_points(group=group):
        if ep.name in unique:
            continue  # the same distribution can appear twice on sys.path
        dist = getattr(ep, "dist", None)
        where = getattr(dist, "_path", None)
        if where is None:
            files = None
        elif files is not None:
            files.append(str(where / "entry_points.txt"))
        unique[ep.name] = EntryPoint(ep.name, ep.value, group,
                                     Distribution(getattr(dist, "name", None), getattr(dist, "version", None)))
    return list(unique.values()), files
