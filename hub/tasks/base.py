"""The pipeline base class every plugin subclasses: preprocess -> forward -> postprocess.

The base does the common work once: single-vs-list inputs, empty input lists, length-sorted
batching with results returned in input order, moving batches to the device, and running
``forward`` under ``torch.inference_mode`` and the device manager's autocast. It also checks the
call options against the pipeline's ``call_options`` and the model's own ``limits()`` (see
:mod:`hub.options`) before any input is read, and refuses results holding NaN or infinity (see
:mod:`hub.tasks.finite`) or, in a call, breaking the result contract (:mod:`hub.tasks.serialisable`; the
server checks what it sends the same way), so the CLI, the server and the SDK agree. The plugin's code runs with stdout sent to stderr (:mod:`hub.stdio`).
"""
from __future__ import annotations

import sys
import threading
from abc import ABC, abstractmethod
from typing import Any, Iterable

from hub.errors import HubError
from hub.options import Option, check_limits, validate_options
from hub.stdio import stdout_to_stderr
from hub.tasks.finite import check_finite
from hub.tasks.results import Result
from hub.tasks.serialisable import check_results

DEFAULT_BATCH_SIZE = 32
BATCH_COST_IN_INPUTS = 1.5  # a batch's fixed cost, counted as the padded length of this many mean-length inputs
PLAN_WINDOW = 4096  # length-sorted inputs planned together (planning costs window x batch size steps)


