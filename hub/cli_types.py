"""Value types of the command line's options, shared by every verb. Only click is imported here.

:class:`LazyChoice` is the type of a choice whose names come from plugins (``--backend``).
:class:`FiniteFloat` is the one type of every decimal option: click's ``FloatRange`` (``--max-memory``
takes ``0 < x``, ``--min-cosine`` ``-1 <= x <= 1``) that also refuses ``nan``, ``inf`` and numbers too
large to be finite (``1e999``), which compare false with every bound and so pass a plain range.
"""
from __future__ import annotations

import math

import click


class FiniteFloat(click.FloatRange):
    """A finite number within the given bounds; ``nan``, ``inf`` and ``-inf`` are refused by name."""

    def convert(self, value, param, ctx):
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = None  # not a number at all: click's own message follows
        if number is not None and not math.isfinite(number):
            bounds = f" in the range {self._describe_range()}" if self.min is not None or self.max is not None else ""
            self.fail(f"'{value}' is not a finite number; give a number{bounds}.", param, ctx)
        return super().convert(value, param, ctx)


class LazyChoice(click.Choice):
    """A choice among names read when first needed (parsing the option, or showing help), not when the command
    is defined: ``--backend`` offers the backends plugins declare, and defining the command loads no plugin."""

    def __init__(self, names, case_sensitive: bool = True):
        self._names, self.case_sensitive = names, case_sensitive

    @property
    def choices(self) -> tuple:
        return tuple(self._names)
