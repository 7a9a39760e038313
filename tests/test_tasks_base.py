"""The base pipeline's batch plan: longest first, at most the batch size, and cut where lengths halve."""
from __future__ import annotations

import random
from types import SimpleNamespace

import pytest

from hub.tasks.base import MIN_LENGTH_CUT, Pipeline


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


def test_inputs_of_similar_length_fill_whole_batches_longest_first():
    assert plan([5, 9, 7, 8, 6, 9, 5], 3) == [[9, 9, 8], [7, 6, 5], [5]]


def test_a_batch_ends_before_an_input_under_half_its_longest():
    lengths = [170, 150, 120, 100, 90, 40, 30, 30, 25, 10, 9, 8, 8, 7]
    assert plan(lengths, 32) == [[170, 150, 120, 100, 90], [40, 30, 30, 25], [10, 9, 8, 8, 7]]


def test_a_batch_is_cut_for_length_only_once_it_holds_the_minimum():
    lengths = [100, 10, 9, 8, 7, 6, 3]
    assert MIN_LENGTH_CUT == 4
    assert plan(lengths, 32) == [[100, 10, 9, 8], [7, 6, 3]]


@pytest.mark.parametrize("seed", range(20))
def test_every_input_is_in_exactly_one_batch_and_no_batch_pads_more_than_it_must(seed):
    rng = random.Random(seed)
    lengths = [rng.choice([rng.randint(1, 20), rng.randint(20, 400)]) for _ in range(rng.randint(1, 200))]
    size = rng.choice([1, 2, 8, 32])
    batches = Lengths().batch_plan(lengths, size)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    flat = [lengths[i] for b in batches for i in b]
    assert flat == sorted(lengths, reverse=True)
    for batch in batches:
        assert 1 <= len(batch) <= size
        short = [lengths[i] for i in batch[MIN_LENGTH_CUT:]]
        assert all(2 * n >= lengths[batch[0]] for n in short), "past the minimum, nothing under half the longest"
    halvings = sum(1 for a, b in zip(batches, batches[1:]) if len(a) < size)
    longest, shortest = max(lengths), min(lengths)
    assert halvings <= max(0, (longest // max(shortest, 1)).bit_length()), "one extra batch per halving at most"


def test_inputs_without_lengths_keep_their_order_in_fixed_batches():
    class NoLengths(Lengths):
        def length(self, item):
            return None

    assert NoLengths().batch_plan(list("abcdefg"), 3) == [[0, 1, 2], [3, 4, 5], [6]]


def test_parallel_batches_run_side_by_side_and_results_keep_the_input_order():
    import threading

    barrier = threading.Barrier(2, timeout=10)  # passes only if two batches run at once

    class Parallel(Lengths):
        parallel_batches = 2

        def run_one_batch(self, chunk, **kwargs):
            barrier.wait()
            return [(n, threading.current_thread().name) for n in chunk]

    lengths = [3, 9, 1, 7, 5, 2, 8, 4]
    results = Parallel().run_batches(lengths, 2, False)
    assert [n for n, _ in results] == lengths
    assert {name.split("_")[0] for _, name in results} == {"hub-batch"}


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
