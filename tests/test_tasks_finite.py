"""Numbers that are not numbers: results holding NaN or infinity are an error naming the model, the same through
``hub.run``, ``hub run --json`` (exit 2, never a bare NaN on stdout) and ``hub serve`` (500 naming the model).

The class is tried on many instances: results of every shape built by hand (nested, numpy, torch), and tiny
models of several tasks and plugins whose checkpoints hold NaN or infinity.
"""
from __future__ import annotations

import base64
import math
from pathlib import Path

import pytest

from hub.tasks.finite import NonFiniteOutputError, check_finite
from hub.tasks.results import Classification, Embedding, Generation, LabelScore

pytestmark = pytest.mark.slow  # runs tiny models of every plugin

NAN, INF = float("nan"), float("inf")


# -- the check on results of every shape ------------------------------------------------------------------------
def finite_results():
    import numpy as np

    from hub.tasks.results_audio import Speech

    return [Embedding([0.1, -2.0, 3e30]), Classification([LabelScore("a", 0.5, 0), LabelScore("b", 0.5, 1)]),
            Generation("text", "prompt", [1, 2]), Speech(np.zeros(8, dtype=np.float32), 16000),
            {"nested": [[1.0, 2.0], {"x": 0.0}]}, [], Embedding([])]


def broken_results():
    import numpy as np
    import torch

    from hub.tasks.results_audio import Speech

    return [
        (Embedding([0.1, NAN, 0.3]), "embedding[1]"),
        (Embedding([INF] * 384), "embedding[0]"),
        (Embedding([0.0, -INF]), "embedding[1]"),
        (Classification([LabelScore("a", 0.9, 0), LabelScore("b", NAN, 1)]), "labels[1].score"),
        (Speech(np.array([0.0, np.nan], dtype=np.float32), 16000), "audio[1]"),
        (Speech(np.array([np.inf], dtype=np.float64), 16000), "audio[0]"),
        ({"scores": [[0.1, 0.2], [0.3, NAN]]}, "scores[1][1]"),
        ({"value": np.float32("nan")}, "value"),
        ({"value": torch.tensor([1.0, float("inf")])}, "value[1]"),
        ((1.0, NAN), "[1]"),
        ({"logits": torch.tensor([[0.0, 1.0], [NAN, 2.0]], dtype=torch.bfloat16)}, "logits[2]"),
    ]


def test_finite_results_pass():
    check_finite(finite_results(), "m (task)")


@pytest.mark.parametrize("index", range(11))
def test_every_non_finite_number_is_found_and_named(index):
    result, where = broken_results()[index]
    with pytest.raises(NonFiniteOutputError) as err:
        check_finite([Embedding([1.0]), result], "tiny-model (some-task)")
    message = str(err.value)
    assert "tiny-model (some-task)" in message and "result 1" in message and "not finite" in message
    assert where is None or f"'{where}'" in message, message
    assert "\n" not in message


# -- tiny models with NaN or infinite weights, through the API, the CLI and the server ----------------------------
def poison(directory: Path, value: float) -> Path:
    """Every floating weight of every safetensors file in ``directory`` set to ``value``."""
    from safetensors.torch import load_file, save_file

    for path in directory.glob("*.safetensors"):
        state = load_file(path)
        save_file({k: t.fill_(value) if t.is_floating_point() else t for k, t in state.items()}, path,
                  metadata={"format": "pt"})
    return directory


def build(kind: str, root: Path) -> Path:
    from plugins.tiny_models import save_openclip, save_timm, save_transformers
    from plugins.tiny_qa import save_qa

    return {"bert": save_transformers, "timm": save_timm, "clip": save_openclip,
            "qa": lambda d: save_qa("bert", d)}[kind](root)


# name: (builder, task, value in the weights, kind of input, options, CLI arguments for the options)
CASES = {
    "nan-classifier": ("bert", "text-classification", NAN, "text", {}, []),
    "inf-classifier": ("bert", "text-classification", INF, "text", {}, []),
    "nan-embedder": ("bert", "text-embedding", NAN, "text", {}, []),
    "nan-timm": ("timm", "image-classification", NAN, "image", {}, []),
    "inf-timm-embed": ("timm", "image-embedding", INF, "image", {}, []),
    "nan-clip": ("clip", "zero-shot-image-classification", NAN, "image", {"labels": ["a cat", "a dog"]},
                 ["--label", "a cat,a dog"]),
    "nan-qa": ("qa", "question-answering", NAN, "text", {"question": "who lives in paris?"},
               ["-o", "question=who lives in paris?"]),
}


@pytest.fixture(scope="module")
def broken(tmp_path_factory):
    pytest.importorskip("torch")
    root = tmp_path_factory.mktemp("nonfinite")
    picture = root / "picture.png"
    from PIL import Image

    Image.new("RGB", (40, 40), (200, 30, 30)).save(picture)
    inputs = {"text": "anna lives in paris", "image": str(picture)}
    return {name: (poison(build(kind, root / name), value), task, inputs[given])
            for name, (kind, task, value, given, _, _) in CASES.items()}


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_api_refuses_non_finite_results(broken, name):
    import hub

    directory, task, given = broken[name]
    with pytest.raises(NonFiniteOutputError, match=f"{name}.*not finite"):
        hub.run(str(directory), [given], task=task, device="cpu", dtype="fp32", **CASES[name][4])


@pytest.mark.parametrize("name", sorted(CASES))
def test_hub_run_json_never_prints_nan(broken, name):
    from hub.testing import assert_clean_error, invoke_hub

    directory, task, given = broken[name]
    result = invoke_hub(["run", str(directory), given, "--task", task, "--dtype", "fp32", "--json",
                         *CASES[name][5]])
    assert_clean_error(result, name, "not finite")
    assert "NaN" not in result.stdout and "Infinity" not in result.stdout


def test_the_server_answers_500_naming_the_model(broken):
    httpx = pytest.importorskip("httpx")
    pytest.importorskip("fastapi")
    from serve_server import hub_app, running

    with running(hub_app(preload=tuple(str(d) for d, _, _ in broken.values()))) as url:
        ids = [m["id"] for m in httpx.get(f"{url}/v1/models").json()["data"]]
        for name, (directory, task, given) in broken.items():
            sent = given if CASES[name][3] == "text" else base64.b64encode(Path(given).read_bytes()).decode()
            model = next(i for i in ids if i.endswith(name))
            answer = httpx.post(f"{url}/v1/run/{model}", json={"inputs": [sent], "task": task,
                                                                 "options": CASES[name][4]}, timeout=60)
            assert answer.status_code == 500, (name, answer.text)
            assert name in answer.json()["error"]["message"] and answer.json()["error"]["code"] == "non_finite_output"
            assert "NaN" not in answer.text.replace("NaN or", "")


def test_sum_shortcut_does_not_hide_a_value():
    """An embedding whose finite values are huge still passes; one NaN among them is still found."""
    check_finite([Embedding([1.7e308, 1.7e308, -1e300])], "m")  # the sum overflows; every value is finite
    with pytest.raises(NonFiniteOutputError):
        check_finite([Embedding([1e300, math.nan])], "m")
