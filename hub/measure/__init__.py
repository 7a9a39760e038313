"""Measuring models on the user's own hardware: ``hub bench`` (:mod:`hub.measure.runner`), its sample
inputs (:mod:`hub.measure.samples`) and peak memory (:mod:`hub.measure.memory`). Cheap to import."""

DEFAULT_BATCH_SIZES = (1, 8, 32)
DEFAULT_REPEATS = 20  # timed single-input calls for the latency figures
DEFAULT_ROUNDS = 3  # timed batches per batch size for the throughput figures
