"""Runtime sessions that stand in for a torch module's forward: ONNX Runtime and OpenVINO.

A :class:`Runtime` opens the graphs of an exported model directory (``mmhub.yaml`` names them) and
gives each as a :class:`Graph`: called with torch tensors by name, it returns a dict of torch tensors
by output name, on the device the inputs came from. Pipelines wrap these in the shape their torch
module returns, so their own pre- and postprocessing stay as they are.

Threads: ``HUB_RUNTIME_THREADS`` (default: the runtime's own choice). Precision: ONNX Runtime runs
the graph as exported (fp32 or int8); OpenVINO is told ``INFERENCE_PRECISION_HINT`` bf16 when the
device manager computes in bf16 and f32 otherwise (its CPU plugin would pick bf16 by itself on AMX).

OpenVINO batches run over its throughput streams: the graph is compiled with the THROUGHPUT hint (one
stream per core or pair of cores, each with its own threads); a lone batch is cut into one part per
stream, and batches from several threads run one per stream side by side (:class:`StreamedBatches`).
No stream then waits at another's barriers: on 2 cores, MiniLM's graph alone ran 512 texts 11% (bf16)
and 27% (int8) faster as one batch per stream than as one request over both cores. A single input still
runs on a latency-compiled graph (all cores on one request), compiled when first needed. With
``HUB_RUNTIME_THREADS`` set, every batch is one request on that many threads.
"""
from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path

from hub.errors import DependencyMissingError, HubError
from hub.runtimes import RUNTIME_NAMES, RUNTIMES


def runtime_threads() -> int | None:
    """Threads per session from HUB_RUNTIME_THREADS; None lets the runtime decide."""
    value = os.environ.get("HUB_RUNTIME_THREADS", "").strip()
    if not value:
        return None
    if not value.isdigit() or int(value) < 1:
        raise HubError(f"HUB_RUNTIME_THREADS={value!r} is not a thread count; write a positive whole number")
    return int(value)


def runtime_version(backend: str) -> str:
    """``onnxruntime 1.x`` / ``openvino 2026.x``: the library that runs ``backend``, with its version."""
    from importlib.metadata import PackageNotFoundError, version

    library = RUNTIMES[backend].library
    try:
        return f"{library} {version(library)}"
    except PackageNotFoundError:
        raise DependencyMissingError(f"backend '{backend}' needs {library}: pip install 'mmhub[export]' "
                                     f"(or pip install {library})") from None


class Graph:
    """One opened graph: ``graph(**tensors) -> {output name: tensor}``."""

    def __init__(self, run, input_names: list[str], output_names: list[str], thread_safe: bool = False):
        self._run, self.input_names, self.output_names = run, list(input_names), list(output_names)
        self.path: Path | None = None  # the file it was opened from, named when it turns out not to fit
        # an OpenVINO request and its numpy buffers are not for two threads at once, unless ``run`` says so
        self._lock = contextlib.nullcontext() if thread_safe else threading.Lock()

    @property
    def streams(self) -> int:
        """How many batches this graph runs at once (its runtime's throughput streams; 1 for one request)."""
        return getattr(self._run, "streams", 1)

    def __call__(self, **tensors):
        import numpy as np
        import torch

        missing = [name for name in self.input_names if name not in tensors]
        if missing and self.path is not None:
            from hub.export.integrity import AGAIN, BrokenExportError

            raise BrokenExportError(f"the graph '{self.path}' takes the input(s) {', '.join(missing)}, which this "
                                    f"model does not give (given: {', '.join(tensors)}); it is not this export's "
                                    f"graph: {AGAIN}")
        device = next((t.device for t in tensors.values() if isinstance(t, torch.Tensor)), torch.device("cpu"))
        feed = {name: np.ascontiguousarray(_numpy(tensors[name])) for name in self.input_names if name in tensors}
        with self._lock:
            outputs = self._run(feed)
        return {name: torch.from_numpy(np.asarray(value)).to(device) for name, value in zip(self.output_names, outputs)}


def _numpy(value):
    import torch

    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu").contiguous().numpy()
    return value


