"""``hub recommend``: catalogue models ranked for a task, a data size and a compute budget, each rank explained.

The ranking lives in :mod:`hub.recommend.rank`, costs in :mod:`hub.recommend.cost` and the advice from
the number of examples in :mod:`hub.recommend.advice`; this package's top stays empty so the CLI starts fast.
"""
from __future__ import annotations


def recommend(task: str, **kwargs):
    """See :func:`hub.recommend.rank.recommend`."""
    from hub.recommend.rank import recommend as ranked

    return ranked(task, **kwargs)
