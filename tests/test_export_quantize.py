"""Int8 quantizers: the agreement measure that picks among them, and NNCF's SmoothQuant strength chosen per model."""
from __future__ import annotations

import re

import numpy as np
import pytest

from hub.export import quantize

pytestmark = pytest.mark.slow  # exports to ONNX Runtime / OpenVINO


def test_min_cosine_pools_a_sequence_output_over_the_tokens_its_mask_keeps():
    rng = np.random.default_rng(0)
    hidden = rng.normal(size=(2, 4, 8))
    mask = np.array([[1, 1, 0, 0], [1, 1, 1, 1]])
    noisy_padding = hidden.copy()
    noisy_padding[0, 2:] = rng.normal(size=(2, 8)) * 100  # what padded positions hold does not count
    feed = {"input_ids": np.zeros((2, 4), dtype="int64"), "attention_mask": mask}
    assert quantize.min_cosine([hidden], [noisy_padding], [feed]) == pytest.approx(1.0)
    flipped = hidden.copy()
    flipped[1] *= -1
    assert quantize.min_cosine([hidden], [flipped], [feed]) == pytest.approx(-1.0)


def test_min_cosine_compares_other_outputs_flattened_per_input_and_takes_the_worst_over_all_feeds():
    a = np.array([[1.0, 0.0], [0.0, 1.0]])
    b = np.array([[1.0, 0.0], [1.0, 1.0]])
    logits = [a, np.array([[1.0, 1.0]])]
    assert quantize.min_cosine(logits, [b, np.array([[2.0, 2.0]])], [{}, {}]) == pytest.approx(2 ** -0.5)
    images = np.ones((1, 2, 3, 3))
    assert quantize.min_cosine([images], [images * 3], [{"pixel_values": images}]) == pytest.approx(1.0)


@pytest.fixture(scope="module")
def tiny_text_ir(openvino_embedder):
    """The tiny embedder's fp32 OpenVINO IR, and calibration feeds made by its own tokenizer."""
    from transformers import AutoTokenizer

    from hub.export.heldout import CALIBRATION_TEXTS

    source, out = openvino_embedder
    tokenizer = AutoTokenizer.from_pretrained(str(source))
    feeds = []
    for start in range(0, len(CALIBRATION_TEXTS), quantize.CALIBRATION_BATCH):
        batch = tokenizer(CALIBRATION_TEXTS[start:start + quantize.CALIBRATION_BATCH], padding=True,
                          return_tensors="np")
        feeds.append({k: batch[k].astype("int64") for k in ("input_ids", "attention_mask", "token_type_ids")})
    return out / "model.xml", feeds


def test_nncf_text_quantization_keeps_the_smooth_quant_strength_that_agrees_best(tiny_text_ir, tmp_path,
                                                                                  monkeypatch):
    source, feeds = tiny_text_ir
    seen = []
    measure = quantize.min_cosine

    def recorded(reference, candidate, feeds):
        seen.append(measure(reference, candidate, feeds))
        return seen[-1]

    monkeypatch.setattr(quantize, "min_cosine", recorded)
    monkeypatch.setattr(quantize, "SMOOTH_QUANT_ALPHAS", (0.95, 0.5, 0.2))
    target = tmp_path / "int8.xml"
    what = quantize.quantize("openvino", "nncf-quantize", source, target, feeds, "text")
    assert len(seen) == 3, "each strength is quantized and measured"
    found = re.search(r"SmoothQuant alpha ([0-9.]+) of 0.95, 0.5, 0.2: calibration cosine ([0-9.]+)", what)
    assert found, what
    best = max(range(3), key=lambda i: seen[i])
    assert float(found.group(1)) == (0.95, 0.5, 0.2)[best]
    assert float(found.group(2)) == pytest.approx(seen[best], abs=1e-4)
    assert quantize.has_int8(target) and "transformer preset" in what


def test_the_kept_int8_graph_is_the_one_that_was_measured(tiny_text_ir, tmp_path):
    """The written graph reproduces the calibration agreement its description reports."""
    import openvino as ov

    source, feeds = tiny_text_ir
    target = tmp_path / "int8.xml"
    what = quantize.quantize("openvino", "nncf-quantize", source, target, feeds, "text")
    reported = float(re.search(r"calibration cosine ([0-9.]+)", what).group(1))
    core = ov.Core()
    reference = quantize._outputs(core, core.read_model(str(source)), feeds)
    written = quantize._outputs(core, core.read_model(str(target)), feeds)
    assert quantize.min_cosine(reference, written, feeds) == pytest.approx(reported, abs=1e-4)


def test_text_int8_keeps_the_matmuls_of_two_activations_and_quantizes_those_with_weights(tiny_text_ir, tmp_path):
    import openvino as ov

    source, feeds = tiny_text_ir
    unweighted = quantize.activation_matmuls(ov.Core().read_model(str(source)))
    assert len(unweighted) == 2 * 2, "scores and scores x values in each of the 2 layers"
    target = tmp_path / "int8.xml"
    quantize.quantize("openvino", "nncf-quantize", source, target, feeds, "text")
    matmuls = {op.get_friendly_name(): op for op in ov.Core().read_model(str(target)).get_ordered_ops()
               if op.get_type_name() == "MatMul"}
    assert set(unweighted) <= set(matmuls)
    assert not any(quantize.fed_by(matmuls[name], "FakeQuantize") for name in unweighted)
    weighted = [op for name, op in matmuls.items() if name not in unweighted]
    assert weighted and all(quantize.fed_by(op, "FakeQuantize") for op in weighted)
