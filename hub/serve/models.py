"""The models a server serves: which it may load, loading them lazily, and one batcher per loaded model.

Models named with ``--model`` are loaded at start-up (``/ready`` answers 503 until they are); others that
match an ``--allow`` pattern (default: every installed catalogue model) load on their first request.
Loading runs in a thread under a per-model lock, so requests to models already loaded never wait for it.
When the server shuts down, every request still waiting for a model to load is answered with 503 at once;
the load's thread is a daemon, so it does not hold the process up either.
Models are loaded through the device manager's cache and its memory budget; a model the cache has
evicted is dropped here too and loads again when next asked for.
"""
from __future__ import annotations

import asyncio
import fnmatch
import threading
from dataclasses import dataclass

from hub.errors import HubError, UnknownModelError
from hub.serve.batcher import Batcher
from hub.serve.errors import ApiError, from_hub_error
from hub.serve.limits import Limits

_LOAD_LOCK = threading.Lock()  # the model cache is shared and not thread-safe: one load at a time


@dataclass
class Loaded:
    """A loaded model: its spec, its pipeline and its batcher."""

    spec: object
    pipeline: object
    batcher: Batcher


class ModelHost:
    """Loads models on demand (or at start-up) and keeps a batcher per loaded model."""

    def __init__(self, limits: Limits, preload=(), allow=(), device=None, dtype=None, metrics=None):
        self.limits, self.metrics, self.device, self.dtype = limits, metrics, device, dtype
        self.preload = list(preload)
        self.allow = list(allow) or ["*"]
        self.loaded: dict[tuple, Loaded] = {}
        self.paths: dict[str, str] = {}  # a preloaded model directory, by its id and its path -> the path
        self.locks: dict[tuple, asyncio.Lock] = {}
        self.preloaded = not self.preload
        self.preload_error: str | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.stopping: asyncio.Event | None = None

    # -- start and stop -------------------------------------------------------------------------
    def start(self) -> None:
        """On the server's loop, as it starts: from now on :meth:`stop` can wake requests waiting for a load."""
        self.loop, self.stopping = asyncio.get_running_loop(), asyncio.Event()

    def stop(self) -> None:
        """Answer every request waiting for a model to load with 503, and start no more loads.

        Safe from any thread and from a signal handler."""
        if self.loop is None or self.stopping is None:
            return
        try:
            self.loop.call_soon_threadsafe(self.stopping.set)
        except RuntimeError:  # the loop has closed: nobody is waiting
            pass

    def stopped(self) -> bool:
        return self.stopping is not None and self.stopping.is_set()

    # -- which models ---------------------------------------------------------------------------
    def servable(self) -> list:
        """The specs of catalogue models that may be served (allowed and installed), plus those loaded."""
        from hub.api import list_models

        specs = {s.id: s for s in list_models() if self.allowed(s.id)}
        for entry in self.loaded.values():
            specs.setdefault(entry.spec.id, entry.spec)
        return list(specs.values())

    def allowed(self, model_id: str) -> bool:
        return any(fnmatch.fnmatchcase(model_id, pattern) for pattern in self.allow)

    def spec(self, model_id: str, task: str | None = None):
        """The spec a request names: a preloaded directory or an allowed catalogue model (404 otherwise)."""
        from hub.api import catalog, get_spec

        if model_id in self.paths:
            return get_spec(self.paths[model_id], task)
        try:
            known = catalog().get(model_id)  # an id or an alias, of an installed plugin's model
        except UnknownModelError:
            raise from_hub_error(UnknownModelError(model_id, [s.id for s in self.servable()])) from None
        if not self.allowed(known.id) and not {model_id, known.id} & set(self.preload):
            raise ApiError(404, f"model '{model_id}' is not served here: the server allows only "
                                f"{', '.join(self.allow)} (set with --allow). GET /v1/models lists the models served",
                           "model", "model_not_found")
        return get_spec(known.id, task)

    # -- loading --------------------------------------------------------------------------------
    async def get(self, model_id: str, task: str | None = None) -> Loaded:
        """The loaded model for a request; loads it (in a thread, under its own lock) if needed. A 503 when the
        server starts to shut down while the request waits for the load."""
        try:
            spec = await asyncio.to_thread(self.spec, model_id, task)
        except HubError as exc:
            raise from_hub_error(exc, "model") from None
        entry = self.loaded.get((spec.id, spec.task))
        if entry is not None:
            return entry
        if self.stopping is None:
            return await self.load(spec)
        work = asyncio.ensure_future(self.load(spec))
        stop = asyncio.ensure_future(self.stopping.wait())
        try:
            await asyncio.wait({work, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
        if work.done():
            return work.result()
        work.cancel()
        raise shutting_down(model_id)

    async def load(self, spec) -> Loaded:
        """The loaded model of ``spec``, loaded first unless another request has loaded it meanwhile."""
        key = (spec.id, spec.task)
        lock = self.locks.setdefault(key, asyncio.Lock())
        async with lock:
            if key not in self.loaded:
                if self.stopped():
                    raise shutting_down(spec.id)
                name = self.paths.get(spec.id, spec.id)
                self.add(spec, await in_daemon_thread(self.load_sync, name, spec))
        return self.loaded[key]

    def load_sync(self, name: str, spec):
        """Load through the device manager's cache (one load at a time); errors become API errors."""
        from hub import api

        try:
            with _LOAD_LOCK:
                return api.load(name, device=self.device, dtype=self.dtype, task=spec.task)
        except HubError as exc:
            raise ApiError(503 if _unavailable(exc) else 400, f"model '{spec.id}' cannot be loaded: {exc}",
                           "model", "model_load_failed") from None

    def add(self, spec, pipeline) -> None:
        self.prune_evicted()
        self.loaded[(spec.id, spec.task)] = Loaded(spec, pipeline, Batcher(spec.id, pipeline, self.limits,
                                                                           self.metrics))
        if self.metrics is not None:
            self.metrics.model_loaded(spec.id, True)

    def prune_evicted(self) -> None:
        """Forget models the device manager's cache has evicted (they load again when next asked for)."""
        from hub.device import MODEL_CACHE

        cached = {key[0] for key in MODEL_CACHE.keys()}
        for key, entry in list(self.loaded.items()):
            if entry.spec.id not in cached and entry.batcher.idle():
                del self.loaded[key]
                asyncio.ensure_future(entry.batcher.close())
                if self.metrics is not None:
                    self.metrics.model_loaded(entry.spec.id, False)

    async def load_preloaded(self) -> None:
        """Load every ``--model`` at start-up; ``/ready`` answers 503 until this is done."""
        try:
            for name in self.preload:
                if not await asyncio.to_thread(_in_catalog, name):  # a directory: served under its spec's id
                    spec = await asyncio.to_thread(_spec_for, name)
                    self.paths[spec.id] = self.paths[name] = name
                await self.get(name)
            self.preloaded = True
        except (ApiError, HubError) as exc:
            self.preload_error = getattr(exc, "message", None) or str(exc)

    def ready(self) -> tuple[bool, str]:
        """Whether the server is ready, and why not."""
        if self.preload_error:
            return False, f"a preloaded model failed to load: {self.preload_error}"
        if not self.preloaded:
            return False, "loading the preloaded models"
        dead = [e.spec.id for e in self.loaded.values() if e.batcher.dead]
        if dead:
            return False, f"the worker of {', '.join(dead)} has stopped"
        return True, "ready"

    async def close(self) -> None:
        for entry in self.loaded.values():
            await entry.batcher.close()


def shutting_down(model_id: str) -> ApiError:
    return ApiError(503, f"the server is shutting down and model '{model_id}' was still loading; retry on another "
                         "replica, or once the server is back", "model", "shutting_down")


async def in_daemon_thread(function, *args):
    """``function(*args)`` in a daemon thread (a load nobody waits for any more does not keep the process up)."""
    loop = asyncio.get_running_loop()
    future = loop.create_future()

    def settle(outcome, failed: bool) -> None:
        if not future.done():
            future.set_exception(outcome) if failed else future.set_result(outcome)

    def run() -> None:
        try:
            outcome, failed = function(*args), False
        except BaseException as exc:  # handed to the awaiting request, as asyncio.to_thread does
            outcome, failed = exc, True
        try:
            loop.call_soon_threadsafe(settle, outcome, failed)
        except RuntimeError:  # the loop has closed: the server stopped while this loaded
            pass

    threading.Thread(target=run, name=f"hub-load-{getattr(function, '__name__', 'model')}", daemon=True).start()
    return await future


def _task(task: str) -> str:
    from hub.tasks import resolve_task

    return resolve_task(task)


def _in_catalog(name: str) -> bool:
    """Whether ``name`` is an id or alias of the installed catalogue (else it names a directory)."""
    from hub.api import catalog

    try:
        catalog().get(name)
    except UnknownModelError:
        return False
    return True


def _spec_for(name: str):
    from hub.api import get_spec

    return get_spec(name)


def _unavailable(exc: HubError) -> bool:
    from hub.errors import ModelUnavailableError, PluginNotInstalledError

    return isinstance(exc, (ModelUnavailableError, PluginNotInstalledError))
