"""An export is what its ``mmhub.yaml`` says: files inside its directory, unchanged since ``hub export`` wrote them.

At export time :func:`record` lists every file of the export (all but ``mmhub.yaml``) with its sha256
in ``options.export.files``. On load, :func:`check` refuses:

- a graph or file path that is absolute, climbs out with ``..``, or leads out through a symbolic link;
- a recorded file that is missing, is not a regular file, or whose sha256 differs (truncated, changed,
  or swapped for another model's graph);

each with one line naming the file and saying to run ``hub export`` again (:class:`BrokenExportError`),
before any runtime opens a graph. A file that verified is remembered by its size, time and inode, so a
second load in the same process does not hash it again. Exports made before hashes were recorded are
checked for their paths only.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path, PurePosixPath

from hub.errors import HubError

CARD = "mmhub.yaml"
AGAIN = "export it again with 'hub export'"
_VERIFIED: dict[str, tuple] = {}  # real path -> (size, mtime_ns, inode, sha256) of a file that verified


class BrokenExportError(HubError):
    """An exported directory whose files are not what its mmhub.yaml says (exit 2)."""


def inside(directory, name, what: str = "file") -> Path:
    """``directory / name`` when ``name`` is a relative path that stays inside ``directory``; else BrokenExportError."""
    directory = Path(directory)
    if not isinstance(name, str) or not name.strip() or "\0" in name or "\\" in name:
        raise BrokenExportError(f"the export in '{directory}' names the {what} {name!r}, which is not a file name "
                                f"in it; {AGAIN}")
    relative = PurePosixPath(name)
    if relative.is_absolute() or ".." in relative.parts:
        raise BrokenExportError(f"the export in '{directory}' names the {what} '{name}', which lies outside its "
                                f"directory; an export reads only its own files: {AGAIN}")
    path = directory / relative
    real, root = Path(os.path.realpath(path)), Path(os.path.realpath(directory))
    if root not in real.parents:
        raise BrokenExportError(f"the {what} '{path}' of the export in '{directory}' is a link that leads out of its "
                                f"directory (to '{real}'); {AGAIN}")
    return path


def record(directory) -> dict[str, str]:
    """``{relative path: sha256}`` of every file under ``directory`` but its mmhub.yaml."""
    directory = Path(directory)
    found = {}
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        name = path.relative_to(directory).as_posix()
        if name != CARD:
            found[name] = sha256_of(path)
    return found


def check(directory, info: dict) -> None:
    """Refuse an export whose graph paths escape it or whose recorded files are not as recorded."""
    directory = Path(directory)
    graphs = info.get("graphs") or {}
    for graph in graphs.values():
        inside(directory, graph, "graph")
    files = info.get("files")
    if files is None:
        return  # an export from before hashes were recorded
    if not isinstance(files, dict) or not all(isinstance(v, str) for v in files.values()):
        raise BrokenExportError(f"the export in '{directory}' has an unreadable list of files in its {CARD}; {AGAIN}")
    unrecorded = sorted(set(graphs.values()) - set(files))
    if unrecorded:
        raise BrokenExportError(f"the graph '{unrecorded[0]}' of the export in '{directory}' has no recorded hash in "
                                f"its {CARD}; {AGAIN}")
    for name, digest in files.items():
        _check_file(inside(directory, name), digest, directory)


def _check_file(path: Path, digest: str, directory: Path) -> None:
    if not path.is_file():
        what = "is missing" if not os.path.lexists(path) else "is not a regular file"
        raise BrokenExportError(f"'{path}' of the export in '{directory}' {what}; {AGAIN}")
    st = path.stat()
    key, seen = os.path.realpath(path), (st.st_size, st.st_mtime_ns, st.st_ino)
    known = _VERIFIED.get(key)
    if known is not None and known[:3] == seen and known[3] == digest:
        return
    if sha256_of(path) != digest:
        raise BrokenExportError(f"'{path}' is not the file 'hub export' wrote into '{directory}' (its sha256 differs: "
                                f"truncated, changed or swapped for another); {AGAIN}")
    _VERIFIED[key] = (*seen, digest)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