class Pipeline(ABC):
    """A loaded model for one task. Call it on one input or a list of inputs.

    ``call_options`` declares the keywords a call takes; each reaches ``preprocess``, ``forward`` and
    ``postprocess`` checked and converted, with its default when the caller left it out. The default can
    be set per model by a load option (``hub.load(model, top_k=3)``) or the catalogue's ``preprocess``.
    """

    task: str = ""
    """The task this pipeline serves (a name in the task table); ``hub.load`` refuses a pipeline of another task."""
    default_batch_size: int = DEFAULT_BATCH_SIZE
    """Inputs per batch when the caller gives no ``batch_size``; ``hub serve`` sizes its memory estimate with it."""
    call_options: tuple[Option, ...] = ()
    """The keywords a call takes (see :mod:`hub.options`); load options and the catalogue may preset them."""
    concurrent_batches: bool = False
    """True: batches may run in several threads at once (``hub serve``'s workers, a runtime's streams)."""
    parallel_batches: int = 1
    """Batches of one call run at once (set for exports whose runtime has streams)."""
    pair_batching: bool = False
    """True: ``run_batches`` takes ``(query, passage)`` tuples, so ``POST /v1/rerank`` batches pairs across requests."""
    tokenizer: Any = None
    """The model's text tokenizer, called as ``tokenizer(texts, truncation=...)["input_ids"]``; None without one.
    The server counts usage tokens with it, and ``hub bench`` reads its ``mask_token`` for fill-mask samples."""
    spec: Any
    """The catalogue entry (:class:`hub.spec.ModelSpec`) of the loaded model."""
    model: Any
    """The loaded model object (a torch module, or what a runtime backend put in its place)."""
    device_manager: Any
    """The device manager (:mod:`hub.device`) the batches move to and run under."""
    options: dict
    """The load options given to ``hub.load``; a call option given here becomes that option's default."""
    warnings: list[str]
    """The warnings recorded by :meth:`warn`, each once."""

    def __init__(self, spec, model, device_manager, **options):
        self.spec = spec
        self.model = model
        self.device_manager = device_manager
        self.options = options
        self.warnings = []

    # -- how a plugin builds it ----------------------------------------------------------------
    @classmethod
    def from_spec(cls, spec, device_manager, **options) -> Pipeline:
        """Load the model of ``spec`` for torch and build the pipeline around it (what ``build_pipeline`` calls)."""
        raise HubError(f"pipeline {cls.__qualname__} does not define from_spec, so the hub cannot load model "
                       f"'{getattr(spec, 'id', spec)}' with it; its plugin's load_model must build the pipeline")

    # -- export to a runtime (hub export, --backend onnx|openvino); see hub.export -------------
    EXPORT_MEMBERS = ("export_graphs", "graph_inputs", "export_assets", "from_runtime")
    """The members a pipeline class overrides to be exported and run on a runtime backend."""

    @classmethod
    def export_members_missing(cls) -> list[str]:
        """The export members this class leaves at the base's default; empty when it can be exported."""
        return [name for name in cls.EXPORT_MEMBERS if _unchanged(cls, name)]

    def export_graphs(self, texts: list, images: list) -> list:
        """The torch module(s) ``forward`` runs, as :class:`hub.export.onnx.GraphSpec` objects with example
        inputs made by the pipeline's own preprocessing of ``texts`` or ``images``."""
        raise _no_export(type(self), "export_graphs")

    def graph_inputs(self, name: str, items: list) -> dict:
        """Graph ``name``'s input tensors for raw ``items`` (calibration data for int8)."""
        raise _no_export(type(self), "graph_inputs")

    def export_assets(self, directory) -> None:
        """Write into ``directory`` the files the pre- and postprocessing read (tokenizer, transform, labels)."""
        raise _no_export(type(self), "export_assets")

    @classmethod
    def from_runtime(cls, spec, device_manager, runtime, **options) -> Pipeline:
        """The same pipeline with its forward backed by ``runtime``'s graphs (:class:`hub.export.runtime.Runtime`)."""
        raise _no_export(cls, "from_runtime")

    def embed_texts(self, texts: list, normalize: bool = True) -> list:
        """Text-tower vectors of a model with two towers (CLIP); the export measures each tower with it."""
        raise HubError(f"pipeline {type(self).__qualname__} ({self.task}) does not embed texts")

    def embed_images(self, images: list, batch_size: int | None = None, normalize: bool = True) -> list:
        """Image-tower vectors of a model with two towers (CLIP); the export measures each tower with it."""
        raise HubError(f"pipeline {type(self).__qualname__} ({self.task}) does not embed images")

    # -- what the server and hub bench ask ------------------------------------------------------
    def max_length(self) -> int | None:
        """The longest input the model takes, in its tokenizer's tokens; None when it has no such bound.
        ``POST /v1/embeddings`` refuses a longer text (422) instead of cutting it."""
        return None

    def sample_inputs(self, n: int) -> list | None:
        """``n`` inputs for ``hub bench`` to measure; None: the hub makes them for the task's input kind."""
        return None

    def sample_options(self) -> dict | None:
        """The call options ``hub bench``'s samples need; None: the hub fills undefaulted options itself."""
        return None

    # -- what subclasses write ---------------------------------------------------------------
    def check_options(self, options: dict) -> dict:
        """Checks of the call options that need the model (e.g. a language it knows); runs before any input."""
        return options

    def limits(self) -> dict:
        """The model's own bounds on call options, as {option name: largest value, or (largest value, why)}.

        Asked before any input is read, on every call: a value over its bound is refused in one line
        (the server answers 422). Every option declared ``model_bound`` must have one here."""
        return {}

    def estimate_bytes(self, batch: int, options: dict, input_tokens: int | None = None) -> int | None:
        """About how many bytes, beyond the weights, one batch of ``batch`` inputs (of at most ``input_tokens``
        tokens, when known) with these options takes; None when the pipeline cannot say. ``hub serve`` refuses
        a request over its ``--max-generation-mb`` with this."""
        return None

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
        """The result for one input, or the list of results for a list of inputs, in input order."""
        options = self.resolve_options(kwargs)
        single = not isinstance(inputs, (list, tuple))
        items = [inputs] if single else list(inputs)
        if not items:
            return []
        options = self.check_options(options)
        results = self.run_batches([self.prepare(x) for x in items], batch_size, progress, **options)
        check_results(results, getattr(self.spec, "plugin", "?"), self.spec.id, self.task)
        return results[0] if single else results

    def resolve_options(self, given: dict) -> dict:
        """Every declared option's value: the call's, else the load option's, else the catalogue's, else the default."""
        preset = {}
        for source in (self.spec.preprocess or {}, self.options):
            preset.update({o.name: source[o.name] for o in self.call_options if source.get(o.name) is not None})
        given = {**preset, **{k: v for k, v in given.items() if v is not None or k not in preset}}
        values = validate_options(self.call_options, given, self.options_owner())
        plugin = getattr(self.spec, "plugin", "?")
        check_limits(self.call_options, values, self.limits(), self.options_owner(), plugin)
        return values

    def options_owner(self) -> str:
        """How option errors name this pipeline: the model id and its task."""
        return f"{self.spec.id} ({self.task})"

    def run_batches(self, prepared: list, batch_size: int | None, progress: bool, **kwargs) -> list[Result]:
        """The results of prepared inputs with resolved options, in input order (what ``hub serve``'s batcher runs)."""
        size = max(1, int(batch_size or self.default_batch_size))
        out: list[Result | None] = [None] * len(prepared)
        batches = self.batch_plan(prepared, size)
        with stdout_to_stderr():  # a print() in the plugin's code never corrupts the hub's output (--json)
            for idx, results in zip(_progress(batches, progress, self.spec.id), self._ran(prepared, batches, kwargs)):
                for i, result in zip(idx, results):
                    out[i] = result
        check_finite(out, self.options_owner())
        return out  # type: ignore[return-value]

    def _ran(self, prepared: list, batches: list[list[int]], kwargs: dict) -> Iterable[list[Result]]:
        """The results of each batch, in order; ``parallel_batches`` of them run at once when it is above 1."""
        def run(idx):
            return self.run_one_batch([prepared[i] for i in idx], **kwargs)

        if self.parallel_batches < 2 or len(batches) < 2:
            yield from map(run, batches)
            return
        from concurrent.futures import ThreadPoolExecutor

        pool = ThreadPoolExecutor(self.parallel_batches, thread_name_prefix="hub-batch")
        try:
            yield from pool.map(run, batches)
        finally:  # after an error, the batches not yet started are dropped, not run
            pool.shutdown(wait=True, cancel_futures=True)

    def run_one_batch(self, chunk: list, **kwargs) -> list[Result]:
        """Preprocess, move to the device, forward and postprocess one batch of prepared inputs."""
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
        """The indices of ``prepared``, longest first where every input has a length, else in order."""
        return self._lengths_and_order(prepared)[1]

    def lengths(self, prepared: list) -> list:
        """Each input's ``length``; a pipeline may measure all inputs at once instead (e.g. in tokens)."""
        return [self.length(x) for x in prepared]

    def _lengths_and_order(self, prepared: list) -> tuple[list | None, list[int]]:
        """(each input's length, or None when some input has none; the indices longest first, else in order)."""
        lengths = self.lengths(prepared)
        if any(n is None for n in lengths):
            return None, list(range(len(prepared)))
        return lengths, sorted(range(len(prepared)), key=lambda i: -lengths[i])

    def batch_plan(self, prepared: list, size: int) -> list[list[int]]:
        """The batches to run, as indices into ``prepared``: at most ``size`` inputs each, longest first.

        Where inputs have lengths, the cuts between batches are chosen to run the fewest padded positions,
        counting each batch as ``BATCH_COST_IN_INPUTS`` mean-length inputs more (see
        :func:`least_padding_batches`); without lengths the inputs keep their order in full batches."""
        lengths, order = self._lengths_and_order(prepared)
        if lengths is None:
            return [order[i:i + size] for i in range(0, len(order), size)]
        batch_cost = max(1.0, BATCH_COST_IN_INPUTS * sum(lengths) / len(lengths))
        return [batch for start in range(0, len(order), PLAN_WINDOW)
                for batch in least_padding_batches(order[start:start + PLAN_WINDOW], lengths, size, batch_cost)]

    def warn(self, message: str) -> None:
        """Record a warning once and show it on stderr through the warnings module."""
        import warnings

        if message not in self.warnings:
            self.warnings.append(message)
            warnings.warn(message, HubWarning, stacklevel=3)


