"""Peak memory while a model loads and runs: CUDA's own counter on a GPU, the process's RSS on a CPU.

On CUDA the figure is ``torch.cuda.max_memory_allocated`` after the peak counter is reset before
loading: the tensors torch allocated (weights, activations, workspace), not the caching allocator's
reserve or the CUDA context. On a CPU it is the growth of the process's resident set over its size
before loading, sampled every few milliseconds by a thread (``/proc/self/statm``; elsewhere the
process's lifetime peak from ``getrusage``, which can only over-count earlier use as zero growth):
it counts everything the process touched, allocator caches and libraries loaded on the way included.
"""
from __future__ import annotations

import os
import threading

SAMPLE_EVERY_S = 0.005


def _rss_bytes() -> int | None:
    try:
        with open("/proc/self/statm", encoding="ascii") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def _lifetime_peak_bytes() -> int:
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # macOS reports bytes, Linux KiB


class PeakMemory:
    """Use as a context around loading and running; ``peak_bytes`` and ``how`` after it ends."""

    def __init__(self, device: str):
        self.device = device
        self.peak_bytes: int | None = None
        self.how = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._base = 0
        self._top = 0

    @property
    def on_cuda(self) -> bool:
        return self.device.startswith("cuda")

    def __enter__(self) -> "PeakMemory":
        if self.on_cuda:
            import torch

            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._base = torch.cuda.memory_allocated(self.device)
            return self
        rss = _rss_bytes()
        if rss is None:
            self._base = _lifetime_peak_bytes()
            return self
        self._base = self._top = rss
        self._thread = threading.Thread(target=self._sample, name="hub-bench-rss", daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(SAMPLE_EVERY_S):
            self._top = max(self._top, _rss_bytes() or 0)

    def __exit__(self, *exc) -> None:
        if self.on_cuda:
            import torch

            torch.cuda.synchronize(self.device)
            self.peak_bytes = int(torch.cuda.max_memory_allocated(self.device))
            self.how = "CUDA max allocated (torch.cuda.max_memory_allocated)"
            return
        if self._thread is None:
            self.peak_bytes = max(0, _lifetime_peak_bytes() - self._base)
            self.how = "growth of the process's peak RSS (getrusage)"
            return
        self._stop.set()
        self._thread.join()
        self._top = max(self._top, _rss_bytes() or 0)
        self.peak_bytes = max(0, self._top - self._base)
        self.how = "peak RSS growth over the process before loading (sampled)"
