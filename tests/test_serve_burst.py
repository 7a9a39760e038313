"""The server under attack: a bounded burst of the largest legal generation requests keeps its memory bounded.

A real ``hub serve`` process serves a tiny model of each generating task (text generation, translation,
summarization, captioning with transformers and open_clip, speech recognition) with small, stated limits.
200 requests, 16 at a time, each the largest the limits allow (``--max-items`` inputs of ``--max-text-chars``
characters, the largest image ``--max-image-pixels`` allows, ``--max-audio-s`` seconds of audio, the most
new tokens the model and ``--max-new-tokens`` allow, 64 beams where transformers searches them), must all be
answered 200 while the server's peak resident memory (``VmHWM``) stays under ``RSS_BUDGET_MB``, the budget
the serving docs state (docs/guide/serving.md, "Limits").
"""
from __future__ import annotations

import base64
import io
import signal
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # serves tiny models

torch = pytest.importorskip("torch")
pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")

import hub  # noqa: E402
from plugins.tiny_generation import MODELS, bounded  # noqa: E402
from test_serve_command import free_port, start, wait_ready  # noqa: E402

RSS_BUDGET_MB = 2560  # the server's peak resident memory under the burst: about 0.9 GiB loaded, 1.9 GiB measured
REQUESTS, AT_ONCE = 200, 16
LIMITS = {"timeout-s": 600, "max-items": 4, "max-new-tokens": 16, "max-text-chars": 512, "max-image-pixels": 512 * 512,
          "max-audio-s": 30}
GENERATING = [name for name, row in MODELS.items() if row[1] != "question-answering"]


def largest_image() -> str:
    from PIL import Image

    side = int(LIMITS["max-image-pixels"] ** 0.5)
    out = io.BytesIO()
    Image.effect_noise((side, side), 64).convert("RGB").save(out, format="PNG")
    return base64.b64encode(out.getvalue()).decode()


def longest_audio() -> str:
    import numpy as np
    import soundfile as sf

    samples = np.arange(16000 * LIMITS["max-audio-s"]) / 16000
    out = io.BytesIO()
    sf.write(out, (0.1 * np.sin(2 * np.pi * 220 * samples)).astype("float32"), 16000, format="WAV")
    return base64.b64encode(out.getvalue()).decode()


def largest_options(name: str, pipe) -> dict:
    """Every new-token option at the most the model and the server allow; 64 beams where beams are searched."""
    bounds = bounded(pipe)
    out = dict(MODELS[name][3])
    for option in pipe.call_options:
        if option.new_tokens:
            out[option.name] = min(bounds[option.name], LIMITS["max-new-tokens"])
    if "num_beams" in bounds:
        out["num_beams"] = bounds["num_beams"]
    if name == "bound-coca":  # open_clip's beam search runs beam by beam in Python: its own 6 beams, 3 groups
        out.update(num_beams=6, num_beam_groups=3, min_seq_len=1)
    return out


@pytest.fixture(scope="module")
def burst(tmp_path_factory):
    root = tmp_path_factory.mktemp("burst")
    torch.manual_seed(0)
    dirs = {name: MODELS[name][0](root / name) for name in GENERATING}
    inputs = {"text": "the city of paris " * (LIMITS["max-text-chars"] // 18), "image": largest_image(),
              "audio": longest_audio()}
    bodies = {}
    for name, directory in dirs.items():
        _, task, kind, _ = MODELS[name]
        pipe = hub.load(str(directory), task=task, device="cpu", dtype="fp32", cache=False)
        given = inputs[kind][:LIMITS["max-text-chars"]] if kind == "text" else inputs[kind]
        bodies[name] = {"inputs": [given] * LIMITS["max-items"], "options": largest_options(name, pipe), "task": task}
    return dirs, bodies


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM in /proc")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the peak RSS from /proc")
def test_a_burst_of_the_largest_legal_requests_stays_under_the_memory_budget(burst):
    dirs, bodies = burst
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    flags = [x for key, value in LIMITS.items() for x in (f"--{key}", str(value))]
    models = [x for d in dirs.values() for x in ("--model", str(d))]
    process = start("--port", str(port), "--device", "cpu", "--dtype", "fp32", *flags, *models,
                    env={"OMP_NUM_THREADS": "1"})
    try:
        wait_ready(url, process, timeout=300)
        ids = [m["id"] for m in httpx.get(f"{url}/v1/models").json()["data"]]
        route = {name: f"{url}/v1/run/{next(i for i in ids if i.endswith(name))}" for name in dirs}
        names = [GENERATING[i % len(GENERATING)] for i in range(REQUESTS)]

        def send(name: str):
            return name, httpx.post(route[name], json=bodies[name], timeout=600)

        with ThreadPoolExecutor(AT_ONCE) as pool:
            answers = list(pool.map(send, names))
        failed = [(name, a.status_code, a.text[:300]) for name, a in answers if a.status_code != 200]
        assert not failed, failed[:3]
        assert all(len(a.json()["results"]) == LIMITS["max-items"] for _, a in answers)
        peak = peak_rss_mb(process.pid)
        assert peak < RSS_BUDGET_MB, f"the server's peak RSS was {peak:.0f} MiB, over the {RSS_BUDGET_MB} MiB budget"
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except Exception:
            process.kill()
        process.communicate()
