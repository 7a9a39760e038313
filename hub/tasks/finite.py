"""Numbers that are not numbers: a result holding NaN or infinity is an error naming the model.

A model with NaN weights, or one whose activations overflow in half precision, gives NaN scores and
embeddings without failing. :func:`check_finite` walks every result a pipeline returns (dataclass fields,
lists, dicts, numpy arrays) and raises :class:`NonFiniteOutputError` at the first number that is not finite,
naming the model and the field. The base pipeline calls it on every batch path, so ``hub run`` (``--json``
can never print a bare ``NaN``), ``hub serve`` and ``hub.run`` agree. numpy is looked at only where a result
holds an array; importing this module costs nothing.
"""
from __future__ import annotations

import math
from dataclasses import fields, is_dataclass

from hub.errors import HubError


class NonFiniteOutputError(HubError):
    """A model gave NaN or infinity in its output; names the model and where the number was found."""


def check_finite(results: list, owner: str) -> None:
    """Raise :class:`NonFiniteOutputError` naming ``owner`` (the model and its task) when any result holds a
    number that is not finite."""
    for index, result in enumerate(results):
        where = _non_finite(result, "")
        if where is not None:
            path, value = where
            shown = f"result {index}" + (f", field '{path}'" if path else "")
            raise NonFiniteOutputError(
                f"model {owner} gave a number that is not finite ({value}) in {shown}: its weights hold NaN or "
                "infinity, or its computation overflowed. Check the checkpoint (save it again from a model that "
                "works), or run in full precision (--dtype fp32)")


def _non_finite(value, path: str) -> tuple[str, str] | None:
    """(where, the bad value) for the first non-finite number in ``value``, or None when all are finite."""
    if isinstance(value, float):
        return None if math.isfinite(value) else (path, repr(value))
    if value is None or isinstance(value, (str, bytes, bool, int)):
        return None
    if isinstance(value, (list, tuple)):
        return _in_sequence(value, path)
    if isinstance(value, dict):
        for key, item in value.items():
            found = _non_finite(item, _join(path, str(key)))
            if found is not None:
                return found
        return None
    if is_dataclass(value) and not isinstance(value, type):
        for f in fields(value):
            found = _non_finite(getattr(value, f.name, None), _join(path, f.name))
            if found is not None:
                return found
        return None
    return _in_array(value, path)


def _in_sequence(values, path: str) -> tuple[str, str] | None:
    if values and all(type(v) is float for v in values):
        try:
            total = sum(values)  # NaN or infinity anywhere makes the sum so; one C loop over an embedding
        except OverflowError:
            total = math.inf
        if math.isfinite(total):
            return None
        bad = next((i for i, v in enumerate(values) if not math.isfinite(v)), None)
        return None if bad is None else (f"{path}[{bad}]", repr(values[bad]))
    for i, item in enumerate(values):
        found = _non_finite(item, f"{path}[{i}]")
        if found is not None:
            return found
    return None


def _in_array(value, path: str) -> tuple[str, str] | None:
    """A numpy array or scalar (or a torch tensor) of floats: the first non-finite element."""
    if type(value).__module__.startswith("torch") and hasattr(value, "is_floating_point"):
        return _in_tensor(value, path)
    kind = getattr(getattr(value, "dtype", None), "kind", None)
    if kind not in ("f", "c"):
        return None
    import numpy as np

    array = np.asarray(value)
    flat = array.reshape(-1)
    bad = np.flatnonzero(~np.isfinite(flat))
    if not bad.size:
        return None
    return (f"{path}[{int(bad[0])}]" if array.ndim else path), repr(float(flat[bad[0]].real))


def _in_tensor(value, path: str) -> tuple[str, str] | None:
    """A torch tensor (bf16 and fp16 included, on any device): the first non-finite element."""
    import torch

    if not (value.is_floating_point() or value.is_complex()):
        return None
    flat = value.detach().reshape(-1)
    bad = torch.nonzero(~torch.isfinite(flat))
    if not bad.numel():
        return None
    index = int(bad[0, 0])
    return (f"{path}[{index}]" if value.dim() else path), repr(float(flat[index].real if value.is_complex()
                                                                      else flat[index]))


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name
