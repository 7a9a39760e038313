"""Deterministic English sentences of mixed length for text benchmarks."""
from __future__ import annotations

import random

SUBJECTS = ["The new phone", "Our small team", "A quiet village", "The weather service", "My neighbour's dog",
            "The city council", "This old laptop", "The football club", "A young pianist", "The research lab"]
VERBS = ["announced", "finished", "struggled with", "celebrated", "described", "rebuilt", "questioned", "explained"]
OBJECTS = ["a long overdue update", "the annual budget", "an unexpected storm", "the final match of the season",
           "a surprisingly difficult concerto", "the results of a two-year study", "its noisy cooling fan"]
TAILS = ["yesterday", "after months of planning", "despite the heavy rain that flooded the main road",
         "while most people were still asleep", "in front of a crowd that had waited for hours",
         "and nobody could quite believe how quickly everything changed once the first reports came in"]


def mixed_texts(n: int, seed: int = 0) -> list[str]:
    """``n`` sentences from 4 to ~120 words, shuffled lengths."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        parts = [f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)} {rng.choice(TAILS)}."
                 for _ in range(rng.choice([1, 1, 1, 2, 2, 3, 5, 8]))]
        text = " ".join(parts)
        if rng.random() < 0.2:
            text = " ".join(text.split()[: rng.randint(3, 6)])
        out.append(text)
    return out