def open_onnx(path: Path, threads: int | None, dtype: str = "fp32") -> Graph:
    """ONNX Runtime's session on the graph at ``path`` (the graph runs as exported, whatever ``dtype``)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    inputs = [i.name for i in session.get_inputs()]
    outputs = [o.name for o in session.get_outputs()]
    return Graph(lambda feed: session.run(outputs, feed), inputs, outputs)


def open_openvino(path: Path, threads: int | None, dtype: str) -> Graph:
    import openvino as ov

    core = ov.Core()
    model = core.read_model(str(path))
    config = {"INFERENCE_PRECISION_HINT": "bf16" if dtype == "bf16" else "f32"}
    if threads:
        single = core.compile_model(model, "CPU", {**config, "INFERENCE_NUM_THREADS": threads})
        return _openvino_graph(_openvino_request(single), single)
    streamed = core.compile_model(model, "CPU", {**config, "PERFORMANCE_HINT": "THROUGHPUT"})
    run = StreamedBatches(streamed, lambda: _openvino_request(core.compile_model(model, "CPU", config)))
    return _openvino_graph(run, streamed, thread_safe=True)


def _openvino_graph(run, compiled, thread_safe: bool = False) -> Graph:
    """A Graph over ``run``, named by the ports of ``compiled``."""
    return Graph(run, [p.get_any_name() for p in compiled.inputs], [p.get_any_name() for p in compiled.outputs],
                 thread_safe=thread_safe)


def _openvino_request(compiled):
    """``run(feed) -> [outputs]`` on one infer request of ``compiled``."""
    request = compiled.create_infer_request()

    def run(feed):
        result = request.infer(feed)
        return [result[port].copy() for port in compiled.outputs]  # the request reuses its buffers

    return run


class StreamedBatches:
    """Runs batches on a THROUGHPUT-compiled OpenVINO graph, one infer request per stream.

    A call takes its share of the requests (all of them when it is the only call, one each when there are
    as many calls as streams; it waits for one when none is idle), cuts its batch into one part per request
    along axis 0 and runs them at once. So one caller's batch uses every stream, and batches from several
    threads run side by side, one per stream, with no barrier between them. ``single()`` makes
    the runner for a batch of one (a latency-compiled graph), made on first use. A batch whose inputs or
    outputs do not share their first axis runs whole, on one request."""

    def __init__(self, compiled, single):
        import queue

        self.compiled, self._make_single, self._single = compiled, single, None
        self._single_lock = threading.Lock()
        self.streams = max(1, int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")))
        self._idle: queue.Queue = queue.Queue()
        for _ in range(self.streams):
            self._idle.put(compiled.create_infer_request())
        self._callers, self._count_lock = 0, threading.Lock()
        self._per_input = True  # False once an output was found not to be per input: batches then run whole

    def __call__(self, feed: dict) -> list:
        sizes = {value.shape[0] if value.ndim else 0 for value in feed.values()}
        size = sizes.pop() if len(sizes) == 1 else 0  # 0: the inputs share no batch axis
        if size == 1:
            with self._single_lock:
                if self._single is None:
                    self._single = self._make_single()
                return self._single(feed)
        with self._count_lock:
            self._callers += 1
            share = max(1, self.streams // self._callers)
        try:
            return self._run_batch(feed, size, share)
        finally:
            with self._count_lock:
                self._callers -= 1

    def _run_batch(self, feed: dict, size: int, share: int) -> list:
        """``feed`` (of ``size`` inputs) on up to ``share`` requests, cut along axis 0 when it takes several."""
        requests = self._take(min(size, share) if size > 1 and self._per_input else 1)
        try:
            if len(requests) == 1:
                return self._infer([feed], requests)[0]
            bounds = _split_points(size, len(requests))
            parts = self._infer([{k: v[start:stop] for k, v in feed.items()} for start, stop in bounds], requests)
            if any(out.ndim == 0 or out.shape[0] != stop - start for part, (start, stop) in zip(parts, bounds)
                   for out in part):
                self._per_input = False  # an output that is not per input cannot be cut and joined
                return self._infer([feed], requests)[0]
            import numpy as np

            return [np.concatenate(outs, axis=0) for outs in zip(*parts)]
        finally:
            for request in requests:
                self._idle.put(request)

    def _take(self, wanted: int) -> list:
        """One idle request (waiting for it), and more up to ``wanted`` if they are idle now."""
        import queue

        taken = [self._idle.get()]
        while len(taken) < wanted:
            try:
                taken.append(self._idle.get_nowait())
            except queue.Empty:
                break
        return taken

    def _infer(self, feeds: list[dict], requests: list) -> list[list]:
        """The outputs of each feed, each on its own request, run at once."""
        for request, feed in zip(requests, feeds):
            request.start_async(feed)
        outputs = []
        for request in requests[:len(feeds)]:
            request.wait()
            outputs.append([request.get_tensor(port).data.copy() for port in self.compiled.outputs])
        return outputs


def _split_points(size: int, parts: int) -> list[tuple[int, int]]:
    """``size`` rows cut into ``min(parts, size)`` contiguous parts as even as they can be."""
    parts = min(parts, size)
    edges = [round(i * size / parts) for i in range(parts + 1)]
    return list(zip(edges[:-1], edges[1:]))


class Runtime:
    """The graphs of one exported directory, opened on ``backend`` (a runtime of :mod:`hub.runtimes`: its declared
    opener opens each graph) when first used."""

    def __init__(self, directory: Path, backend: str, manifest: dict, dtype: str = "fp32"):
        if backend not in RUNTIMES:
            raise HubError(f"backend '{backend}' is not a runtime; use one of {', '.join(RUNTIME_NAMES)}")
        self.directory, self.backend, self.manifest, self.dtype = Path(directory), backend, manifest, dtype
        self._graphs: dict[str, Graph] = {}
        from hub.export.integrity import check

        check(self.directory, manifest)  # paths inside the directory, files as exported: before anything opens

    @property
    def version(self) -> str:
        return runtime_version(self.backend)

    def graph(self, name: str) -> Graph:
        """The opened graph called ``name`` in the manifest (e.g. ``model``, ``image``, ``text``)."""
        if name not in self._graphs:
            files = self.manifest.get("graphs") or {}
            if name not in files:
                raise HubError(f"the exported model in '{self.directory}' has no graph '{name}' (it has "
                               f"{', '.join(sorted(files)) or 'none'}); export it again with 'hub export'")
            from hub.export.integrity import inside

            path = inside(self.directory, files[name], "graph")
            runtime_version(self.backend)  # a missing library is named before anything is opened
            self._graphs[name] = self._open(path, runtime_threads())
        return self._graphs[name]

    def _open(self, path: Path, threads: int | None) -> Graph:
        """The graph at ``path``; a missing or unreadable one is a BrokenExportError naming it, not the runtime's error."""
        from hub.export.integrity import AGAIN, BrokenExportError

        if not path.is_file():
            raise BrokenExportError(f"'{path}' of the export in '{self.directory}' is missing; {AGAIN}")
        try:
            from hub.refs import resolve_ref

            graph = resolve_ref(RUNTIMES[self.backend].opener)(path, threads, self.dtype)
            if not isinstance(graph, Graph):
                raise HubError(f"backend '{self.backend}' (plugin '{RUNTIMES[self.backend].plugin}') opened '{path}' as "
                               f"a {type(graph).__name__}, not a hub.export.runtime.Graph; report it to the plugin's "
                               "authors")
            graph.path = path
            return graph
        except HubError:
            raise
        except Exception as exc:  # the runtimes raise their own types (InvalidProtobuf, RuntimeError, ...)
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[-1][:200]
            raise BrokenExportError(f"'{path}' of the export in '{self.directory}' cannot be opened by "
                                    f"{RUNTIMES[self.backend].library} ({reason}); it is damaged or not this export's "
                                    f"graph: {AGAIN}") from None

    @property
    def streams(self) -> int:
        """How many batches the graphs opened so far run at once (the fewest of them; 1 when none is open)."""
        return min((graph.streams for graph in self._graphs.values()), default=1)

    def read_json(self, name: str) -> dict:
        """A JSON file the exporter wrote beside the graphs (preprocessing, labels, scales)."""
        import json

        from hub.export.integrity import inside

        path = inside(self.directory, name)
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise HubError(f"the exported model in '{self.directory}' lacks a readable {name} ({exc}); "
                           "export it again with 'hub export'") from None
