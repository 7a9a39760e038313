"""Model directories that describe themselves: ``mmhub.yaml`` beside the weights.

``hub finetune`` writes one, so its output directory is itself a model: ``hub run DIR``,
``hub info DIR``, and a path to it can be listed in a user catalogue (``HUB_CATALOG``).
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

CARD_NAME = "mmhub.yaml"


def spec_from_directory(path):
    """The ModelSpec described by ``path/mmhub.yaml``, or None when there is none."""
    from hub.registry import ModelSpec, _yaml_load
    from hub.errors import CatalogError

    card = Path(path) / CARD_NAME
    if not card.is_file():
        return None
    try:
        data = _yaml_load(card.read_text(encoding="utf-8")) or {}
    except Exception as exc:
        raise CatalogError(card, None, None, f"not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise CatalogError(card, None, None, "expected a mapping of catalogue fields")
    data = dict(data)
    model_id = str(data.pop("id", None) or Path(path).resolve().name)
    data["source"] = str(Path(path).resolve())
    data.pop("local", None)
    return ModelSpec.from_mapping(model_id, data, str(card))


def write_card(path, fields: dict) -> Path:
    """Write ``mmhub.yaml`` atomically (temp file, then rename)."""
    import yaml

    target = Path(path) / CARD_NAME
    atomic_write_text(target, yaml.safe_dump(fields, sort_keys=False))
    return target


def atomic_write_text(target: Path, text: str) -> None:
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
