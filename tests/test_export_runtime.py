"""OpenVINO graphs run each batch over the runtime's throughput streams, cut along the batch axis, and take
batches from several threads at once."""
from __future__ import annotations

import numpy as np
import pytest

from hub.export import runtime

pytestmark = pytest.mark.slow  # exports to ONNX Runtime / OpenVINO


@pytest.mark.parametrize("size,parts", [(2, 2), (5, 2), (7, 3), (3, 8), (32, 2)])
def test_split_points_cut_a_batch_into_even_contiguous_parts(size, parts):
    bounds = runtime._split_points(size, parts)
    assert len(bounds) == min(size, parts)
    assert bounds[0][0] == 0 and bounds[-1][1] == size
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
    widths = [stop - start for start, stop in bounds]
    assert min(widths) >= 1 and max(widths) - min(widths) <= 1


def _ir(tmp_path, build):
    """An OpenVINO IR file made from ``build(opset, ov)`` -> ov.Model."""
    import openvino as ov
    import openvino.opset13 as ops

    path = tmp_path / "graph.xml"
    ov.save_model(build(ops, ov), str(path))
    return path


def _row_model(ops, ov):
    """Per input row: x @ w + 1, and its row sum (two outputs, both per input)."""
    x = ops.parameter([-1, 6], np.float32, name="x")
    w = ops.constant(np.arange(24, dtype=np.float32).reshape(6, 4) / 10)
    y = ops.add(ops.matmul(x, w, False, False), ops.constant(np.float32(1)))
    total = ops.reduce_sum(y, ops.constant(np.array([1])), keep_dims=False)
    y.get_output_tensor(0).set_names({"y"})
    total.get_output_tensor(0).set_names({"total"})
    return ov.Model([y, total], [x], "rows")


def _pooled_model(ops, ov):
    """A sum over the batch axis: an output that is not per input."""
    x = ops.parameter([-1, 3], np.float32, name="x")
    out = ops.reduce_sum(x, ops.constant(np.array([0])), keep_dims=True)
    out.get_output_tensor(0).set_names({"pooled"})
    return ov.Model([out], [x], "pooled")


@pytest.fixture
def streamed(monkeypatch):
    monkeypatch.delenv("HUB_RUNTIME_THREADS", raising=False)

    def open_graph(path):
        graph = runtime.open_openvino(path, runtime.runtime_threads(), "fp32")
        return graph, graph._run

    return open_graph


def test_a_streamed_batch_gives_what_one_request_gives_for_every_batch_size(tmp_path, streamed, monkeypatch):
    path = _ir(tmp_path, _row_model)
    graph, run = streamed(path)
    assert isinstance(run, runtime.StreamedBatches) and run.streams >= 1
    single = runtime.open_openvino(path, 1, "fp32")
    cut = []
    real = run._infer
    monkeypatch.setattr(run, "_infer", lambda feeds, requests: cut.append(len(feeds)) or real(feeds, requests))
    rng = np.random.default_rng(0)
    for size in (1, 2, 3, 5, 8):
        x = rng.normal(size=(size, 6)).astype(np.float32)
        got, want = graph(x=x), single(x=x)
        assert set(got) == {"y", "total"}
        for name in got:
            assert got[name].shape == want[name].shape
            np.testing.assert_allclose(got[name].numpy(), want[name].numpy(), rtol=1e-6, atol=1e-6)
    assert cut == [min(run.streams, size) for size in (2, 3, 5, 8)], "a batch of one runs on the latency graph"


def test_an_output_that_is_not_per_input_is_computed_on_the_whole_batch(tmp_path):
    import openvino as ov

    compiled = ov.Core().compile_model(str(_ir(tmp_path, _pooled_model)), "CPU", {"NUM_STREAMS": 2})
    run = runtime.StreamedBatches(compiled, single=None)
    assert run.streams == 2
    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    (pooled,) = run({"x": x})
    np.testing.assert_allclose(pooled, x.sum(0, keepdims=True))
    cut = []
    real = run._infer
    run._infer = lambda feeds, requests: cut.append(len(feeds)) or real(feeds, requests)
    (again,) = run({"x": x[:3]})
    np.testing.assert_allclose(again, x[:3].sum(0, keepdims=True))
    assert cut == [1], "later batches of this graph run whole, without being cut first"


def test_with_hub_runtime_threads_every_batch_is_one_request(tmp_path, monkeypatch):
    monkeypatch.setenv("HUB_RUNTIME_THREADS", "1")
    graph = runtime.open_openvino(_ir(tmp_path, _row_model), runtime.runtime_threads(), "fp32")
    assert not isinstance(graph._run, runtime.StreamedBatches)


def test_batches_from_several_threads_share_the_streams_and_each_gets_its_own_outputs(tmp_path, streamed):
    from concurrent.futures import ThreadPoolExecutor

    path = _ir(tmp_path, _row_model)
    graph, run = streamed(path)
    single = runtime.open_openvino(path, 1, "fp32")
    rng = np.random.default_rng(1)
    batches = [rng.normal(size=(int(rng.integers(1, 9)), 6)).astype(np.float32) for _ in range(40)]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda x: graph(x=x)["y"].numpy(), batches))
    for x, y in zip(batches, got):
        np.testing.assert_allclose(y, single(x=x)["y"].numpy(), rtol=1e-6, atol=1e-6)
    assert run._idle.qsize() == run.streams, "every request is given back"


def test_an_exported_embedder_runs_its_batches_one_per_stream_with_the_same_results(openvino_embedder,
                                                                                   monkeypatch):
    import hub

    _, out = openvino_embedder
    texts = ["a", "a much longer text than the others here", "mid length text", "b c", "x" * 40, "y"] * 3
    monkeypatch.setenv("HUB_RUNTIME_THREADS", "1")
    one = hub.load(str(out), device="cpu", dtype="fp32", cache=False)
    monkeypatch.delenv("HUB_RUNTIME_THREADS")
    streamed = hub.load(str(out), device="cpu", dtype="fp32", cache=False)
    assert one.parallel_batches == 1
    assert streamed.parallel_batches == streamed.model.graph.streams >= 1
    want = [r.embedding for r in one(texts, batch_size=2)]
    got = [r.embedding for r in streamed(texts, batch_size=2)]
    np.testing.assert_allclose(np.array(got), np.array(want), rtol=1e-5, atol=1e-6)
