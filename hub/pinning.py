"""``hub pin``: replace branch revisions (``main``) in a catalogue file with the commit they point at.

A catalogue entry should name the exact commit of its hub repository, so that the weights a user
gets never change under them. This asks the Hugging Face hub which commit each unpinned entry's
revision points at now and rewrites only those ``revision:`` lines, keeping the rest of the file
(comments included) as it is; the file is written to a temporary file and renamed.
"""
from __future__ import annotations

import re
from pathlib import Path

from hub.errors import HubError
from hub.io import atomic_write_text
from hub.registry import COMMIT, PLUGIN_CATALOG, read_catalog_file, shipped_catalog_path
from hub.weights import HF_PREFIX


def unpinned(path: Path, ids: list[str] | None = None) -> list:
    """Specs in ``path`` with a hub source whose revision is not a full commit hash."""
    specs = [s for s in read_catalog_file(path) if s.source.startswith(HF_PREFIX)]
    if ids:
        unknown = sorted(set(ids) - {s.id for s in specs})
        if unknown:
            raise HubError(f"no hub-sourced entries named {', '.join(unknown)} in {path}")
        specs = [s for s in specs if s.id in ids]
    return [s for s in specs if not COMMIT.match(s.revision or "")]


def commit_of(repo: str, revision: str | None) -> str:
    """The commit hash ``revision`` (default main) of ``repo`` points at, asked of the hub."""
    from huggingface_hub import HfApi

    try:
        return HfApi().model_info(repo, revision=revision or "main").sha
    except Exception as exc:
        raise HubError(f"cannot look up the commit of '{repo}' at '{revision or 'main'}' ({type(exc).__name__}); "
                       "pinning needs network access to the Hugging Face hub") from None


def set_revision(text: str, model_id: str, commit: str) -> str:
    """``text`` with the ``revision:`` line of entry ``model_id`` set to ``commit`` (added if absent)."""
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if re.match(rf"^(\s+){re.escape(model_id)}:\s*$", line)), None)
    if start is None:
        raise HubError(f"entry '{model_id}' is not written as a block ('{model_id}:' on its own line); pin it by hand")
    indent = len(lines[start]) - len(lines[start].lstrip())
    end = start + 1
    while end < len(lines) and (not lines[end].strip() or len(lines[end]) - len(lines[end].lstrip()) > indent):
        end += 1
    field_indent = " " * (indent + 2)
    for i in range(start + 1, end):
        if re.match(rf"^{field_indent}revision:", lines[i]):
            lines[i] = f"{field_indent}revision: {commit}\n"
            return "".join(lines)
    lines.insert(start + 1, f"{field_indent}revision: {commit}\n")
    return "".join(lines)


def pin(path: Path, ids: list[str] | None = None, dry_run: bool = False) -> list[tuple[str, str, str]]:
    """Pin the unpinned entries of ``path``; returns (id, old revision, commit) for each."""
    from hub.outputs import check_output_file

    path = Path(path)
    if not path.is_dir() and (path.exists() or path.is_symlink()):
        check_output_file(path, "--file")  # rewritten in place: a regular file, not a special file or a link
    if not path.is_file():
        raise HubError(f"catalogue file '{path}' does not exist or is not a file; pass an existing file with --file")
    specs = unpinned(path, ids)  # also checks that the file is a valid catalogue
    changes = []
    text = path.read_text(encoding="utf-8")
    for spec in specs:
        commit = commit_of(spec.source[len(HF_PREFIX):], spec.revision)
        text = set_revision(text, spec.id, commit)
        changes.append((spec.id, spec.revision or "-", commit))
    if changes and not dry_run:
        atomic_write_text(path, text)
    return changes


def shipped_files() -> list[Path]:
    """The hub's registry.yaml, then the catalogue file (catalog.yaml beside its module) of each loaded plugin."""
    from hub.plugins import get_plugin_manager

    pm = get_plugin_manager()
    files = [shipped_catalog_path()]
    for name in sorted(pm.names(), key=pm.order_key):
        module_file = getattr(pm.get_plugin(name), "__file__", None)
        if module_file and Path(module_file).name == "__init__.py":
            files.append(Path(module_file).with_name(PLUGIN_CATALOG))
    return [path for path in files if path.is_file()]


def pin_shipped(ids: list[str] | None = None, dry_run: bool = False) -> list[tuple[Path, list]]:
    """Pin entries of the shipped catalogue files (:func:`shipped_files`), each in the file that declares it:
    all unpinned entries when ``ids`` is empty. Returns (file, its changes as :func:`pin` gives them) per file."""
    files = shipped_files()
    holders = {path: {s.id for s in read_catalog_file(path) if s.source.startswith(HF_PREFIX)} for path in files}
    unknown = sorted(set(ids or ()) - set().union(*holders.values()))
    if unknown:
        raise HubError(f"no hub-sourced entries named {', '.join(unknown)} in the shipped catalogue files "
                       f"({', '.join(map(str, files))}); pass your own file with --file")
    done = []
    for path in files:
        wanted = [i for i in ids if i in holders[path]] if ids else None
        if wanted is None or wanted:
            done.append((path, pin(path, wanted, dry_run=dry_run)))
    return done
