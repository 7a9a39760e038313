"""hub.serve.ray: the app of hub serve as two Ray Serve replicas on a local Ray instance (no network).

One module-scoped Ray instance with 2 CPUs, 2 replicas of the real app serving MiniLM; the proxy on a free
loopback port; Ray is shut down at the end whatever happened.
"""
import asyncio
import socket
import subprocess
import sys

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # starts a local Ray instance

pytest.importorskip("fastapi")
ray = pytest.importorskip("ray")
httpx = pytest.importorskip("httpx")

import hub  # noqa: E402

MINILM = "all-minilm-l6-v2"
KEY = "ray-test-key"
TEXTS = ["a cat", "a kitten sleeps on the warm windowsill", "stock markets fell sharply today"]
AUTH = {"Authorization": f"Bearer {KEY}"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def cluster():
    """Two replicas (fp32 on the CPU, MiniLM preloaded, an API key) behind Ray's proxy; yields the URL."""
    from ray import serve

    from hub.serve.app import Settings
    from hub.serve.limits import Limits
    from hub.serve.ray import start

    port = free_port()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        settings = Settings(Limits(), (MINILM,), (), KEY, "cpu", "fp32")
        start(settings, replicas=2, host="127.0.0.1", port=port, num_cpus=1, blocking=False)
        yield f"http://127.0.0.1:{port}"
    finally:
        serve.shutdown()
        ray.shutdown()


async def post_many(url: str, count: int) -> list:
    async with httpx.AsyncClient(base_url=url, headers=AUTH, timeout=120) as client:
        return await asyncio.gather(*[client.post("/v1/embeddings", json={"model": MINILM, "input": TEXTS})
                                      for _ in range(count)])


def test_requests_are_served_by_both_replicas(cluster):
    responses = asyncio.run(post_many(cluster, 16))
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses if r.status_code != 200][:1]
    replicas = {r.headers["x-hub-replica"] for r in responses}
    for _ in range(5):  # Ray's router picks a replica per request; more rounds if one got them all by chance
        if len(replicas) == 2:
            break
        replicas |= {r.headers["x-hub-replica"] for r in asyncio.run(post_many(cluster, 16))}
    assert len(replicas) == 2, replicas


def test_each_replica_answers_like_hub_run(cluster):
    expected = np.array([r.embedding for r in hub.run(MINILM, TEXTS, device="cpu", dtype="fp32")])
    for response in asyncio.run(post_many(cluster, 8)):
        got = np.array([d["embedding"] for d in response.json()["data"]])
        assert np.allclose(got, expected, atol=1e-5), response.headers["x-hub-replica"]


def test_ready_health_and_key_through_the_proxy(cluster):
    ready = httpx.get(f"{cluster}/ready", headers=AUTH)
    assert ready.status_code == 200 and ready.json()["models"] == [MINILM]
    assert httpx.get(f"{cluster}/health").json() == {"status": "ok"}
    refused = httpx.post(f"{cluster}/v1/run/{MINILM}", json={"inputs": ["a cat"]})
    assert refused.status_code == 401 and "API key" in refused.json()["error"]["message"]
    run = httpx.post(f"{cluster}/v1/run/{MINILM}", json={"inputs": ["a cat"]}, headers=AUTH)
    assert run.status_code == 200 and run.json()["task"] == "text-embedding"


def test_errors_keep_the_hub_envelope_through_the_proxy(cluster):
    response = httpx.post(f"{cluster}/v1/embeddings", json={"model": "no-such-model", "input": "x"}, headers=AUTH)
    assert response.status_code == 404
    assert "no-such-model" in response.json()["error"]["message"]
    assert "x-hub-replica" in response.headers


def test_build_app_reads_serve_run_arguments():
    from ray.serve import Application

    from hub.serve.ray import build_app

    app = build_app({"replicas": "3", "model": "all-minilm-l6-v2, other", "max_wait_ms": "2", "dtype": "fp32"})
    assert isinstance(app, Application)
    with pytest.raises(Exception, match="unknown argument.*replica"):
        build_app({"replica": "3"})
    assert isinstance(build_app({"cors_origin": "http://a.example:3000, http://b.example", "allowed_host": "box"}),
                      Application)
    with pytest.raises(Exception, match="cors_origin: 'a.example' is not an origin"):
        build_app({"cors_origin": "a.example"})


def test_importing_the_module_stays_cheap():
    code = ("import sys, hub.serve.ray; heavy = [m for m in ('ray', 'fastapi', 'uvicorn', 'torch') "
            "if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_entry_point_help_names_its_flags():
    out = subprocess.run([sys.executable, "-m", "hub.serve.ray", "--help"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    for flag in ("--replicas", "--address", "--model", "--num-cpus", "--max-wait-ms", "--cors-origin", "--allowed-host"):
        assert flag in out.stdout
