"""Call options: what a pipeline takes per call, declared once, checked and converted before inference.

A pipeline lists its options in ``call_options`` (a tuple of :class:`Option`). Before any input is read,
the base :class:`hub.tasks.base.Pipeline` passes the caller's keywords through :func:`validate_options`:
an unknown name is refused with the valid ones listed, a value of the wrong type or out of range is
refused naming the option and what it takes, and strings (``-o top_k=3`` on the command line) are
converted to the declared type. A bool is never taken for a number, nor a number for a bool.

Bounds that depend on the model (the new tokens its context leaves, the size of its vocabulary) are the
loaded pipeline's :meth:`hub.tasks.base.Pipeline.limits`: :func:`check_limits` refuses a value over one with an
:class:`OptionLimitError` before any input is read. An option declared ``model_bound`` must get its bound
there, so that a pipeline cannot forget it; ``new_tokens`` marks the options that count tokens to generate,
which ``hub serve --max-new-tokens`` also caps.

Options that several pipelines take are defined here once, so that a name means one thing
everywhere. In particular ``top_k`` is always "how many of the best to keep", an integer >= 1:
for classifiers the number of labels returned (default 5; asking for more than the model has returns
them all), for text generation the number of most likely tokens that sampling picks from.
"""
from __future__ import annotations

import difflib
import json
import math
import re
from dataclasses import dataclass, replace
from typing import Any

from hub.errors import OptionError, PluginError

TYPE_NAMES = {bool: "boolean", int: "integer", float: "number", str: "string", list: "list of strings"}
TRUE_WORDS = ("true", "yes", "on", "1")
FALSE_WORDS = ("false", "no", "off", "0")


