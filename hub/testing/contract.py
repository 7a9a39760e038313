"""The model contract: properties every pipeline of every plugin must have, checked on one model.

:func:`check_model_contract` loads a model (or takes a loaded pipeline), runs it on the inputs given
and checks each property in :data:`PROPERTIES`. Every property that fails is reported in one
:class:`ContractError` (an ``AssertionError``) whose lines name the property and the model.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

from hub.testing.compare import as_tree, difference
from hub.testing.skip import Skip

PROPERTIES = (
    "results-per-input",   # a list of inputs gives a list of results, one per input
    "input-order",         # results come back in input order (reversing the inputs reverses them)
    "single-input",        # one input (not in a list) gives one result; a list of one gives a list of one
    "empty-list",          # an empty list gives an empty list, running nothing
    "batch-size",          # any batch size gives the same results (numbers within the tolerance)
    "result-type",         # each result is the task's result class, with a summary() (one line in a table view)
    "json-round-trip",     # to_dict() -> JSON -> from_dict() gives the same result
    "options-validated",   # an unknown or wrongly typed option is an OptionError before any input is read
    "listing-imports",     # listing the catalogue with only this plugin imports no torch (subprocess)
    "import-time",         # importing the plugin's module takes less than the budget (subprocess)
)
WRONG_VALUES = {bool: "maybe", int: "abc", float: "abc", str: 42, list: 42}


class ContractError(AssertionError):
    """Properties a model breaks: ``failures`` maps each property to what went wrong."""

    def __init__(self, model: str, failures: dict[str, str]):
        self.model, self.failures = model, failures
        lines = [f"- {prop}: model '{model}' {problem}" for prop, problem in failures.items()]
        super().__init__(f"model '{model}' breaks the plugin contract ({', '.join(failures)}):\n" + "\n".join(lines))


@dataclass
class ContractReport:
    """What was checked on a model that passed, and what was skipped and why."""

    model: str
    checked: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)


@dataclass
class _Run:
    """One contract check in progress: the pipeline, its inputs and the settings."""

    pipe: object
    inputs: list
    options: dict
    atol: float
    rtol: float
    batch_sizes: tuple
    wrong_options: dict | None
    baseline: list | None = None


def check_model_contract(model_or_id, inputs: list, *, task: str | None = None, options: dict | None = None,
                         batch_sizes=None, atol: float = 1e-4, rtol: float = 1e-3, wrong_options: dict | None = None,
                         plugin_module: str | None = None, import_budget_ms: float = 100.0,
                         properties=PROPERTIES, skip=(), device: str = "cpu", dtype: str = "fp32") -> ContractReport:
    """Check the contract on one model (an id, alias, directory or loaded pipeline) with >= 2 ``inputs``.

    ``options`` are passed to every call (e.g. the labels a zero-shot model needs); ``wrong_options``
    maps option names to values that must be refused (default: a value of the wrong type for every
    declared option); ``plugin_module`` is the module imported by the import checks (default: the
    entry point of the model's plugin). Raises :class:`ContractError` naming every broken property.
    """
    from hub.testing.imports import check_import_time, check_listing_imports

    if not isinstance(inputs, (list, tuple)) or len(inputs) < 2:
        raise ValueError("check_model_contract needs a list of at least two inputs")
    pipe = _load(model_or_id, task, device, dtype)
    run = _Run(pipe, list(inputs), dict(options or {}), atol, rtol, tuple(batch_sizes or (1, 2, len(inputs))),
               wrong_options)
    name = getattr(pipe.spec, "id", None) or str(model_or_id)  # a test double's spec may be a bare value
    report, failures = ContractReport(name), {}
    checks = {**{prop: _IN_PROCESS[prop] for prop in _IN_PROCESS},
              "listing-imports": lambda r: check_listing_imports(_plugin(r.pipe)),
              "import-time": lambda r: check_import_time(plugin_module or _plugin_module(r.pipe), import_budget_ms)}
    for prop in properties:
        if prop not in checks:
            raise ValueError(f"unknown contract property '{prop}'; known: {', '.join(PROPERTIES)}")
        if prop in skip:
            report.skipped[prop] = "skipped by the caller"
            continue
        try:
            outcome = checks[prop](run)
        except Exception as exc:  # a crash is a broken property, reported with the others
            outcome = f"raised {type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
        if isinstance(outcome, Skip):
            report.skipped[prop] = outcome.why
        elif outcome:
            failures[prop] = outcome
        else:
            report.checked.append(prop)
    if failures:
        raise ContractError(name, failures)
    return report


def _load(model_or_id, task, device, dtype):
    """The pipeline to check; when loading fails because the plugin under test did not load, the reason why
    (its import error, or that it is not installed) instead of a confusing 'unknown model id'."""
    if not isinstance(model_or_id, str):
        from hub.tasks.base import Pipeline

        if not isinstance(model_or_id, Pipeline):
            raise ValueError(f"check_model_contract needs a model id or a loaded hub.Pipeline, got a "
                             f"{type(model_or_id).__name__}")
        return model_or_id
    import hub
    from hub.errors import HubError
    from hub.testing.isolation import PluginNotLoadedError, plugins_not_loaded

    try:
        return hub.load(model_or_id, device=device, dtype=dtype, task=task, cache=False)
    except HubError as exc:
        problems = plugins_not_loaded()
        if problems:
            raise PluginNotLoadedError(problems) from exc
        raise


def _plugin(pipe) -> str | None:
    return getattr(pipe.spec, "plugin", None)


def _plugin_module(pipe) -> str | None:
    from hub.plugins import _entry_points

    name = _plugin(pipe)
    for ep in _entry_points():
        if ep.name == name:
            return ep.value.partition(":")[0]
    return None


# -- the in-process properties: each returns None (holds), a problem, or a Skip ---------------------------------
def _baseline(run: _Run) -> list:
    if run.baseline is None:
        run.baseline = run.pipe(run.inputs, **run.options)
    return run.baseline


def _results_per_input(run: _Run):
    results = _baseline(run)
    if not isinstance(results, list):
        return f"returned a {type(results).__name__} for a list of {len(run.inputs)} inputs, not a list"
    if len(results) != len(run.inputs):
        return f"returned {len(results)} results for {len(run.inputs)} inputs"
    missing = [i for i, r in enumerate(results) if r is None]
    if missing:
        return f"returned {len(results) - len(missing)} results for {len(run.inputs)} inputs (none for {missing})"
    return None


def _input_order(run: _Run):
    forward = [as_tree(r) for r in _baseline(run)]
    backward = run.pipe(list(reversed(run.inputs)), **run.options)
    found = difference([as_tree(r) for r in reversed(backward)], forward, run.atol, run.rtol, "results")
    return f"does not keep the input order: with the inputs reversed, {found}" if found else None


def _single_input(run: _Run):
    alone = run.pipe(run.inputs[0], **run.options)
    if isinstance(alone, (list, tuple)):
        return f"returned a {type(alone).__name__} for one input given alone; expected one result"
    found = difference(as_tree(alone), as_tree(_baseline(run)[0]), run.atol, run.rtol, "result")
    if found:
        return f"gives another result for an input alone than in a list: {found}"
    listed = run.pipe([run.inputs[0]], **run.options)
    if not isinstance(listed, list) or len(listed) != 1:
        return f"returned {listed!r:.80} for a list of one input; expected a list of one result"
    return None


def _empty_list(run: _Run):
    with _Counting(run.pipe) as counts:
        got = run.pipe([], **run.options)
    if got != []:
        return f"returned {got!r:.80} for an empty list; expected []"
    return f"ran {counts.describe()} for an empty list" if counts.any() else None


def _batch_size(run: _Run):
    want = [as_tree(r) for r in _baseline(run)]
    for size in run.batch_sizes:
        got = run.pipe(run.inputs, batch_size=size, **run.options)
        found = difference([as_tree(r) for r in got], want, run.atol, run.rtol, "results")
        if found:
            return f"gives other results with batch_size={size}: {found}"
    return None


def _result_type(run: _Run):
    from hub.tasks import task_info

    expected = result_class(run.pipe.task)
    block = getattr(task_info(run.pipe.task), "view", "table") == "text"  # a text view shows a block per input
    for i, result in enumerate(_baseline(run)):
        if not isinstance(result, expected):
            return (f"returned a {type(result).__name__} for input {i}; the task '{run.pipe.task}' returns "
                    f"{expected.__name__}")
        shown = result.summary()
        if not isinstance(shown, str) or not shown.strip() or ("\n" in shown and not block):
            return f"has a summary() of input {i} that is not one line of text: {shown!r:.80}"
    return None


def _json_round_trip(run: _Run):
    for i, result in enumerate(_baseline(run)):
        data = result.to_dict()
        try:
            text = json.dumps(data, allow_nan=False)
        except (TypeError, ValueError) as exc:
            return f"has a to_dict() of input {i} that is not plain JSON: {exc}"
        back = type(result).from_dict(json.loads(text))
        if type(back) is not type(result) or back.to_dict() != data:
            found = difference(as_tree(back), data, 0.0, 0.0, "read back")
            return f"does not read back its JSON for input {i} with {type(result).__name__}.from_dict: {found}"
    return None


def _options_validated(run: _Run):
    from hub.errors import OptionError

    wrong = run.wrong_options
    if wrong is None:
        wrong = {o.name: WRONG_VALUES[o.type] for o in run.pipe.call_options}
    cases = [({"no_such_option_xyz": 1}, "an unknown option 'no_such_option_xyz'")]
    cases += [({name: value}, f"option '{name}'={value!r}") for name, value in wrong.items()]
    for given, what in cases:
        with _Counting(run.pipe) as counts:
            try:
                run.pipe(run.inputs, **{**run.options, **given})
            except OptionError:
                pass
            except Exception as exc:
                return f"raised {type(exc).__name__} instead of OptionError for {what}: {exc}"
            else:
                return f"accepted {what}; expected an OptionError"
        if counts.any():
            return f"ran {counts.describe()} before refusing {what}; check options before reading inputs"
    return None


_IN_PROCESS = {
    "results-per-input": _results_per_input, "input-order": _input_order, "single-input": _single_input,
    "empty-list": _empty_list, "batch-size": _batch_size, "result-type": _result_type,
    "json-round-trip": _json_round_trip, "options-validated": _options_validated,
}


def result_class(task: str) -> type:
    """The result class the task table declares for ``task`` (a name, a ``"module:Class"`` ref, or a class)."""
    from hub.tasks import task_info

    info = task_info(task)
    if callable(getattr(info, "result_type", None)):
        return info.result_type()
    ref = info.result
    if isinstance(ref, type):
        return ref
    if ":" in ref:
        from hub.refs import resolve_ref

        return resolve_ref(ref)
    from hub.tasks.results import RESULT_TYPES

    return RESULT_TYPES[ref]


class _Counting:
    """Counts calls of a pipeline's prepare, preprocess and forward while in the ``with`` block."""

    NAMES = ("prepare", "preprocess", "forward")

    def __init__(self, pipe):
        self.pipe, self.calls = pipe, dict.fromkeys(self.NAMES, 0)

    def __enter__(self) -> _Counting:
        for name in self.NAMES:  # members every Pipeline has
            setattr(self.pipe, name, self._counted(name, getattr(self.pipe, name)))
        return self

    def _counted(self, name, original):
        def counted(*args, **kwargs):
            self.calls[name] += 1
            return original(*args, **kwargs)

        return counted

    def __exit__(self, *exc) -> None:
        for name in self.NAMES:
            self.pipe.__dict__.pop(name, None)

    def any(self) -> bool:
        return any(self.calls.values())

    def describe(self) -> str:
        return ", ".join(f"{name} {n} time(s)" for name, n in self.calls.items() if n)
