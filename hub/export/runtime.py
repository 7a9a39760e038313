"""Runtime sessions that stand in for a torch module's forward: ONNX Runtime and OpenVINO.

A :class:`Runtime` opens the graphs of an exported model directory (``mmhub.yaml`` names them) and
gives each as a :class:`Graph`: called with torch tensors by name, it returns a dict of torch tensors
by output name, on the device the inputs came from. Pipelines wrap these in the shape their torch
module returns, so their own pre- and postprocessing stay as they are.

Threads: ``HUB_RUNTIME_THREADS`` (default: the runtime's own choice). Precision: ONNX Runtime runs
the graph as exported (fp32 or int8); OpenVINO is told ``INFERENCE_PRECISION_HINT`` bf16 when the
device manager computes in bf16 and f32 otherwise (its CPU plugin would pick bf16 by itself on AMX).

OpenVINO batches run over its throughput streams: the graph is compiled with the THROUGHPUT hint (one
stream per core or pair of cores, each with its own threads) and a batch is cut into one part per
stream, run at once. No stream then waits at another's barriers; on 2 cores that is 4-10% more texts/s
for MiniLM in bf16 and about 20% in int8 than one request over both cores. A single input still runs on
a latency-compiled graph (all cores on one request), compiled when first needed. With
``HUB_RUNTIME_THREADS`` set, every batch is one request on that many threads.
"""
from __future__ import annotations

import os
import threading
from pathlib import Path

from hub.errors import DependencyMissingError, HubError

RUNTIMES = ("onnx", "openvino")
LIBRARIES = {"onnx": "onnxruntime", "openvino": "openvino"}


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

    library = LIBRARIES[backend]
    try:
        return f"{library} {version(library)}"
    except PackageNotFoundError:
        raise DependencyMissingError(f"backend '{backend}' needs {library}: pip install 'mmhub[export]' "
                                     f"(or pip install {library})") from None


class Graph:
    """One opened graph: ``graph(**tensors) -> {output name: tensor}``."""

    def __init__(self, run, input_names: list[str], output_names: list[str]):
        self._run, self.input_names, self.output_names = run, list(input_names), list(output_names)
        self._lock = threading.Lock()  # an OpenVINO request and the numpy buffers are not for two threads at once

    def __call__(self, **tensors):
        import numpy as np
        import torch

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


def open_onnx(path: Path, threads: int | None) -> Graph:
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
        return Graph(_openvino_request(single), [p.get_any_name() for p in single.inputs],
                     [p.get_any_name() for p in single.outputs])
    streamed = core.compile_model(model, "CPU", {**config, "PERFORMANCE_HINT": "THROUGHPUT"})
    run = StreamedBatches(streamed, lambda: _openvino_request(core.compile_model(model, "CPU", config)))
    return Graph(run, [p.get_any_name() for p in streamed.inputs], [p.get_any_name() for p in streamed.outputs])


def _openvino_request(compiled):
    """``run(feed) -> [outputs]`` on one infer request of ``compiled``."""
    request = compiled.create_infer_request()

    def run(feed):
        result = request.infer(feed)
        return [result[port].copy() for port in compiled.outputs]  # the request reuses its buffers

    return run


class StreamedBatches:
    """Runs a batch on a THROUGHPUT-compiled OpenVINO graph, cut into one part per stream along axis 0.

    ``single()`` makes the runner for a batch of one (a latency-compiled graph), made on first use. A batch
    whose inputs or outputs do not share their first axis runs whole, on one stream."""

    def __init__(self, compiled, single):
        import openvino as ov

        self.compiled, self._make_single, self._single = compiled, single, None
        self.streams = max(1, int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")))
        self.queue = ov.AsyncInferQueue(compiled, self.streams)
        self.queue.set_callback(self._collect)
        self._parts: dict = {}

    def _collect(self, request, index):
        self._parts[index] = [request.get_tensor(port).data.copy() for port in self.compiled.outputs]

    def __call__(self, feed: dict) -> list:
        sizes = {value.shape[0] if value.ndim else 0 for value in feed.values()}
        size = sizes.pop() if len(sizes) == 1 else 0  # 0: the inputs share no batch axis
        if size == 1:
            if self._single is None:
                self._single = self._make_single()
            return self._single(feed)
        if size < 2 or self.streams == 1:
            return self._run([feed])[0]
        bounds = _split_points(size, self.streams)
        parts = self._run([{k: v[start:stop] for k, v in feed.items()} for start, stop in bounds])
        if any(out.ndim == 0 or out.shape[0] != stop - start for part, (start, stop) in zip(parts, bounds)
               for out in part):
            return self._run([feed])[0]  # an output that is not per input cannot be cut and joined
        import numpy as np

        return [np.concatenate(outs, axis=0) for outs in zip(*parts)]

    def _run(self, feeds: list[dict]) -> list[list]:
        """The outputs of each feed, run at once on the streams."""
        self._parts = {}
        for index, feed in enumerate(feeds):
            self.queue.start_async(feed, index)
        self.queue.wait_all()
        return [self._parts[i] for i in range(len(feeds))]


def _split_points(size: int, parts: int) -> list[tuple[int, int]]:
    """``size`` rows cut into ``min(parts, size)`` contiguous parts as even as they can be."""
    parts = min(parts, size)
    edges = [round(i * size / parts) for i in range(parts + 1)]
    return list(zip(edges[:-1], edges[1:]))


class Runtime:
    """The graphs of one exported directory, opened on ``backend`` (onnx or openvino) when first used."""

    def __init__(self, directory: Path, backend: str, manifest: dict, dtype: str = "fp32"):
        if backend not in RUNTIMES:
            raise HubError(f"backend '{backend}' is not a runtime; use one of {', '.join(RUNTIMES)}")
        self.directory, self.backend, self.manifest, self.dtype = Path(directory), backend, manifest, dtype
        self._graphs: dict[str, Graph] = {}

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
            path = self.directory / files[name]
            runtime_version(self.backend)  # a missing library is named before anything is opened
            threads = runtime_threads()
            self._graphs[name] = (open_onnx(path, threads) if self.backend == "onnx"
                                  else open_openvino(path, threads, self.dtype))
        return self._graphs[name]

    def read_json(self, name: str) -> dict:
        """A JSON file the exporter wrote beside the graphs (preprocessing, labels, scales)."""
        import json

        path = self.directory / name
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise HubError(f"the exported model in '{self.directory}' lacks a readable {name} ({exc}); "
                           "export it again with 'hub export'") from None
