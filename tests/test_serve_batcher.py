"""Cross-request micro-batching: concurrent requests merged into batches, each answered with its own results.

A real uvicorn server with the real MiniLM; clients are httpx. The unit tests drive the Batcher directly
with the loaded MiniLM pipeline and with a small pipeline that fails on chosen inputs.
"""
import asyncio
import random
import re

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # serves a real embedding model under load

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")

import hub  # noqa: E402
from hub.serve.batcher import Batcher  # noqa: E402
from hub.serve.errors import ApiError  # noqa: E402
from hub.serve.limits import Limits  # noqa: E402
from serve_server import hub_app, running  # noqa: E402

MINILM = "all-minilm-l6-v2"
WORDS = "the a cat dog sat on mat under warm sun while birds sang softly in old green trees near river".split()


def texts(n: int, seed: int = 0) -> list[str]:
    """``n`` distinct texts of 1 to 20 words."""
    rng = random.Random(seed)
    return [f"{i} " + " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 20))) for i in range(n)]


POOL = texts(24)


@pytest.fixture(scope="module")
def alone():
    """Each text of the pool embedded on its own (a batch of one)."""
    return {t: np.asarray(hub.run(MINILM, [t], device="cpu", dtype="fp32")[0].embedding) for t in POOL}


def batch_sizes(metrics: str, model: str) -> tuple[float, float]:
    """(batches run, batches of one) from the metrics text."""
    count = float(re.search(rf'hub_batch_size_count{{model="{model}"}} (\S+)', metrics).group(1))
    ones = float(re.search(rf'hub_batch_size_bucket{{le="1.0",model="{model}"}} (\S+)', metrics).group(1))
    return count, ones


async def post_many(url: str, bodies: list[dict], **client_args) -> list:
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=httpx.Limits(max_connections=300),
                                 **client_args) as client:
        return await asyncio.gather(*(client.post(f"/v1/run/{MINILM}", json=b) for b in bodies))


def test_200_concurrent_mixed_requests_are_merged_and_each_answered_with_its_own(alone):
    rng = random.Random(1)
    bodies = [{"inputs": rng.sample(POOL, rng.randint(1, 10))} for _ in range(200)]
    with running(hub_app(preload=(MINILM,), limits=Limits(max_queue=4096))) as url:  # room for every item
        responses = asyncio.run(post_many(url, bodies))
        metrics = httpx.get(url + "/metrics").text
    assert [r.status_code for r in responses] == [200] * 200
    for body, response in zip(bodies, responses):
        results = response.json()["results"]
        assert len(results) == len(body["inputs"])
        for text, result in zip(body["inputs"], results):
            assert np.allclose(result["embedding"], alone[text], atol=1e-5), text
    count, ones = batch_sizes(metrics, MINILM)
    assert count > ones, "no batch held more than one item"
    assert 'hub_requests_total{route="/v1/run/{model_id:path}",status="200"} 200.0' in metrics


def test_a_request_larger_than_a_batch_is_split_and_merged_in_order(alone):
    with running(hub_app(preload=(MINILM,), limits=Limits(max_batch=4, max_batch_tokens=64))) as url:
        response = httpx.post(f"{url}/v1/run/{MINILM}", json={"inputs": POOL[:20]}, timeout=60)
        metrics = httpx.get(url + "/metrics").text
    assert response.status_code == 200
    for text, result in zip(POOL[:20], response.json()["results"]):
        assert np.allclose(result["embedding"], alone[text], atol=1e-5)
    count, _ = batch_sizes(metrics, MINILM)
    assert count >= 20 / 4


def test_a_full_queue_answers_429_and_no_request_is_lost_or_answered_twice(alone):
    limits = Limits(max_queue=12, max_wait_ms=20)
    bodies = [{"inputs": [POOL[i % 24], POOL[(i + 7) % 24], POOL[(i + 19) % 24]]} for i in range(80)]
    with running(hub_app(preload=(MINILM,), limits=limits)) as url:
        responses = asyncio.run(post_many(url, bodies))
        metrics = httpx.get(url + "/metrics").text
    codes = [r.status_code for r in responses]
    assert set(codes) == {200, 429}, codes
    for body, response in zip(bodies, responses):
        if response.status_code == 429:
            assert response.headers["retry-after"] == "1"
            assert "max_queue=12" in response.json()["error"]["message"]
            continue
        for text, result in zip(body["inputs"], response.json()["results"]):
            assert np.allclose(result["embedding"], alone[text], atol=1e-5)
    served = {s: float(n) for s, n in re.findall(r'hub_requests_total{route="/v1/run/{model_id:path}",'
                                                  r'status="(\d+)"} (\S+)', metrics)}
    assert served == {"200": codes.count(200), "429": codes.count(429)}  # each request answered once


