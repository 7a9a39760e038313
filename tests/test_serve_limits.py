"""hub serve's limits: 413 for bodies, 422 naming the limit for items, texts, image pixels and audio duration."""
import base64
import io

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # serves tiny models

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")

from hub.serve.limits import Limits  # noqa: E402
from plugins.tiny_models import save_ctc, save_timm  # noqa: E402
from serve_server import hub_app, running  # noqa: E402

MINILM = "all-minilm-l6-v2"
LIMITS = Limits(max_body_mb=0.5, max_items=4, max_text_chars=50, max_image_pixels=64 * 64, max_audio_s=1.5)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    timm_dir, ctc_dir = save_timm(root / "tiny-timm"), save_ctc(root / "tiny-ctc")
    with running(hub_app(preload=(MINILM, str(timm_dir), str(ctc_dir)), limits=LIMITS)) as url:
        yield url


def png(width: int, height: int) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 10, 10)).save(out, format="PNG")
    return out.getvalue()


def wav(seconds: float) -> bytes:
    import soundfile as sf

    out = io.BytesIO()
    sf.write(out, np.zeros(int(16000 * seconds), dtype=np.float32), 16000, format="WAV")
    return out.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def error(response, status: int) -> str:
    assert response.status_code == status, response.text
    return response.json()["error"]["message"]


def test_a_body_over_the_limit_is_413_whether_or_not_its_length_is_declared(server):
    big = {"inputs": ["x" * 1000] * 600}
    message = error(httpx.post(f"{server}/v1/run/{MINILM}", json=big), 413)
    assert "max_body_mb=0.5" in message and "--max-body-mb" in message

    def chunks():  # no Content-Length: the limit applies while the body is read
        yield b'{"inputs": ["'
        for _ in range(700):
            yield b"x" * 1000
        yield b'"]}'

    streamed = httpx.post(f"{server}/v1/run/{MINILM}", content=chunks(), headers={"content-type": "application/json"})
    assert "max_body_mb=0.5" in error(streamed, 413)
    upload = httpx.post(f"{server}/v1/audio/transcriptions", files={"file": ("a.wav", wav(20))},
                        data={"model": "tiny-ctc"})
    assert "max_body_mb" in error(upload, 413)
    assert httpx.post(f"{server}/v1/run/{MINILM}", json={"inputs": ["a cat"]}).status_code == 200


def test_too_many_inputs_and_over_long_texts_are_422_naming_the_limit(server):
    message = error(httpx.post(f"{server}/v1/run/{MINILM}", json={"inputs": ["a"] * 5}), 422)
    assert "number of inputs is 5" in message and "max_items=4" in message and "--max-items" in message
    message = error(httpx.post(f"{server}/v1/embeddings", json={"model": MINILM, "input": ["a", "b" * 51]}), 422)
    assert "input 1" in message and "max_text_chars=50" in message
    assert error(httpx.post(f"{server}/v1/embeddings", json={"model": MINILM, "input": ["a"] * 5}), 422)
    assert httpx.post(f"{server}/v1/run/{MINILM}", json={"inputs": ["b" * 50] * 4}).status_code == 200


def test_images_over_the_pixel_limit_are_422_before_decoding(server):
    message = error(httpx.post(f"{server}/v1/run/tiny-timm", json={"inputs": [b64(png(64, 64)), b64(png(65, 64))]}),
                    422)
    assert "image input 1 (65x64)" in message and "max_image_pixels=4096" in message
    files = [("file", ("big.png", png(100, 100), "image/png"))]
    assert "max_image_pixels" in error(httpx.post(f"{server}/v1/run/tiny-timm", files=files), 422)
    assert httpx.post(f"{server}/v1/run/tiny-timm", json={"inputs": [b64(png(64, 64))]}).status_code == 200


def test_audio_over_the_duration_limit_is_422(server):
    files = {"file": ("long.wav", wav(2.0), "audio/wav")}
    message = error(httpx.post(f"{server}/v1/run/tiny-ctc", files=files), 422)
    assert "audio input 0" in message and "max_audio_s=1.5" in message and "--max-audio-s" in message
    message = error(httpx.post(f"{server}/v1/audio/transcriptions", files=files, data={"model": "tiny-ctc"}), 422)
    assert "max_audio_s=1.5" in message
    short = httpx.post(f"{server}/v1/audio/transcriptions", files={"file": ("s.wav", wav(1.0))},
                       data={"model": "tiny-ctc", "response_format": "text"})
    assert short.status_code == 200 and short.headers["content-type"].startswith("text/plain")


def test_limits_are_flags_with_their_defaults_documented(cli_runner):
    from hub.cli import cli

    result = cli_runner.invoke(cli, ["serve", "--help"], terminal_width=200)
    defaults = Limits()
    for name in ("max_batch", "max_batch_tokens", "max_wait_ms", "max_queue", "timeout_s", "max_body_mb",
                 "max_items", "max_text_chars", "max_image_pixels", "max_audio_s"):
        flag = "--" + name.replace("_", "-")
        assert flag in result.output
        assert f"default: {getattr(defaults, name)}" in result.output.split(flag, 1)[1], name
