"""The hub's own cache directory, and small start-up caches of data derived from files.

``hub list`` and ``hub --help`` would otherwise spend most of their time on the same work every
time: scanning installed distributions for ``mmhub`` entry points, and parsing the same catalogue
YAML files. Both results are kept here as JSON, each under a *key* made of what they were derived
from: the paths, modification times (ns) and sizes of the files and directories read. A cached value
is used only when its key equals the key of the files as they are now, so any change (a plugin
installed or removed, a catalogue edited) is seen at once.

A value is written only when every file in its key is older than :data:`SETTLE_S` seconds: a file
changed twice within one tick of the file system's clock could keep its modification time, and a
cache written in between would then hide the second change.

The cache never makes the hub fail: a cache file that cannot be read, parsed or that holds anything
unexpected is ignored (and written anew), and a cache directory that cannot be written to only
means nothing is cached. Values are written with the atomic writer of :mod:`hub.io`, so a reader
never sees half a file. Only plain JSON values are cached: a value that would not come back from
JSON equal (dates, non-string keys) is not cached at all.
"""
from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path

FORMAT = 1
SETTLE_S = 2.0  # a file changed more recently than this is not cached (see the module docstring)
STARTUP = "startup"  # the subdirectory of the cache directory holding these caches
MAX_FILES = 64  # beyond this many cache files, the least recently written are removed when one is written


def hub_cache_dir() -> Path:
    """The hub's own cache directory: HUB_CACHE_DIR, else XDG_CACHE_HOME/mmhub, else ~/.cache/mmhub."""
    explicit = os.environ.get("HUB_CACHE_DIR", "").strip()
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME", "").strip() or str(Path.home() / ".cache")
    return Path(base).expanduser() / "mmhub"


def startup_cache_path(name: str) -> Path:
    """Where the start-up cache ``name`` (a file name) is kept."""
    return hub_cache_dir() / STARTUP / name


def file_stats(paths) -> list:
    """``[path, mtime_ns, size]`` for each path (a file or directory); ``[path, None, None]`` when it is missing."""
    stats = []
    for path in paths:
        try:
            st = os.stat(path)
        except (OSError, ValueError):
            stats.append([str(path), None, None])
        else:
            stats.append([str(path), st.st_mtime_ns, st.st_size])
    return stats


def settled(stats: list) -> bool:
    """True when no file in ``stats`` changed in the last :data:`SETTLE_S` seconds (so caching is safe)."""
    newest = max((mtime for _, mtime, _ in stats if mtime is not None), default=0)
    return newest < (time.time() - SETTLE_S) * 1e9


def read_cached(name: str, key):
    """The value cached as ``name`` under ``key``; None when there is none, it is stale, or it is unreadable."""
    try:
        fd = os.open(startup_cache_path(name), os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))  # a FIFO never blocks
        with open(fd, encoding="utf-8", closefd=True) as handle:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return None  # a directory, FIFO or device where the cache file should be
            stored = json.load(handle)
    except (OSError, ValueError):
        return None
    if not isinstance(stored, dict) or stored.get("format") != FORMAT or stored.get("key") != key:
        return None
    return stored.get("value")


def write_cached(name: str, key, value) -> bool:
    """Cache ``value`` as ``name`` under ``key`` when it is plain JSON; False when it was not written."""
    record = {"format": FORMAT, "key": key, "value": value}
    try:
        text = json.dumps(record, ensure_ascii=False)
        if json.loads(text) != record:  # e.g. a date or a number key would come back changed
            return False
    except (TypeError, ValueError, RecursionError):
        return False
    from hub.errors import WriteError
    from hub.io import atomic_write_text

    target = startup_cache_path(name)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(target, text + "\n")
    except (OSError, WriteError):
        return False
    _prune(target.parent)
    return True


def short_name(text: str) -> str:
    """A short, stable name for a cache file about ``text`` (a path, a search path); the key holds the text itself."""
    from zlib import crc32

    return f"{crc32(text.encode('utf-8', 'surrogateescape')):08x}"


def _prune(directory: Path) -> None:
    """Keep at most MAX_FILES cache files (each set of catalogue files or search paths has its own)."""
    try:
        entries = [(entry.stat().st_mtime_ns, entry.path) for entry in os.scandir(directory)
                   if entry.name.endswith(".json") and entry.is_file(follow_symlinks=False)]
        for _, path in sorted(entries)[:-MAX_FILES]:
            os.unlink(path)
    except OSError:
        pass  # another process pruned or wrote at the same time: nothing is lost but a cached value