@dataclass(frozen=True)
class Option:
    """One call option: its name, type, default, one-line help and the values it allows.

    ``type`` is one of ``bool``, ``int``, ``float``, ``str`` or ``list`` (a list of strings).
    ``minimum``/``maximum`` bound numbers (``exclusive_minimum`` makes the lower bound strict);
    ``choices`` lists the allowed strings; ``separator`` splits a string given for a list option
    (``labels=cat,dog``); ``callables`` also lets Python callers put functions in a list option.
    A default of None means "not set": the pipeline decides, as its help says.
    ``model_bound`` says the model sets the largest value (the pipeline's ``limits()`` gives it);
    ``new_tokens`` says the option counts tokens to generate (a server caps those with ``--max-new-tokens``).
    """

    name: str
    type: type
    default: Any = None
    help: str = ""
    choices: tuple[str, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    separator: str | None = None
    callables: bool = False
    model_bound: bool = False
    new_tokens: bool = False

    def __post_init__(self):
        if self.type not in TYPE_NAMES:
            raise TypeError(f"option {self.name!r}: type must be one of bool, int, float, str, list")
        if not self.name.isidentifier():
            raise ValueError(f"option name {self.name!r} must be a Python identifier")
        problem = default_problem(self)
        if problem:
            raise ValueError(f"option {self.name!r} declares the default {_brief_repr(self.default)}, which {problem}; "
                             "declare a default the option accepts, or None (not set)")

    def but(self, **changes) -> Option:
        """A copy with some fields changed (e.g. another default or help for one pipeline)."""
        return replace(self, **changes)

    @property
    def type_name(self) -> str:
        return TYPE_NAMES[self.type]

    def allowed(self) -> str:
        """The allowed values in words: '>= 1', '> 0 and <= 1', 'one of a, b', or ''."""
        if self.choices:
            return "one of " + ", ".join(self.choices)
        parts = []
        if self.minimum is not None:
            parts.append(f"{'>' if self.exclusive_minimum else '>='} {_number(self.minimum)}")
        if self.maximum is not None:
            parts.append(f"<= {_number(self.maximum)}")
        return " and ".join(parts)

    def describe(self) -> str:
        """Type and allowed values, e.g. 'integer >= 1' or 'one of first, max'."""
        return self.allowed() if self.choices else f"{self.type_name} {self.allowed()}".strip()

    def to_dict(self) -> dict:
        return {"name": self.name, "type": self.type_name, "default": self.default, "help": self.help,
                "choices": list(self.choices) if self.choices else None, "minimum": self.minimum,
                "maximum": self.maximum, "exclusive_minimum": self.exclusive_minimum,
                "model_bound": self.model_bound, "new_tokens": self.new_tokens}

    def convert(self, value, model_id: str = "") -> Any:
        """``value`` checked and converted to this option's type; OptionError naming the option otherwise."""
        converted = _CONVERTERS[self.type](self, value)
        if converted is _BAD or not self.in_range(converted):
            expected = self.allowed() if self.choices else _article(self.describe())
            over = converted is not _BAD and self.maximum is not None and not self.choices and converted > self.maximum
            raise self.error(value, model_id, f"must be {expected}", OptionLimitError if over else OptionError)
        return converted

    def in_range(self, value) -> bool:
        """Whether a value of the right type is among the choices and within the bounds."""
        if self.choices:
            return value in self.choices
        if self.type not in (int, float):
            return True
        low, high = self.minimum, self.maximum
        too_low = low is not None and (value <= low if self.exclusive_minimum else value < low)
        return not too_low and (high is None or value <= high)

    def error(self, value, model_id: str, problem: str, kind: type[OptionError] = OptionError) -> OptionError:
        whose = f" of {model_id}" if model_id else ""
        shown = repr(value) if len(repr(value)) <= 80 else repr(value)[:77] + "..."
        return kind(f"option '{self.name}'{whose} {problem}; got {shown}")


class OptionLimitError(OptionError):
    """An option over a limit of the model (``Pipeline.limits()``) or of the server; ``hub serve`` answers 422."""


def default_problem(option: Option) -> str | None:
    """Why ``option``'s declared default is not a value it accepts (its exact type, its choices, its bounds);
    None when it is fine. A default is not converted: ``"3"`` is no default for an integer option."""
    value = option.default
    if value is None:
        return None
    exact = {bool: isinstance(value, bool), str: isinstance(value, str),
             int: isinstance(value, int) and not isinstance(value, bool),
             float: isinstance(value, (int, float)) and not isinstance(value, bool),
             list: isinstance(value, (list, tuple))}[option.type]
    if not exact or _CONVERTERS[option.type](option, value) is _BAD:
        return f"is not {_article(option.type_name)}" + (" (a finite one)" if exact and option.type is float else "")
    if option.choices and value not in option.choices:
        return f"is not one of its choices ({', '.join(map(str, option.choices))})"
    if not option.in_range(value):
        return f"is outside its bounds ({option.allowed()})"
    return None


def _brief_repr(value) -> str:
    shown = repr(value)
    return shown if len(shown) <= 80 else shown[:77] + "..."


def _number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _article(words: str) -> str:
    return ("an " if words[0] in "aeiou" else "a ") + words


_BAD = object()


def _to_bool(option: Option, value):
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        word = value.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
    return _BAD


def _to_int(option: Option, value):
    if isinstance(value, bool):
        return _BAD
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        text = value.strip()
        if re.fullmatch(r"[+-]?[0-9]+", text):
            return int(text)
    return _BAD


def _to_float(option: Option, value):
    if isinstance(value, bool):
        return _BAD
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return _BAD
    else:
        return _BAD
    return number if math.isfinite(number) else _BAD


def _to_str(option: Option, value):
    return value if isinstance(value, str) else _BAD


def _to_list(option: Option, value):
    if isinstance(value, str):
        value = _split(option, value)
        if value is _BAD:
            return _BAD
    if not isinstance(value, (list, tuple)):
        return _BAD
    if not all(isinstance(x, str) or (option.callables and callable(x)) for x in value):
        return _BAD
    return list(value)


def _split(option: Option, text: str):
    """A string given for a list option: '["a", "b"]' (JSON) or '[a, b]', else split on the separator, else one item."""
    stripped = text.strip()
    if stripped.startswith("["):
        if not stripped.endswith("]"):
            return _BAD
        try:
            parsed = json.loads(stripped)
        except ValueError:
            return [part.strip() for part in stripped[1:-1].split(",") if part.strip()]
        return [str(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else x for x in parsed]
    if option.separator:
        return [part.strip() for part in text.split(option.separator) if part.strip()]
    return [text]


_CONVERTERS = {bool: _to_bool, int: _to_int, float: _to_float, str: _to_str, list: _to_list}


def validate_options(declared, given: dict, model_id: str = "") -> dict:
    """Every declared option's value: ``given`` checked and converted, the default where not given (or None).

    Raises :class:`hub.errors.OptionError` for an unknown name (listing the valid ones, with the
    closest as "did you mean"), a value of the wrong type, or one out of range.
    """
    by_name = {option.name: option for option in declared}
    unknown = sorted(set(given) - set(by_name))
    if unknown:
        raise unknown_option_error(unknown, list(by_name), model_id)
    return {name: option.default if given.get(name) is None else option.convert(given[name], model_id)
            for name, option in by_name.items()}


def check_limits(declared, values: dict, limits: dict, model_id: str = "", plugin: str = "") -> None:
    """Refuse a value over the model's own limit for its option, before anything is allocated.

    ``limits`` maps option names to a largest value, or to (largest value, why): a pipeline's ``limits()``.
    An option declared ``model_bound`` that ``limits`` leaves out is the plugin's error (naming ``plugin``):
    its bound must not be forgotten."""
    for option in declared:
        bound = limits.get(option.name)
        if bound is None:
            if option.model_bound:
                raise PluginError(plugin, f"plugin '{plugin}': {model_id or 'the pipeline'} declares the option "
                                          f"'{option.name}' as bounded by the model, but its limits() gives no "
                                          "bound for it; return {'" + option.name + "': largest value} there")
            continue
        value = values.get(option.name)
        largest, why = bound if isinstance(bound, tuple) else (bound, "")
        if value is not None and not isinstance(value, bool) and isinstance(value, (int, float)) and value > largest:
            because = f" ({why})" if why else ""
            raise option.error(value, model_id, f"must be at most {_number(largest)} for this model{because}",
                               OptionLimitError)


def unknown_option_error(unknown: list[str], valid: list[str], model_id: str = "", what: str = "option") -> OptionError:
    """The error for options a pipeline does not take: the valid ones, and the closest as 'did you mean'.
    ``what`` names the kind of option ("option", or "load option" for those given to ``hub.load``)."""
    names = ", ".join(f"'{u}'" for u in unknown)
    whose = f"{model_id} does not take" if model_id else "unknown"
    close = [c for u in unknown for c in difflib.get_close_matches(u, valid, n=1, cutoff=0.6)]
    hint = f" Did you mean: {', '.join(dict.fromkeys(close))}?" if close else ""
    takes = f"Valid {what}s: {', '.join(valid)}." if valid else f"It takes no {what}s."
    return OptionError(f"{whose} the {what}{'s' if len(unknown) > 1 else ''} {names}.{hint} {takes}")


def option_lines(options) -> list[str]:
    """An aligned table of options (name, type and allowed values, default, help), one line each."""
    if not options:
        return []
    rows = [("NAME", "TYPE", "DEFAULT", "HELP")]
    rows += [(o.name, o.describe(), _shown(o.default), o.help) for o in options]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[3] for row in rows]


def _shown(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    return str(value)


# -- options several pipelines share: one name, one meaning ----------------------------------------------------
TOP_K = Option("top_k", int, 5, "how many of the best labels to return, best first (all of them when the "
               "model has fewer)", minimum=1)
LABELS = Option("labels", list, None, "candidate labels to score (on the command line: --label, or a "
                "comma-separated list)", separator=",")
TEXTS = Option("texts", list, None, "texts to compare each input with (on the command line: --text)")
MAX_NEW_TOKENS = Option("max_new_tokens", int, 20, "the most new tokens to generate per input (at most what the "
                        "model's context leaves)", minimum=1, model_bound=True, new_tokens=True)
DO_SAMPLE = Option("do_sample", bool, False, "sample the next token instead of taking the most likely one")
TEMPERATURE = Option("temperature", float, None, "sampling temperature (needs do_sample): lower is more "
                     "conservative", minimum=0, exclusive_minimum=True)
TOP_P = Option("top_p", float, None, "sample only from the most likely tokens whose probabilities add up to "
               "top_p (needs do_sample)", minimum=0, exclusive_minimum=True, maximum=1)
SAMPLE_TOP_K = Option("top_k", int, None, "sample only from the top_k most likely tokens (needs do_sample; at "
                      "most the vocabulary's size)", minimum=1, model_bound=True)
SEED = Option("seed", int, None, "random seed for sampling: the same seed, inputs and batch size give the "
              "same output", minimum=0, maximum=2**32 - 1)
