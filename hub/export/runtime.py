"""Runtime sessions that stand in for a torch module's forward: ONNX Runtime and OpenVINO.

A :class:`Runtime` opens the graphs of an exported model directory (``mmhub.yaml`` names them) and
gives each as a :class:`Graph`: called with torch tensors by name, it returns a dict of torch tensors
by output name, on the device the inputs came from. Pipelines wrap these in the shape their torch
module returns, so their own pre- and postprocessing stay as they are.

Threads: ``HUB_RUNTIME_THREADS`` (default: the runtime's own choice). Precision: ONNX Runtime runs
the graph as exported (fp32 or int8); OpenVINO is told ``INFERENCE_PRECISION_HINT`` bf16 when the
device manager computes in bf16 and f32 otherwise (its CPU plugin would pick bf16 by itself on AMX).
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
    config = {"INFERENCE_PRECISION_HINT": "bf16" if dtype == "bf16" else "f32"}
    if threads:
        config["INFERENCE_NUM_THREADS"] = threads
    compiled = core.compile_model(core.read_model(str(path)), "CPU", config)
    request = compiled.create_infer_request()
    inputs = [p.get_any_name() for p in compiled.inputs]
    outputs = [p.get_any_name() for p in compiled.outputs]

    def run(feed):
        result = request.infer(feed)
        return [result[port].copy() for port in compiled.outputs]  # the request reuses its buffers

    return Graph(run, inputs, outputs)


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
