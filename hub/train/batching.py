"""Which examples go into which batch, in which order: a pure function of (seed, epoch, rank).

Each epoch the examples are shuffled with ``DistributedSampler``'s seeded permutation (seed +
epoch; with several ranks each rank takes its share, padded so every rank runs as many
batches). With length grouping the shuffled indices are cut into mega-batches of
``MEGA_BATCHES`` batches, each sorted by length (longest first) and cut into batches, and the
batches are shuffled again with the same seed: batches hold examples of similar length, so
padding shrinks, while the order stays random. Because the order depends only on the seed and
the epoch, a resumed run skips the batches it already did and sees the same data as an
uninterrupted one.
"""
from __future__ import annotations

import random

MEGA_BATCHES = 50


def epoch_indices(n: int, seed: int, epoch: int, rank: int = 0, world_size: int = 1,
                  shuffle: bool = True) -> list[int]:
    """This rank's example indices for ``epoch`` (DistributedSampler semantics)."""
    from torch.utils.data import DistributedSampler

    sampler = DistributedSampler(range(n), num_replicas=world_size, rank=rank, shuffle=shuffle,
                                 seed=seed, drop_last=False)
    sampler.set_epoch(epoch)
    return list(sampler)


def epoch_batches(n: int, batch_size: int, seed: int, epoch: int, lengths: list[int] | None = None,
                  rank: int = 0, world_size: int = 1, shuffle: bool = True) -> list[list[int]]:
    """The batches (lists of example indices) this rank runs in ``epoch``."""
    indices = epoch_indices(n, seed, epoch, rank, world_size, shuffle)
    if lengths is None or not shuffle:
        return [indices[i:i + batch_size] for i in range(0, len(indices), batch_size)]
    return grouped_batches(indices, lengths, batch_size, random.Random(seed * 100003 + epoch))


def grouped_batches(indices: list[int], lengths: list[int], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Length-grouped batches: sort within mega-batches, cut, then shuffle the batches."""
    mega = batch_size * MEGA_BATCHES
    batches = []
    for start in range(0, len(indices), mega):
        chunk = sorted(indices[start:start + mega], key=lambda i: -lengths[i])
        batches.extend(chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size))
    # keep the one short tail batch last so every other batch is full
    full = [b for b in batches if len(b) == batch_size]
    tail = [b for b in batches if len(b) != batch_size]
    rng.shuffle(full)
    return full + tail


def eval_batches(lengths: list[int] | None, n: int, batch_size: int) -> list[list[int]]:
    """Evaluation batches: sorted by length when known (less padding), order irrelevant."""
    order = list(range(n)) if lengths is None else sorted(range(n), key=lambda i: -lengths[i])
    return [order[i:i + batch_size] for i in range(0, n, batch_size)]
