"""Cross-request micro-batching: one queue per loaded model and option set, one worker thread per model.

Requests put their (already checked and prepared) items in the queue of their model and option set.
A queue's loop waits for a first item, then collects more until the batch holds ``max_batch`` items
or ``max_batch_tokens`` text tokens, or ``max_wait_ms`` has passed. It then takes up to ``SORT_WINDOW``
batches' worth of waiting items, sorts them by length and cuts them into batches, so that texts of like
length share a batch and little of it is padding (mixed texts padded to the longest of 32 in arrival order
ran a few times slower on the CPU). It runs each batch through
the pipeline's own batch path (``Pipeline.run_batches``, which sorts by length and splits into the
pipeline's batch size) in one of the model's worker threads, off the event loop, and hands each item its
result. A pipeline that can run batches side by side (``concurrent_batches``) gets one worker per CPU
core on the CPU, each with its share of the cores as torch threads: two batches on one thread each keep
two cores busy without the barrier waits of one batch on two threads that also share them with the
server's event loop. Other pipelines, and models on a GPU, get one worker. A request larger than a batch spreads over several batches and is merged back in order.
Items of cancelled requests are skipped; a batch that fails is retried item by item, so one bad
item fails only its own request.
"""
from __future__ import annotations

import asyncio
import json
import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from hub.errors import HubError
from hub.serve.errors import ApiError, from_hub_error
from hub.serve.limits import Limits

SORT_WINDOW = 8  # a round takes up to this many batches of waiting items, sorts them by length and runs them
# A worker on one core runs batches of at most this many items: MiniLM on one thread, texts sorted in windows
# of 128, ran 8.6 ms of CPU per text in batches of 8, 9.0 in 16 and 11.5 in 32 (less padding, warmer caches).
ONE_CORE_BATCH = 16


@dataclass
class Item:
    """One input waiting in a queue: its prepared value, its size in tokens and the future of its result."""

    value: object
    tokens: int
    future: asyncio.Future


@dataclass
class Queue:
    """The waiting items of one option set, and the loop that batches them."""

    options: dict
    items: deque = field(default_factory=deque)
    event: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task | None = None


def options_key(options: dict) -> str:
    """A key that is equal for equal option sets."""
    return json.dumps(options, sort_keys=True, default=repr)


