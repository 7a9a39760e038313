"""The server's model host: models the device manager's cache evicts are dropped and load again on request,
and a shutdown while a model loads answers every request waiting for it.

In a module of its own: the model cache is shared by the whole process, and other modules' servers keep
their models in it.
"""
import base64
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # serves tiny models

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")

import hub  # noqa: E402
from plugins.tiny_models import save_timm  # noqa: E402
from serve_server import hub_app, running  # noqa: E402

MINILM = "all-minilm-l6-v2"


@pytest.fixture
def small_cache():
    """An empty CPU model cache with room for MiniLM alone; restored afterwards."""
    from hub.device import MODEL_CACHE, module_bytes

    before = MODEL_CACHE.budget_for("cpu")
    MODEL_CACHE.clear()
    MODEL_CACHE.set_budget("cpu", module_bytes(hub.load(MINILM, device="cpu", dtype="fp32")) + 1000)
    yield MODEL_CACHE
    MODEL_CACHE.set_budget("cpu", before)


def test_models_the_cache_evicts_are_dropped_and_load_again_when_asked_for(small_cache, tmp_path):
    from PIL import Image

    timm_dir = save_timm(tmp_path / "evictable-timm")
    Image.new("RGB", (40, 40), (0, 120, 0)).save(tmp_path / "green.png")
    image = base64.b64encode((tmp_path / "green.png").read_bytes()).decode()
    expected = hub.run(MINILM, ["a cat"], device="cpu", dtype="fp32")[0].embedding
    with running(hub_app(preload=(MINILM, str(timm_dir)))) as url:
        assert httpx.get(url + "/ready").json()["models"] == ["evictable-timm"]  # loading timm evicted MiniLM
        again = httpx.post(f"{url}/v1/run/{MINILM}", json={"inputs": ["a cat"]})
        assert again.status_code == 200 and again.json()["results"][0]["embedding"] == pytest.approx(expected, abs=1e-5)
        assert httpx.get(url + "/ready").json()["models"] == [MINILM]
        metrics = httpx.get(url + "/metrics").text
        assert 'hub_model_loaded{model="evictable-timm"}' not in metrics and "hub_models_loaded 1.0" in metrics
        assert httpx.post(f"{url}/v1/run/evictable-timm", json={"inputs": [image]}).status_code == 200
        assert [k[0] for k in small_cache.keys()] == ["evictable-timm"]


# -- shutdown while a model loads ----------------------------------------------------------------------
SLOW = "slow-loading-model"
WAITING = 30


def install_slow_plugin(site: Path) -> None:
    from hub.testing.isolation import write_dist_info

    shutil.copy(Path(__file__).resolve().parent / "serve_plugins" / "slow_load.py", site / "mmhub_serve_slow_load.py")
    write_dist_info(site, "mmhub-serve-slow-load", "0.1", "slow_load", "mmhub_serve_slow_load")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def raw_post(port: int, path: str, body: bytes, sent: threading.Event, answers: list) -> None:
    """POST over a plain socket: ``sent`` is set once the whole request is out; the status line (or the error)
    is appended to ``answers``."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=120) as sock:
            sock.sendall(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
                         f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
            sent.set()
            received = b""
            while chunk := sock.recv(65536):
                received += chunk
        answers.append(received.decode("latin-1"))
    except OSError as exc:
        sent.set()
        answers.append(f"no response: {exc!r}")


def test_sigterm_while_a_model_loads_answers_every_waiting_request(tmp_path):
    install_slow_plugin(tmp_path)
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "HF_HUB_OFFLINE": "1", "HUB_TEST_LOAD_S": "300"}
    env.pop("HUB_PLUGINS", None)
    from conftest import hub_exe

    process = subprocess.Popen([hub_exe(), "serve", "--port", str(port), "--model", SLOW], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 120
        while True:  # up (/health), still loading (/ready is 503)
            assert process.poll() is None and time.monotonic() < deadline, process.stderr.read()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        assert httpx.get(f"http://127.0.0.1:{port}/ready").json()["error"]["code"] == "not_ready"
        answers, threads = [], []
        for i in range(WAITING):
            sent = threading.Event()
            thread = threading.Thread(target=raw_post, args=(port, f"/v1/run/{SLOW}",
                                                             f'{{"inputs": ["text {i}"]}}'.encode(), sent, answers))
            thread.start()
            threads.append((thread, sent))
        for _, sent in threads:
            assert sent.wait(60)
        time.sleep(2)  # every request read and waiting for the load
        stopped = time.monotonic()
        process.send_signal(signal.SIGTERM)
        for thread, _ in threads:
            thread.join(timeout=60)
        answered = time.monotonic() - stopped
        assert process.wait(timeout=60) == 0  # the load (300 s) does not hold the process up
    finally:
        if process.poll() is None:
            process.kill()
    assert len(answers) == WAITING
    for answer in answers:
        assert answer.startswith("HTTP/1.1 503"), answer
        assert '"code":"shutting_down"' in answer and f"model '{SLOW}' was still loading" in answer, answer
    assert answered < 30
    err = process.stderr.read()
    assert "Traceback" not in err and "Finished server process" in err, err
