"""Scale-out with Ray Serve: the same FastAPI app as ``hub serve``, as N replicas behind Ray's HTTP proxy.

    python -m hub.serve.ray --replicas 2 --model all-minilm-l6-v2         # a local Ray instance
    python -m hub.serve.ray --address auto --replicas 8 --host 0.0.0.0 ...  # a running Ray cluster
    serve run hub.serve.ray:build_app replicas=4 model=all-minilm-l6-v2    # Ray's own CLI

Each replica builds the app of :func:`hub.serve.app.create_app` with the same settings, loads the
``--model`` models before Ray routes requests to it, and adds an ``X-Hub-Replica`` header naming itself
to every response. Ray's health check asks the app's own readiness, so a replica whose model worker
died is replaced. Only click is imported at module level; Ray, FastAPI and torch load when a
deployment is built.
"""
from __future__ import annotations

import dataclasses
import os
import socket

import click

from hub.cli_types import FiniteFloat
from hub.serve.command import limit_options, site_options
from hub.serve.limits import Limits

REPLICA_HEADER = b"x-hub-replica"


def replica_name() -> str:
    """This process's name in responses: Ray's replica id when inside a replica, else host:pid."""
    try:
        from ray import serve

        return serve.get_replica_context().replica_id.unique_id
    except Exception:  # not inside a Ray Serve replica
        return f"{socket.gethostname()}:{os.getpid()}"


class ReplicaHeader:
    """ASGI middleware adding ``X-Hub-Replica: <name>`` to every HTTP response."""

    def __init__(self, app, name: str):
        self.app, self.value = app, name.encode("latin-1", "replace")

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_named(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), (REPLICA_HEADER, self.value)]}
            await send(message)

        await self.app(scope, receive, send_named)


def replica_app(settings):
    """The app of ``hub serve`` for ``settings``, naming this replica in every response."""
    from hub.serve.app import create_app

    app = create_app(settings)
    app.add_middleware(ReplicaHeader, name=replica_name())
    return app


class HubReplica:
    """One replica: builds the app, loads the preloaded models, and answers Ray's health checks."""

    def __init__(self, settings):
        self.settings, self.hub_app = settings, None

    async def __serve_build_asgi_app__(self):
        """The app, with the ``--model`` models already loaded (so Ray routes here only once they are)."""
        self.hub_app = replica_app(self.settings)
        await self.hub_app.state.hub.host.load_preloaded()
        return self.hub_app

    def check_health(self) -> None:
        """Raise when the app is not ready (a preload failed, a model worker died); Ray then replaces it."""
        if self.hub_app is None:
            return
        ok, why = self.hub_app.state.hub.host.ready()
        if not ok:
            raise RuntimeError(f"replica {replica_name()} is not ready: {why}")


def deployment(settings, replicas: int = 2, num_cpus: float = 1.0, num_gpus: float = 0.0):
    """A bound Ray Serve application: :class:`HubReplica` with ``replicas`` copies of the app."""
    from ray import serve

    ingress = serve.ingress()(HubReplica)
    options = {"num_cpus": num_cpus, "num_gpus": num_gpus}
    return serve.deployment(ingress, name="hub", num_replicas=replicas, ray_actor_options=options,
                            graceful_shutdown_timeout_s=settings.limits.timeout_s,
                            max_ongoing_requests=max(settings.limits.max_queue, 100)).bind(settings)


