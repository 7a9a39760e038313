"""``hub serve`` as a user runs it: a real process on a free port, SIGTERM, warnings and bad flags."""
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")

from conftest import hub_exe  # noqa: E402

MINILM = "all-minilm-l6-v2"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(*args, env=None):
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
    return subprocess.Popen([hub_exe(), "serve", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=environment)


def wait_ready(url: str, process, headers=None, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[1]
        try:
            if httpx.get(url + "/ready", headers=headers).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError("the server did not become ready")


def wait_queued(url: str, headers: dict, model: str, count: int = 1, timeout: float = 60) -> None:
    """Wait until ``count`` items of ``model`` wait in its queue (by /metrics)."""
    deadline = time.monotonic() + timeout
    while f'hub_queue_depth{{model="{model}"}} {float(count)}' not in httpx.get(url + "/metrics", headers=headers).text:
        assert time.monotonic() < deadline, "the request did not reach the model's queue"
        time.sleep(0.02)


@pytest.mark.slow
def test_serve_preloads_needs_its_key_and_stops_gracefully_on_sigterm():
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = start("--port", str(port), "--model", MINILM, "--max-wait-ms", "2000", "--workers", "1", "--dtype",
                    "fp32", env={"HUB_API_KEY": "k1"})
    try:
        headers = {"Authorization": "Bearer k1"}
        wait_ready(url, process, headers)
        assert httpx.get(url + "/ready").status_code == 401
        assert httpx.get(url + "/health").status_code == 200
        result = {}
        slow = threading.Thread(target=lambda: result.setdefault("r", httpx.post(
            f"{url}/v1/run/{MINILM}", json={"inputs": ["a cat"]}, headers=headers, timeout=60)))
        slow.start()
        wait_queued(url, headers, MINILM)  # in its batch window
        process.send_signal(signal.SIGTERM)
        slow.join()
        assert result["r"].status_code == 200 and len(result["r"].json()["results"][0]["embedding"]) == 384
        assert process.wait(timeout=60) == 0  # a graceful stop on SIGTERM exits 0
    finally:
        if process.poll() is None:
            process.kill()
    err = process.stderr.read()
    assert "Warning" not in err and "Traceback" not in err and "Finished server process" in err


@pytest.mark.slow
def test_binding_beyond_loopback_without_a_key_warns():
    port = free_port()
    process = start("--host", "0.0.0.0", "--port", str(port), env={"HUB_API_KEY": ""})
    try:
        wait_ready(f"http://127.0.0.1:{port}", process)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    err = process.stderr.read()
    assert "Warning: binding 0.0.0.0 without an API key" in err and "--api-key" in err


@pytest.mark.slow
@pytest.mark.parametrize("args, words", [
    (["--port", "99999"], "--port"),
    (["--max-batch", "0"], "--max-batch"),
    (["--timeout-s", "-1"], "--timeout-s"),
    (["--device", "tpu"], "device 'tpu' is not a device"),
    (["--dtype", "int4"], "--dtype"),
    (["--model", "all-minilm-l6"], "unknown model id 'all-minilm-l6'. Did you mean: all-minilm-l6-v2"),
    (["--model", "./no/such/dir"], "no/such/dir"),
    (["--cors-origin", "localhost:3000"], "'localhost:3000' is not an origin"),
    (["--cors-origin", "null"], "give scheme://host[:port]"),
    (["--cors-origin", "http://a.example/page"], "is not an origin"),
    (["--max-json-depth", "0"], "--max-json-depth"),
])
def test_bad_flags_are_one_line_and_exit_2(args, words):
    result = subprocess.run([hub_exe(), "serve", *args], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0] and "Traceback" not in result.stderr


@pytest.mark.slow
def test_hub_list_and_import_hub_stay_free_of_the_server_libraries():
    code = ("import sys, hub, hub.cli, hub.serve, hub.serve.command; "
            "print(sorted(m for m in ('torch', 'fastapi', 'uvicorn', 'starlette') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.slow
def test_cors_origin_and_allowed_host_reach_the_server():
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = start("--port", str(port), "--cors-origin", "http://LOCALHOST:3000/", "--allowed-host", "box.lan",
                    env={"HUB_API_KEY": ""})
    try:
        wait_ready(url, process)
        friend = httpx.get(url + "/v1/tasks", headers={"Origin": "http://localhost:3000"})
        assert friend.status_code == 200 and friend.headers["access-control-allow-origin"] == "http://localhost:3000"
        assert httpx.get(url + "/v1/tasks", headers={"Origin": "http://localhost:3001"}).status_code == 403
        assert httpx.get(url + "/health", headers={"Host": f"box.lan:{port}"}).status_code == 200
        assert httpx.get(url + "/health", headers={"Host": f"evil.example:{port}"}).status_code == 400
        posted = httpx.post(url + "/v1/embeddings", content=b"{}", headers={"Content-Type": "text/plain"})
        assert posted.status_code == 415
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
