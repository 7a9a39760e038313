"""Out-of-range media through each shipped plugin's pipeline and ``hub run``: refused before decoding or
inference with one line naming the input (exit 2, no traceback). The checks themselves are unit-tested in
tests/test_inputs.py; here they are proven to sit in front of every image and audio pipeline."""
from __future__ import annotations

import struct
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # tiny backbone models

pytest.importorskip("torch")
pytest.importorskip("timm")
pytest.importorskip("open_clip")

import hub  # noqa: E402
from hub.errors import InputError  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from tiny_models import save_ctc, save_openclip, save_timm  # noqa: E402

RATE = 16000
IMAGE_MODELS = {"timm": ("image-classification", []), "openclip": ("zero-shot-image-classification",
                                                                   ["--label", "cat,dog"])}


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    import torch

    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("models")
    return {"timm": save_timm(root / "timm"), "openclip": save_openclip(root / "openclip"),
            "ctc": save_ctc(root / "ctc")}


def png_header(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b""))


BAD_IMAGE_FILES = {"bomb.png": (png_header(12_000, 12_000), "over the limit"),
                   "line.png": (png_header(40_000, 3), "100 times"),
                   "empty.png": (b"", "not an image"),
                   "text.jpg": (b"hello, I am not a jpeg", "not an image")}
BAD_ARRAYS = {"0x0": (np.zeros((0, 0, 3), np.uint8), "is empty"),
              "NaN": (np.full((8, 8, 3), np.nan, np.float32), "NaN"),
              "inf": (np.full((8, 8), np.inf), "NaN or infinite"),
              "bool": (np.ones((8, 8), bool), "pixel values"),
              "5-D": (np.zeros((1, 1, 8, 8, 3)), "not an image")}


def call(pipeline, plugin, item):
    return pipeline(item, labels=["cat", "dog"]) if plugin == "openclip" else pipeline(item)


def one_line_error(result, *words):
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert all(w in lines[0] for w in words), lines[0]


@pytest.mark.parametrize("plugin", sorted(IMAGE_MODELS))
def test_bad_images_through_pipelines_and_the_cli(models, plugin, tmp_path, cli_runner):
    from hub.cli import cli

    task, extra = IMAGE_MODELS[plugin]
    pipeline = hub.load(str(models[plugin]), task=task, device="cpu", dtype="fp32")
    for name, (data, words) in BAD_IMAGE_FILES.items():
        path = tmp_path / name
        path.write_bytes(data)
        for item in (str(path), data):
            with pytest.raises(InputError, match=words):
                call(pipeline, plugin, [item])
        result = cli_runner.invoke(cli, ["run", str(models[plugin]), str(path), *extra, "--dtype", "fp32"])
        one_line_error(result, name, words)
    for name, (array, words) in BAD_ARRAYS.items():
        with pytest.raises(InputError, match=words):
            call(pipeline, plugin, [array])
    assert len(call(pipeline, plugin, [np.full((40, 40, 3), 0.5, np.float32)])) == 1


BAD_AUDIO = {"1 sample": ((np.zeros(1, np.float32), RATE), "needs at least 25.0 ms"),
             "empty": ((np.zeros(0, np.float32), RATE), "is empty"),
             "3-D": ((np.zeros((2, 2, 4000), np.float32), RATE), "not a waveform"),
             "NaN": ((np.full(RATE, np.nan, np.float32), RATE), "NaN"),
             "rate 0": ((np.zeros(RATE, np.float32), 0), "0 Hz"),
             "rate -8000": ((np.zeros(RATE, np.float32), -8000), "-8000 Hz"),
             "rate 2 MHz": ((np.zeros(RATE, np.float32), 2_000_000), "2000000 Hz"),
             "rate 16000.5": ((np.zeros(RATE, np.float32), 16000.5), "whole number"),
             "no rate": ({"array": np.zeros(RATE, np.float32)}, "needs its sample rate")}


@pytest.mark.parametrize("case", sorted(BAD_AUDIO))
def test_bad_audio_through_the_pipeline(models, case):
    item, words = BAD_AUDIO[case]
    pipeline = hub.load(str(models["ctc"]), task="speech-recognition", device="cpu", dtype="fp32")
    with pytest.raises(InputError, match=words):
        pipeline([item])


@pytest.mark.parametrize("case, samples, rate, words", [
    ("one-sample.wav", np.zeros(1, np.float32), RATE, "needs at least"),
    ("silent-rate.wav", np.zeros(400, np.float32), 200, "200 Hz"),
    ("nan.wav", np.full(RATE, np.nan, np.float32), RATE, "NaN"),
    ("empty.wav", np.zeros(0, np.float32), RATE, "empty"),
])
def test_bad_audio_files_through_the_cli(models, tmp_path, cli_runner, case, samples, rate, words):
    import soundfile as sf

    from hub.cli import cli

    path = tmp_path / case
    sf.write(str(path), samples, rate, subtype="FLOAT")
    result = cli_runner.invoke(cli, ["run", str(models["ctc"]), str(path), "--dtype", "fp32"])
    one_line_error(result, case, words)
