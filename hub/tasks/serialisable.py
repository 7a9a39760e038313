"""The result contract, checked where every result passes: each is a result object whose ``to_dict()`` is JSON.

``hub run --json`` prints ``to_dict()``, ``hub serve`` sends it and the SDK reads it back with the task's
``from_dict``; a result that is not a result object, whose ``to_dict`` raises, or whose dict holds something
JSON cannot carry (a set, bytes, a numpy number, an object) would make the three disagree, or fail far from
its cause. :func:`check_results` runs where results leave a pipeline (``Pipeline.__call__``, behind
``hub run``, ``hub.run`` and batch jobs, and the server's ``/v1/run`` before it answers; not inside
``run_batches``, whose subclasses may gather intermediate values), so all three refuse it the same way: a :class:`ResultContractError` (a :class:`hub.errors.PluginError`; ``hub serve`` answers 500)
naming the plugin, the model and the field.
"""
from __future__ import annotations

import json

from hub.errors import PluginError


class ResultContractError(PluginError):
    """A plugin's pipeline returned a result that is not a result object, or whose ``to_dict()`` is not JSON."""


def check_results(results: list, plugin: str, model: str, task: str) -> list[dict | None]:
    """Each result's ``to_dict()`` (None for a None result, left to the caller's count checks), once every
    result given is a result object whose ``to_dict()`` is a dict JSON can carry; else a PluginError naming
    ``plugin`` and ``model``."""
    dicts: list[dict | None] = []
    for index, result in enumerate(results):
        if result is None:
            dicts.append(None)
            continue
        data, problem = _checked(result)
        dicts.append(data)
        if problem is not None:
            raise ResultContractError(
                plugin, f"plugin '{plugin}' returned a result for model '{model}' ({task}) that breaks the result "
                        f"contract: result {index} {problem}. Results must be result objects (subclass "
                        "hub.tasks.results.Result) whose to_dict() holds only strings, numbers, booleans, None, lists "
                        "and dicts; report it to the plugin's authors")
    return dicts


def _checked(result) -> tuple[dict | None, str | None]:
    """(one result's ``to_dict()``, None), or (None, what is wrong with it)."""
    to_dict = getattr(result, "to_dict", None)
    if not callable(to_dict):
        return None, f"is a {type(result).__name__}, not a result object (it has no to_dict())"
    try:
        data = to_dict()
    except Exception as exc:  # the plugin's own to_dict failed
        return None, f"({type(result).__name__}) raised {type(exc).__name__} in to_dict(): {exc}"
    if not isinstance(data, dict):
        return None, f"({type(result).__name__}) gave a {type(data).__name__} from to_dict(), not a dict"
    try:
        json.dumps(data)
    except (TypeError, ValueError) as exc:
        where = _first_bad(data, "")
        at = f" at '{where[0]}' ({where[1]})" if where else ""
        return None, f"({type(result).__name__}) is not JSON{at}: {exc}"
    return data, None


_JSON_LEAVES = (str, int, float, bool, type(None))


def _first_bad(value, path: str) -> tuple[str, str] | None:
    """(where, the type found) for the first value JSON cannot carry, or None."""
    if isinstance(value, _JSON_LEAVES):
        return None
    if isinstance(value, (list, tuple)):
        items = enumerate(value)
    elif isinstance(value, dict):
        bad_key = next((k for k in value if not isinstance(k, _JSON_LEAVES)), None)
        if bad_key is not None:
            return path or "the top level", f"a key of type {type(bad_key).__name__}"
        items = value.items()
    else:
        return path or "the top level", type(value).__name__
    for key, item in items:
        found = _first_bad(item, f"{path}.{key}" if path else str(key))
        if found is not None:
            return found
    return None
