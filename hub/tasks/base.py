"""The pipeline base class every plugin subclasses: preprocess -> forward -> postprocess.

The base does the common work once: single-vs-list inputs, empty input lists, length-sorted
batching with results returned in input order, moving batches to the device, and running
``forward`` under ``torch.inference_mode`` and the device manager's autocast. It also checks the
call options against the pipeline's ``call_options`` (see :mod:`hub.options`) before any input is read.
"""
from __future__ import annotations

import sys
import threading
from abc import ABC, abstractmethod
from typing import Any, Iterable

from hub.options import Option, validate_options
from hub.tasks.results import Result

DEFAULT_BATCH_SIZE = 32


class Pipeline(ABC):
    """A loaded model for one task. Call it on one input or a list of inputs.

    ``call_options`` declares the keywords a call takes; each reaches ``preprocess``, ``forward`` and
    ``postprocess`` checked and converted, with its default when the caller left it out. The default can
    be set per model by a load option (``hub.load(model, top_k=3)``) or the catalogue's ``preprocess``.
    """

    task: str = ""
    default_batch_size: int = DEFAULT_BATCH_SIZE
    call_options: tuple[Option, ...] = ()
    concurrent_batches: bool = False  # True: batches may run in several threads at once (hub serve's workers)

    def __init__(self, spec, model, device_manager, **options):
        self.spec = spec
        self.model = model
        self.device_manager = device_manager
        self.options = options
        self.warnings: list[str] = []

    # -- what subclasses write ---------------------------------------------------------------
    def check_options(self, options: dict) -> dict:
        """Checks of the call options that need the model (e.g. a language it knows); runs before any input."""
        return options

    def prepare(self, item: Any) -> Any:
        """Validate and load one raw input (e.g. read an image file). Errors name the input."""
        return item

    def length(self, item: Any) -> int | None:
        """A size used to sort inputs into batches of similar length; None keeps input order."""
        return None

    @abstractmethod
    def preprocess(self, items: list, **kwargs) -> Any:
        """Turn a batch of prepared inputs into model inputs (tensors on the CPU)."""

    @abstractmethod
    def forward(self, batch: Any, **kwargs) -> Any:
        """Run the model on a batch already on the device (inside inference mode and autocast)."""

    @abstractmethod
    def postprocess(self, outputs: Any, items: list, **kwargs) -> list[Result]:
        """Turn model outputs into one result per item, in the batch's order."""

    # -- what the base does -------------------------------------------------------------------
    def __call__(self, inputs, batch_size: int | None = None, progress: bool = False, **kwargs):
        options = self.resolve_options(kwargs)
        single = not isinstance(inputs, (list, tuple))
        items = [inputs] if single else list(inputs)
        if not items:
            return []
        options = self.check_options(options)
        results = self.run_batches([self.prepare(x) for x in items], batch_size, progress, **options)
        return results[0] if single else results

    def resolve_options(self, given: dict) -> dict:
        """Every declared option's value: the call's, else the load option's, else the catalogue's, else the default."""
        preset = {}
        for source in (self.spec.preprocess or {}, self.options):
            preset.update({o.name: source[o.name] for o in self.call_options if source.get(o.name) is not None})
        given = {**preset, **{k: v for k, v in given.items() if v is not None or k not in preset}}
        return validate_options(self.call_options, given, self.options_owner())

    def options_owner(self) -> str:
        """How option errors name this pipeline: the model id and its task."""
        return f"{self.spec.id} ({self.task})"

    def run_batches(self, prepared: list, batch_size: int | None, progress: bool, **kwargs) -> list[Result]:
        size = max(1, int(batch_size or self.default_batch_size))
        order = self.batch_order(prepared)
        out: list[Result | None] = [None] * len(prepared)
        batches = [order[i:i + size] for i in range(0, len(order), size)]
        for idx in _progress(batches, progress, self.spec.id):
            chunk = [prepared[i] for i in idx]
            for i, result in zip(idx, self.run_one_batch(chunk, **kwargs)):
                out[i] = result
        return out  # type: ignore[return-value]

    def run_one_batch(self, chunk: list, **kwargs) -> list[Result]:
        dm = self.device_manager
        with self.preprocess_lock:  # tokenizers may not be called from two threads at once
            batch = dm.to_device(self.preprocess(chunk, **kwargs))
        with dm.inference():
            outputs = self.forward(batch, **kwargs)
        return self.postprocess(outputs, chunk, **kwargs)

    @property
    def preprocess_lock(self) -> threading.Lock:
        """The lock ``preprocess`` runs under when batches run in several threads."""
        return self.__dict__.setdefault("_preprocess_lock", threading.Lock())

    def batch_order(self, prepared: list) -> list[int]:
        lengths = [self.length(x) for x in prepared]
        if any(n is None for n in lengths):
            return list(range(len(prepared)))
        return sorted(range(len(prepared)), key=lambda i: -lengths[i])

    def warn(self, message: str) -> None:
        """Record a warning once and show it on stderr through the warnings module."""
        import warnings

        if message not in self.warnings:
            self.warnings.append(message)
            warnings.warn(message, HubWarning, stacklevel=3)


class HubWarning(UserWarning):
    """Warnings the hub raises about models and inputs (untrained heads, truncation, ...)."""


Task = Pipeline  # the name the design documents use


def _progress(batches: list, enabled: bool, label: str) -> Iterable:
    if not enabled or len(batches) < 2:
        return batches
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return batches
    return tqdm(batches, desc=label, unit="batch", file=sys.stderr, leave=False)
