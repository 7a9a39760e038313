"""The base pipeline's batch plan: longest first, at most the batch size, cut to pad the fewest positions."""
from __future__ import annotations

import itertools
import random
from types import SimpleNamespace

import pytest

from hub.tasks import base
from hub.tasks.base import BATCH_COST_IN_INPUTS, Pipeline


class Lengths(Pipeline):
    """Inputs are their own lengths (ints); None for an input without one."""

    task = "text-embedding"

    def __init__(self):
        super().__init__(spec=SimpleNamespace(id="lengths"), model=None, device_manager=None)

    def length(self, item):
        return item

    def preprocess(self, items, **kwargs):
        return items

    def forward(self, batch, **kwargs):
        return batch

    def postprocess(self, outputs, items, **kwargs):
        return list(outputs)


def plan(lengths, size):
    return [[lengths[i] for i in batch] for batch in Lengths().batch_plan(lengths, size)]


def plan_cost(lengths, batches, batch_cost):
    """Padded positions (count x longest per batch) plus the fixed cost of each batch."""
    return sum(len(b) * max(lengths[i] for i in b) + batch_cost for b in batches)


def mean_batch_cost(lengths):
    return max(1.0, BATCH_COST_IN_INPUTS * sum(lengths) / len(lengths))


def test_inputs_of_equal_length_fill_whole_batches():
    assert plan([7] * 10, 4) == [[7] * 4, [7] * 4, [7] * 2]


def test_short_inputs_are_not_padded_to_a_long_ones_length():
    assert plan([100, 100, 100, 100, 10, 10, 10, 10], 8) == [[100] * 4, [10] * 4]
    assert plan([300] + [10] * 20, 32) == [[300], [10] * 20]


def test_a_few_shorter_inputs_ride_along_rather_than_cost_a_batch_of_their_own():
    assert plan([100] * 6 + [95, 95], 8) == [[100] * 6 + [95, 95]]


@pytest.mark.parametrize("seed", range(12))
def test_the_plan_is_the_cheapest_of_every_way_to_cut_the_sorted_inputs(seed):
    rng = random.Random(seed)
    lengths = [rng.choice([rng.randint(1, 20), rng.randint(20, 400)]) for _ in range(rng.randint(1, 10))]
    size = rng.choice([1, 2, 3, 8])
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    cost = mean_batch_cost(lengths)
    cheapest = float("inf")
    for cuts in itertools.product([False, True], repeat=len(order) - 1):
        starts = [0] + [i + 1 for i, cut in enumerate(cuts) if cut] + [len(order)]
        batches = [order[a:b] for a, b in zip(starts, starts[1:])]
        if all(len(b) <= size for b in batches):
            cheapest = min(cheapest, plan_cost(lengths, batches, cost))
    assert plan_cost(lengths, Lengths().batch_plan(lengths, size), cost) == pytest.approx(cheapest)


@pytest.mark.parametrize("seed", range(20))
def test_every_input_is_in_one_batch_longest_first_and_no_plan_costs_more_than_fixed_batches(seed):
    rng = random.Random(seed)
    lengths = [rng.choice([rng.randint(1, 20), rng.randint(20, 400)]) for _ in range(rng.randint(1, 300))]
    size = rng.choice([1, 2, 8, 32])
    batches = Lengths().batch_plan(lengths, size)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    assert [lengths[i] for b in batches for i in b] == sorted(lengths, reverse=True)
    assert all(1 <= len(b) <= size for b in batches)
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    fixed = [order[i:i + size] for i in range(0, len(order), size)]
    cost = mean_batch_cost(lengths)
    assert plan_cost(lengths, batches, cost) <= plan_cost(lengths, fixed, cost)


def test_many_inputs_are_planned_in_windows_and_each_is_still_in_one_batch(monkeypatch):
    monkeypatch.setattr(base, "PLAN_WINDOW", 50)
    rng = random.Random(3)
    lengths = [rng.randint(1, 300) for _ in range(400)]
    batches = Lengths().batch_plan(lengths, 16)
    assert sorted(i for b in batches for i in b) == list(range(400))
    assert all(1 <= len(b) <= 16 for b in batches)
    assert [lengths[i] for b in batches for i in b] == sorted(lengths, reverse=True)


def test_inputs_without_lengths_keep_their_order_in_fixed_batches():
    class NoLengths(Lengths):
        def length(self, item):
            return None

    assert NoLengths().batch_plan(list("abcdefg"), 3) == [[0, 1, 2], [3, 4, 5], [6]]


def test_parallel_batches_run_side_by_side_and_results_keep_the_input_order():
    import threading
    from dataclasses import dataclass

    from hub.tasks.results import Result

    @dataclass
    class Ran(Result):
        n: int
        thread: str

    barrier = threading.Barrier(2, timeout=10)  # passes only if two batches run at once

    class Parallel(Lengths):
        parallel_batches = 2

        def run_one_batch(self, chunk, **kwargs):
            barrier.wait()
            return [Ran(n, threading.current_thread().name) for n in chunk]

    lengths = [3, 9, 1, 7, 5, 2, 8, 4]
    results = Parallel().run_batches(lengths, 2, False)
    assert [r.n for r in results] == lengths
    assert {r.thread.split("_")[0] for r in results} == {"hub-batch"}


def test_an_error_in_a_parallel_batch_reaches_the_caller_and_later_batches_are_not_run():
    import time

    ran = []

    class Failing(Lengths):
        parallel_batches = 2

        def run_one_batch(self, chunk, **kwargs):
            if 90 in chunk:
                raise ValueError("bad input 90")
            time.sleep(0.01)
            ran.extend(chunk)
            return list(chunk)

    lengths = list(range(100, 0, -1))  # batches of 2, longest first: the one holding 90 is the sixth of 50
    with pytest.raises(ValueError, match="bad input 90"):
        Failing().run_batches(lengths, 2, False)
    assert len(ran) < 40, "the batches queued behind the error were dropped"