def build_app(args: dict):
    """Application builder for ``serve run hub.serve.ray:build_app replicas=N model=ID[,ID] ...``.

    Takes ``replicas``, ``model``, ``allow``, ``cors_origin`` and ``allowed_host`` (comma-separated), ``api_key``,
    ``device``, ``dtype``, ``num_cpus``, ``num_gpus`` and any limit by its name (``max_wait_ms=2``).
    """
    from hub.serve.app import Settings
    from hub.serve.command import sites_for
    from hub.serve.sites import check_origin

    args = dict(args)
    limit_fields = {f.name: f.type for f in dataclasses.fields(Limits)}
    limits = Limits(**{k: _number(args.pop(k)) for k in list(args) if k in limit_fields})
    settings = Settings(limits, _split(args.pop("model", "")), _split(args.pop("allow", "")),
                        args.pop("api_key", None) or os.environ.get("HUB_API_KEY"), args.pop("device", None),
                        args.pop("dtype", None))
    try:
        origins = tuple(check_origin(o) for o in _split(args.pop("cors_origin", "")))
    except ValueError as exc:
        raise click.UsageError(f"cors_origin: {exc}") from None
    settings.sites = sites_for("0.0.0.0", origins, _split(args.pop("allowed_host", "")))
    replicas, cpus, gpus = (int(args.pop("replicas", 2)), float(args.pop("num_cpus", 1)),
                            float(args.pop("num_gpus", 0)))
    if args:
        raise click.UsageError(f"unknown argument(s) {', '.join(sorted(args))} for hub.serve.ray:build_app")
    return deployment(settings, replicas, cpus, gpus)


def _split(value) -> tuple:
    return tuple(v.strip() for v in str(value).split(",") if v.strip()) if value else ()


def _number(value):
    text = str(value)
    return int(text) if text.lstrip("-").isdigit() else float(text)


def start(settings, replicas: int, host: str, port: int, address: str | None = None,
          num_cpus: float = 1.0, num_gpus: float = 0.0, blocking: bool = True) -> None:
    """Connect to (or start) Ray, start Serve's proxy on host:port and run the replicas."""
    import ray
    from ray import serve

    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, ignore_reinit_error=True)
    serve.start(http_options={"host": host, "port": port})
    serve.run(deployment(settings, replicas, num_cpus, num_gpus), name="hub", route_prefix="/", blocking=blocking)


@click.command("hub-serve-ray")
@click.option("--replicas", type=click.IntRange(1), default=2, show_default=True, help="Copies of the app.")
@click.option("--address", help="A running Ray cluster ('auto', or HEAD:6379); default: start a local Ray.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address Ray's HTTP proxy binds.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="Port of the proxy.")
@click.option("--model", "models", multiple=True, metavar="ID", help="A model each replica loads before it serves.")
@click.option("--allow", multiple=True, metavar="PATTERN", help="Catalogue ids that may load on first request.")
@click.option("--api-key", envvar="HUB_API_KEY", help="Require 'Authorization: Bearer KEY' (also: HUB_API_KEY).")
@click.option("--device", help="cpu, cuda, cuda:N or mps (default: the best available on each replica).")
@click.option("--dtype", type=click.Choice(["auto", "fp32", "bf16", "fp16"]), help="Dtype policy (default auto).")
@click.option("--num-cpus", type=FiniteFloat(0), default=1.0, show_default=True, help="CPUs Ray reserves per replica.")
@click.option("--num-gpus", type=FiniteFloat(0), default=0.0, show_default=True, help="GPUs Ray reserves per replica.")
@site_options
@limit_options
def main(replicas, address, host, port, models, allow, api_key, device, dtype, num_cpus, num_gpus, cors_origins,
         allowed_hosts, **limits):
    """Serve the hub with Ray Serve: the app of 'hub serve' as N replicas (needs: pip install 'mmhub[ray]')."""
    from hub.device import requested
    from hub.serve.command import is_loopback, sites_for

    requested(device, dtype)
    try:
        from hub.serve.app import Settings
        import ray  # noqa: F401
    except ImportError as exc:
        raise click.ClickException(f"Ray Serve is not installed ({exc.name} is missing): "
                                   "pip install 'mmhub[ray]'") from None
    if not api_key and not is_loopback(host):
        click.echo(f"Warning: binding {host} without an API key: anyone who can reach this address can use "
                   "the models. Pass --api-key or set HUB_API_KEY.", err=True)
    settings = Settings(Limits(**limits), tuple(models), tuple(allow), api_key or None, device, dtype,
                        sites_for(host, cors_origins, allowed_hosts))
    start(settings, replicas, host, port, address, num_cpus, num_gpus)


if __name__ == "__main__":  # run through the module's own name, so Ray pickles its classes by reference
    import importlib

    importlib.import_module("hub.serve.ray").main()