def test_clients_that_go_away_mid_batch_leave_the_others_correct(alone):
    rng = random.Random(2)
    bodies = [{"inputs": rng.sample(POOL, rng.randint(1, 12))} for _ in range(60)]

    async def scenario(url):
        async with httpx.AsyncClient(base_url=url, timeout=120) as client:
            tasks = [asyncio.create_task(client.post(f"/v1/run/{MINILM}", json=b)) for b in bodies]
            await asyncio.sleep(0.05)
            for task in tasks[::3]:
                task.cancel()
            done = await asyncio.gather(*tasks, return_exceptions=True)
            after = await client.post(f"/v1/run/{MINILM}", json={"inputs": POOL[:5]})
            return done, after

    with running(hub_app(preload=(MINILM,), limits=Limits(max_wait_ms=20, workers=1))) as url:
        done, after = asyncio.run(scenario(url))
        metrics = httpx.get(url + "/metrics").text
    run = float(re.search(rf'hub_batch_size_sum{{model="{MINILM}"}} (\S+)', metrics).group(1))
    assert run < sum(len(b["inputs"]) for b in bodies) + 5  # the items of clients that left were not run
    kept = [(b, r) for i, (b, r) in enumerate(zip(bodies, done)) if i % 3]
    for body, response in kept:
        assert response.status_code == 200
        for text, result in zip(body["inputs"], response.json()["results"]):
            assert np.allclose(result["embedding"], alone[text], atol=1e-5)
    assert after.status_code == 200 and len(after.json()["results"]) == 5


# -- the Batcher on its own -------------------------------------------------------------------------
def pipeline():
    return hub.load(MINILM, device="cpu", dtype="fp32")


def test_cancelled_submissions_are_skipped_and_the_batch_completes(alone):
    async def scenario():
        batcher = Batcher(MINILM, pipeline(), Limits(max_wait_ms=30, workers=1))
        requests = [POOL[i:i + 3] for i in range(0, 18, 3)]
        tasks = [asyncio.create_task(batcher.submit([pipeline().prepare(t) for t in r], {})) for r in requests]
        await asyncio.sleep(0.01)  # all queued, the batch still collecting
        for task in tasks[1::2]:
            task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        again = await batcher.submit(POOL[20:22], {})
        await batcher.close()
        return requests, results, again, batcher.waiting

    requests, results, again, waiting = asyncio.run(scenario())
    for i, (texts_, result) in enumerate(zip(requests, results)):
        if i % 2:
            assert isinstance(result, asyncio.CancelledError)
            continue
        assert [np.allclose(r.embedding, alone[t], atol=1e-5) for t, r in zip(texts_, result)] == [True] * 3
    assert np.allclose(again[1].embedding, alone[POOL[21]], atol=1e-5)
    assert waiting == 0


class Picky(hub.Pipeline):
    """Doubles numbers; a negative number makes its whole batch fail, as a bad input would."""

    task = "text-embedding"

    def preprocess(self, items, **kwargs):
        return items

    def forward(self, batch, **kwargs):
        if any(x < 0 for x in batch):
            raise ValueError(f"negative input in {batch}")
        return [2 * x for x in batch]

    def postprocess(self, outputs, items, **kwargs):
        from hub.tasks.results import Embedding

        return [Embedding([float(x)]) for x in outputs]


def test_a_failing_batch_is_retried_item_by_item_so_only_the_bad_request_fails():
    from hub.device import get_device_manager

    spec = hub.get_spec(MINILM)
    picky = Picky(spec, None, get_device_manager("cpu", "fp32"))

    async def scenario():
        batcher = Batcher("picky", picky, Limits(max_wait_ms=30))
        good = [asyncio.create_task(batcher.submit([i, i + 1], {})) for i in range(0, 10, 2)]
        bad = asyncio.create_task(batcher.submit([-1], {}))
        results = await asyncio.gather(*good, bad, return_exceptions=True)
        await batcher.close()
        return results

    *good, bad = asyncio.run(scenario())
    assert [[r.embedding[0] for r in pair] for pair in good] == [[2.0 * i, 2.0 * i + 2] for i in range(0, 10, 2)]
    assert isinstance(bad, ApiError) and bad.status == 500 and "negative input" in bad.message


