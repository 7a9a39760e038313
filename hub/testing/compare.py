"""Compare results as their JSON trees: numbers within a tolerance, everything else exactly."""
from __future__ import annotations

import math


def as_tree(result):
    """A result's ``to_dict()``, or the value itself when it has none."""
    to_dict = getattr(result, "to_dict", None)
    return to_dict() if callable(to_dict) else result


def difference(a, b, atol: float = 1e-4, rtol: float = 1e-3, where: str = "") -> str | None:
    """Where two JSON trees first differ (``'labels[0].score: 0.51 != 0.49'``), or None when they agree."""
    here = where or "the result"
    if isinstance(a, bool) or isinstance(b, bool) or not _number(a) or not _number(b):
        return _other_difference(a, b, atol, rtol, where)
    if math.isnan(a) and math.isnan(b):
        return None
    if math.isclose(a, b, rel_tol=rtol, abs_tol=atol):
        return None
    return f"{here}: {a!r} != {b!r} (beyond atol={atol}, rtol={rtol})"


def _other_difference(a, b, atol, rtol, where):
    here = where or "the result"
    if isinstance(a, dict) and isinstance(b, dict):
        if sorted(a) != sorted(b):
            return f"{here}: keys {sorted(a)} != {sorted(b)}"
        for key in a:
            found = difference(a[key], b[key], atol, rtol, f"{where}.{key}" if where else str(key))
            if found:
                return found
        return None
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        if len(a) != len(b):
            return f"{here}: {len(a)} items != {len(b)} items"
        for i, (x, y) in enumerate(zip(a, b)):
            found = difference(x, y, atol, rtol, f"{where}[{i}]")
            if found:
                return found
        return None
    return None if a == b and type(a) is type(b) else f"{here}: {_short(a)} != {_short(b)}"


def _number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
