"""What a plugin's registration hook hands in: a dict of fields, or the declaration's own dataclass."""
from __future__ import annotations

from dataclasses import fields


def declared_fields(entry, kind: type, public_name: str, error: type[Exception]) -> dict:
    """The fields of a declaration (a dict, or an instance of ``kind`` less its ``plugin``), as a new dict.

    Anything else raises ``error`` naming what ``register()`` takes (``public_name``) and what it got.
    """
    if isinstance(entry, kind):
        return {f.name: getattr(entry, f.name) for f in fields(entry) if f.name != "plugin"}
    if isinstance(entry, dict):
        return dict(entry)
    raise error(f"register() takes a dict or a {public_name}, got {type(entry).__name__}")