def test_a_request_waiting_past_its_timeout_gets_504():
    async def scenario():
        batcher = Batcher(MINILM, pipeline(), Limits(max_wait_ms=300, timeout_s=0.05, workers=1))
        try:
            await batcher.submit(["a cat"], {})
        finally:
            await batcher.close()

    with pytest.raises(ApiError) as info:
        asyncio.run(scenario())
    assert info.value.status == 504 and "--timeout-s" in info.value.message


def test_waiting_items_are_sorted_by_length_and_cut_within_both_batch_limits():
    from hub.serve.batcher import Item

    batcher = Batcher("sizes", Picky(None, None, None), Limits(max_batch=3, max_batch_tokens=10))
    items = [Item(i, tokens, None) for i, tokens in enumerate([5, 1, 4, 1, 2, 9, 1, 12, 3])]
    batches = batcher.split(items)
    assert sorted(item.value for batch in batches for item in batch) == list(range(9))  # each item once
    flat = [item.tokens for batch in batches for item in batch]
    assert flat == sorted(flat)  # shortest first
    for batch in batches:
        assert len(batch) <= 3
        assert len(batch) == 1 or sum(item.tokens for item in batch) <= 10  # one over-long item runs alone
    assert [[item.value for item in batch] for batch in batches] == [[1, 3, 6], [4, 8, 2], [0], [5], [7]]


class SideBySide(Picky):
    """Batches that only finish when two run at once (a barrier of two threads)."""

    concurrent_batches = True

    def __init__(self, *args):
        super().__init__(*args)
        import threading

        self.barrier = threading.Barrier(2, timeout=20)
        self.threads = set()

    def forward(self, batch, **kwargs):
        import threading

        self.threads.add(threading.get_ident())
        self.barrier.wait()  # raises BrokenBarrierError unless a second batch runs meanwhile
        return super().forward(batch, **kwargs)


@pytest.fixture
def torch_threads_kept():
    """Workers set torch's thread count (partly process-wide); put it back for the tests that follow."""
    import torch

    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_a_model_that_allows_it_runs_batches_side_by_side_on_several_workers(torch_threads_kept):
    from hub.device import get_device_manager

    side = SideBySide(hub.get_spec(MINILM), None, get_device_manager("cpu", "fp32"))

    async def scenario():
        batcher = Batcher("side", side, Limits(max_batch=2, max_wait_ms=50, workers=2))
        got = await asyncio.gather(batcher.submit([1, 2], {}), batcher.submit([3, 4], {}))
        await batcher.close()
        return got

    results = asyncio.run(scenario())
    assert sorted(r.embedding[0] for pair in results for r in pair) == [2.0, 4.0, 6.0, 8.0]
    assert len(side.threads) == 2


@pytest.mark.parametrize("concurrent,device,asked,cores,plan", [
    (False, "cpu", 0, 4, (1, None)),   # a model that cannot: one worker, torch's own threads
    (False, "cpu", 3, 4, (1, None)),
    (True, "cpu", 0, 4, (4, 1)),       # auto: one worker per core, a core each
    (True, "cpu", 2, 4, (2, 2)),
    (True, "cpu", 1, 4, (1, None)),
    (True, "cpu", 8, 2, (8, 1)),
    (True, "cuda", 0, 4, (1, None)),   # a GPU: one worker unless asked
    (True, "cuda", 2, 4, (2, None)),
])
def test_worker_plan_follows_the_model_the_device_and_the_flag(monkeypatch, concurrent, device, asked, cores, plan):
    from types import SimpleNamespace

    from hub.serve import batcher

    monkeypatch.setattr(batcher, "cpu_cores", lambda: cores)
    pipeline = SimpleNamespace(concurrent_batches=concurrent, device_manager=SimpleNamespace(device=device))
    assert batcher.worker_plan(pipeline, asked) == plan


def test_a_lone_batch_is_halved_so_that_every_worker_has_one(torch_threads_kept):
    from hub.device import get_device_manager
    from hub.serve.batcher import Item

    side = SideBySide(hub.get_spec(MINILM), None, get_device_manager("cpu", "fp32"))
    batcher = Batcher("side", side, Limits(workers=2))
    items = [Item(i, tokens, None) for i, tokens in enumerate([1, 1, 2, 3, 5, 8])]
    batches = batcher.split(items)
    assert len(batches) == 2 and [i.value for b in batches for i in b] == list(range(6))
    assert [sum(i.tokens for i in b) for b in batches] == [12, 8]  # cut where half the tokens are reached
    assert batcher.batch_items == 16  # a worker on one core runs small batches
    batcher.executor.shutdown()