class Batcher:
    """The queues and the worker thread of one loaded model."""

    def __init__(self, name: str, pipeline, limits: Limits, metrics=None):
        self.name, self.pipeline, self.limits, self.metrics = name, pipeline, limits, metrics
        self.workers, threads = worker_plan(pipeline, limits.workers)
        self.batch_items = min(limits.max_batch, ONE_CORE_BATCH) if threads == 1 else limits.max_batch
        self.executor = ThreadPoolExecutor(self.workers, thread_name_prefix=f"hub-model-{name[:20]}",
                                           initializer=set_torch_threads if threads else None,
                                           initargs=(threads,) if threads else ())
        self.slots: asyncio.Semaphore | None = None  # made in the event loop, on first use
        self.in_flight: set[asyncio.Task] = set()
        self.queues: dict[str, Queue] = {}
        self.waiting = 0
        self.running = 0
        self.dead: str | None = None
        self.closed = False

    # -- the request side ---------------------------------------------------------------------
    async def submit(self, values: list, options: dict, tokens: list[int] | None = None) -> list:
        """The results of ``values`` run with ``options``, in order; 429 when the queue is full, 504 on timeout."""
        self.check_alive()
        if self.waiting + len(values) > self.limits.max_queue:
            raise ApiError(429, f"the queue of model '{self.name}' is full ({self.waiting} items waiting, "
                                f"limit max_queue={self.limits.max_queue}, set with --max-queue); retry shortly",
                           None, "queue_full", {"Retry-After": "1"})
        loop = asyncio.get_running_loop()
        queue = self.queue_for(options)
        futures = [loop.create_future() for _ in values]
        sizes = tokens or [1] * len(values)
        queue.items.extend(Item(v, n, f) for v, n, f in zip(values, sizes, futures))
        self.changed(len(values))
        queue.event.set()
        try:
            return await asyncio.wait_for(asyncio.gather(*futures), self.limits.timeout_s)
        except asyncio.TimeoutError:
            raise ApiError(504, f"the request waited more than {self.limits.timeout_s} s for model '{self.name}' "
                                "(limit timeout_s, set with --timeout-s); send fewer inputs or retry later",
                           None, "timeout") from None
        finally:
            for future in futures:
                future.cancel()  # a no-op for answered items; the loop skips the rest

    def idle(self) -> bool:
        """No item waits and no batch runs."""
        return not self.waiting and not self.running

    def check_alive(self) -> None:
        if self.closed:
            raise ApiError(503, f"model '{self.name}' was just unloaded to make room for another; retry and it "
                                "loads again", None, "model_unloaded", {"Retry-After": "1"})
        if self.dead:
            raise ApiError(503, f"the worker of model '{self.name}' has stopped ({self.dead}); restart the server",
                           None, "worker_died")

    def queue_for(self, options: dict) -> Queue:
        key = options_key(options)
        queue = self.queues.get(key)
        if queue is None or queue.task is None or queue.task.done():
            queue = self.queues[key] = Queue(options)
            queue.task = asyncio.get_running_loop().create_task(self.guarded_loop(queue))
        return queue

    def changed(self, delta: int) -> None:
        self.waiting += delta
        if self.metrics is not None:
            self.metrics.queue_depth.labels(self.name).set(self.waiting)

    # -- the worker side ----------------------------------------------------------------------
    async def guarded_loop(self, queue: Queue) -> None:
        """The queue's loop; if it fails, the model's worker is marked dead and its waiting items fail."""
        try:
            await self.loop(queue)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # a bug: say so on every waiting request and on /ready
            self.dead = f"{type(exc).__name__}: {exc}"
            for q in self.queues.values():
                self.fail_all(q, ApiError(503, f"the worker of model '{self.name}' stopped: {self.dead}",
                                          None, "worker_died"))

    def fail_all(self, queue: Queue, error: Exception) -> None:
        while queue.items:
            item = queue.items.popleft()
            self.changed(-1)
            if not item.future.done():
                item.future.set_exception(error)

    async def loop(self, queue: Queue) -> None:
        while True:
            await queue.event.wait()
            await self.free_worker()  # the window is taken when a worker can start on it, so it holds all that waited
            await self.collect(queue)
            window = self.take(queue, SORT_WINDOW)
            if not queue.items:
                queue.event.clear()
            holding = True
            for batch in self.split(window):
                if not holding:
                    await self.free_worker()
                batch = [item for item in batch if not item.future.done()]  # requests that left meanwhile
                holding = not batch
                if batch:
                    self.start(batch, queue.options)
            if holding:
                self.slots.release()

    async def free_worker(self) -> None:
        """Wait until one of the model's workers is free, and take it."""
        if self.slots is None:
            self.slots = asyncio.Semaphore(self.workers)
        await self.slots.acquire()

    def start(self, batch: list[Item], options: dict) -> None:
        """Run ``batch`` on the worker just taken, giving the worker back when it is done."""

        async def run_and_release():
            try:
                await self.run(batch, options)
            finally:
                self.slots.release()

        task = asyncio.get_running_loop().create_task(run_and_release())
        self.in_flight.add(task)
        task.add_done_callback(self.in_flight.discard)

    async def collect(self, queue: Queue) -> None:
        """Wait until the batch is full or ``max_wait_ms`` has passed since this call.

        A model with several workers does not wait: items gather while its workers are busy, and a free
        worker should start at once (the window cost 2-5% of MiniLM's throughput at 1, 8 and 32 clients)."""
        if self.workers > 1:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.limits.max_wait_ms / 1000
        while not self.full(queue) and (left := deadline - loop.time()) > 0:
            queue.event.clear()
            try:
                await asyncio.wait_for(queue.event.wait(), left)
            except asyncio.TimeoutError:
                break

    def full(self, queue: Queue) -> bool:
        count = tokens = 0
        for item in queue.items:
            count, tokens = count + 1, tokens + item.tokens
            if count >= self.limits.max_batch or tokens >= self.limits.max_batch_tokens:
                return True
        return False

    def take(self, queue: Queue, batches: int = 1) -> list[Item]:
        """Live items from the front of the queue, up to ``batches`` times the batch limits (at least one item)."""
        batch, tokens = [], 0
        while queue.items and len(batch) < self.limits.max_batch * batches:
            item = queue.items[0]
            if batch and tokens + item.tokens > self.limits.max_batch_tokens * batches:
                break
            queue.items.popleft()
            self.changed(-1)
            if not item.future.done():  # a cancelled request's items are dropped here
                batch.append(item)
                tokens += item.tokens
        return batch

    def split(self, items: list[Item]) -> list[list[Item]]:
        """``items`` shortest first, cut into batches within both batch limits, so that each pads little."""
        batches, batch, tokens = [], [], 0
        for item in sorted(items, key=lambda i: i.tokens):  # stable: equal sizes keep their order
            if batch and (len(batch) >= self.batch_items or tokens + item.tokens > self.limits.max_batch_tokens):
                batches.append(batch)
                batch, tokens = [], 0
            batch.append(item)
            tokens += item.tokens
        return self.spread(batches + [batch] if batch else batches)

    def spread(self, batches: list[list[Item]]) -> list[list[Item]]:
        """Fewer batches than workers: halve the heaviest until each worker has one (or none can be halved).

        Two half batches on a core each finish sooner than one batch on two cores, so a lone request uses
        every worker."""
        batches = list(batches)
        while len(batches) < self.workers:
            heaviest = max(range(len(batches)), key=lambda i: sum(item.tokens for item in batches[i]), default=None)
            if heaviest is None or len(batches[heaviest]) < 2:
                break
            batch = batches.pop(heaviest)
            half = _balanced_cut(batch)
            batches[heaviest:heaviest] = [batch[:half], batch[half:]]
        return batches

    async def run(self, batch: list[Item], options: dict) -> None:
        """Run one batch in the worker thread; on failure retry item by item so only bad items fail."""
        loop = asyncio.get_running_loop()
        if self.metrics is not None:
            self.metrics.batch_size.labels(self.name).observe(len(batch))
        self.running += 1
        try:
            results = await loop.run_in_executor(self.executor, self.run_sync, [i.value for i in batch], options)
        except Exception:
            results = [await self.run_one(item, options) for item in batch]
        finally:
            self.running -= 1
        for item, result in zip(batch, results):
            if item.future.done():
                continue
            if isinstance(result, BaseException):
                item.future.set_exception(result)
            else:
                item.future.set_result(result)

    async def run_one(self, item: Item, options: dict):
        """The result of one item alone, or the error it raised, as an API error."""
        if item.future.done():
            return None
        loop = asyncio.get_running_loop()
        try:
            return (await loop.run_in_executor(self.executor, self.run_sync, [item.value], options))[0]
        except HubError as exc:
            return from_hub_error(exc)
        except Exception as exc:
            return ApiError(500, f"model '{self.name}' failed on this input: {type(exc).__name__}: {exc}",
                            None, "model_error")

    def run_sync(self, values: list, options: dict) -> list:
        """The pipeline's own batch path (length-sorted, split into its batch size), in the worker thread."""
        return self.pipeline.run_batches(values, None, False, **options)

    async def close(self) -> None:
        """Stop the loops (after in-flight requests have finished) and the worker thread."""
        self.closed = True
        for task in list(self.in_flight):
            task.cancel()
        for queue in self.queues.values():
            if queue.task is not None:
                queue.task.cancel()
            self.fail_all(queue, ApiError(503, "the server is shutting down", None, "shutting_down"))
        self.executor.shutdown(wait=False, cancel_futures=True)


def _balanced_cut(batch: list[Item]) -> int:
    """Where to cut a length-sorted batch so that both sides hold about the same number of tokens."""
    total, running = sum(item.tokens for item in batch), 0
    for i, item in enumerate(batch[:-1]):
        running += item.tokens
        if running * 2 >= total:
            return i + 1
    return len(batch) - 1


def worker_plan(pipeline, asked: int) -> tuple[int, int | None]:
    """How many batches the model runs at once, and the torch threads of each (None: leave torch's own)."""
    concurrent = bool(pipeline.concurrent_batches)
    on_cpu = getattr(pipeline.device_manager, "device", "cpu") == "cpu"  # a test double may have no manager
    if not concurrent:
        return 1, None
    cores = cpu_cores()
    workers = asked or (cores if on_cpu else 1)
    if workers == 1 or not on_cpu:
        return workers, None
    return workers, max(1, cores // workers)


def cpu_cores() -> int:
    """The CPU cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def set_torch_threads(threads: int) -> None:
    """A worker thread's torch thread count (intra-op threads are set per thread)."""
    import torch

    torch.set_num_threads(threads)
