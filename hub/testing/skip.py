"""The outcome of a contract property that cannot be checked here, shared by :mod:`hub.testing.contract` and
the fresh-process checks of :mod:`hub.testing.imports`, so that neither imports the other's caller."""
from __future__ import annotations


class Skip:
    """A property that cannot be checked here (e.g. an in-process plugin has no module to import)."""

    def __init__(self, why: str):
        self.why = why
