"""Where weights come from: a local directory, a directory inside a Python package, or a hub id.

Forms of ``spec.source`` and ``spec.local``:

- ``hf-hub:org/name`` - a Hugging Face hub repository, at ``spec.revision`` when pinned. Found in
  the local HF cache first; downloaded only when ``HF_HUB_OFFLINE`` is not set. When the weights
  cannot be had, :class:`hub.errors.ModelUnavailableError` says which id and how to get them.
- ``package:module/sub/dir`` - a directory shipped inside an installed Python package.
- anything else - a local directory (``~`` expanded, relative to the working directory).

``spec.local``, when given and present, is used before ``spec.source``.
"""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from hub.errors import ModelUnavailableError

HF_PREFIX = "hf-hub:"
PACKAGE_PREFIX = "package:"


def is_hub_id(source: str) -> bool:
    return source.startswith(HF_PREFIX)


def offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes", "on")


def package_dir(source: str) -> Path | None:
    """The directory ``package:module/sub`` points at, or None when the package is not installed."""
    module, _, sub = source[len(PACKAGE_PREFIX):].partition("/")
    try:
        found = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if found is None or not found.submodule_search_locations:
        return None
    path = Path(list(found.submodule_search_locations)[0]) / sub
    return path if path.exists() else None


def local_path(source: str) -> Path | None:
    """The directory for a non-hub source if it exists, else None."""
    if source.startswith(PACKAGE_PREFIX):
        return package_dir(source)
    path = Path(source).expanduser()
    return path if path.exists() else None


def resolve(spec, allow_patterns: list[str] | None = None) -> Path:
    """A local directory holding the weights of ``spec``; downloads only when online."""
    for source in (spec.local, spec.source):
        if not source or is_hub_id(source):
            continue
        path = local_path(source)
        if path is not None:
            return path
    if is_hub_id(spec.source):
        return hub_snapshot(spec.id, spec.source[len(HF_PREFIX):], spec.revision, allow_patterns)
    raise ModelUnavailableError(
        f"weights for model '{spec.id}' not found at '{spec.source}'"
        + (f" (nor at '{spec.local}')" if spec.local else "")
        + ". Check the path, or install the package that ships them."
    )


def hub_snapshot(model_id: str, repo: str, revision: str | None, allow_patterns=None) -> Path:
    """The cached snapshot of ``repo``; fetched only when not offline. Never hangs offline."""
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise ModelUnavailableError(
            f"model '{model_id}' comes from the hub ('{repo}') and needs huggingface_hub: pip install huggingface_hub"
        ) from None
    try:
        return Path(snapshot_download(repo, revision=revision, allow_patterns=allow_patterns,
                                      local_files_only=True))
    except Exception:
        if offline():
            raise ModelUnavailableError(_how_to_get(model_id, repo, revision, "HF_HUB_OFFLINE=1 is set")) from None
    try:
        return Path(snapshot_download(repo, revision=revision, allow_patterns=allow_patterns, etag_timeout=10))
    except Exception as exc:
        raise ModelUnavailableError(_how_to_get(model_id, repo, revision, f"download failed: {type(exc).__name__}")) from None


def _how_to_get(model_id: str, repo: str, revision: str | None, why: str) -> str:
    rev = f" --revision {revision}" if revision else ""
    return (
        f"weights for model '{model_id}' (hub id '{repo}') are not in the local Hugging Face cache and "
        f"cannot be downloaded now ({why}). On a machine with network access run "
        f"'huggingface-cli download {repo}{rev}' (or 'hub run {model_id} ...' once online), or point the "
        f"catalogue entry's 'local' field at a directory with the weights."
    )