class HubWarning(UserWarning):
    """Warnings the hub raises about models and inputs (untrained heads, truncation, ...)."""


Task = Pipeline  # the name the design documents use


def _unchanged(cls: type, name: str) -> bool:
    """Whether ``cls`` leaves member ``name`` as ``Pipeline`` defines it."""
    defined = next(klass.__dict__[name] for klass in cls.__mro__ if name in klass.__dict__)
    return defined is Pipeline.__dict__[name]


def _no_export(cls: type, member: str) -> HubError:
    return HubError(f"pipeline {cls.__qualname__} ({cls.task or 'no task'}) does not support export to a runtime: "
                    f"it does not define {member} (see hub.export); use --backend torch")


def least_padding_batches(order: list[int], lengths: list, size: int, batch_cost: float) -> list[list[int]]:
    """Cut ``order`` (indices, longest first) into runs of at most ``size`` that minimise the padded length
    (each run's count x its longest length) plus ``batch_cost`` per run: a shortest path over cut points.

    Fixed batches of 32 pad 512 mixed-length texts to 11% more tokens than they hold; these cuts run
    MiniLM on OpenVINO about 7% faster than those batches."""
    n = len(order)
    best = [0.0] + [float("inf")] * n  # best[j]: the cheapest plan for the first j inputs
    cut = [0] * (n + 1)  # cut[j]: where the last run of that plan starts
    for end in range(1, n + 1):
        for start in range(max(0, end - size), end):
            cost = best[start] + (end - start) * lengths[order[start]] + batch_cost
            if cost <= best[end]:  # on a tie the later cut: full batches first, the remainder last
                best[end], cut[end] = cost, start
    batches, end = [], n
    while end > 0:
        batches.append(order[cut[end]:end])
        end = cut[end]
    return batches[::-1]


def _progress(batches: list, enabled: bool, label: str) -> Iterable:
    if not enabled or len(batches) < 2:
        return batches
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return batches
    return tqdm(batches, desc=label, unit="batch", file=sys.stderr, leave=False)
