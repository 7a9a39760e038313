"""``hub serve``: the click command. Only click is imported here, so the CLI stays fast to start."""
from __future__ import annotations

import ipaddress
import signal
import socket

import click

from hub.cli_types import FiniteFloat, LazyChoice
from hub.runtimes import BACKENDS
from hub.serve.limits import HELP, Limits, flag, limit_names

LOOPBACK_NAMES = ("localhost",)


def check_origins(ctx, param, values) -> tuple:
    from hub.serve.sites import check_origin

    try:
        return tuple(check_origin(v) for v in values)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def site_options(command):
    """--cors-origin and --allowed-host: the web pages and host names the server answers besides its own."""
    command = click.option("--allowed-host", "allowed_hosts", multiple=True, metavar="NAME",
                           help="A host name the server answers to besides its address, IP addresses and localhost "
                                "(repeatable; '*' for any). Other Host headers get 400 (DNS rebinding).")(command)
    return click.option("--cors-origin", "cors_origins", multiple=True, metavar="ORIGIN", callback=check_origins,
                        help="A web page origin (scheme://host[:port]) allowed to call the API, with CORS answers "
                             "(repeatable). Requests from other pages get 403.")(command)


def sites_for(host: str, cors_origins=(), allowed_hosts=()):
    """The Host and Origin allow-lists of a server bound to ``host``: beyond loopback, the machine's names too."""
    from hub.serve.sites import Sites

    names = tuple(allowed_hosts)
    if not is_loopback(host):
        names += tuple({socket.gethostname(), socket.getfqdn()})
    return Sites(tuple(cors_origins), names, host)


def limit_options(command):
    """One flag per limit, with its documented default."""
    defaults = Limits()
    for name in reversed(limit_names()):
        value = getattr(defaults, name)
        kind = click.IntRange(0 if name == "workers" else 1) if isinstance(value, int) \
            else FiniteFloat(0, min_open=name != "max_wait_ms")
        command = click.option(flag(name), name, type=kind, default=value, show_default=True, help=HELP[name])(command)
    return command


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind (loopback by default).")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="Port to bind.")
@click.option("--model", "models", multiple=True, metavar="ID",
              help="A model to load before the server reports ready (repeatable; a catalogue id or a directory).")
@click.option("--allow", multiple=True, metavar="PATTERN",
              help="Catalogue ids that may be loaded on first request (fnmatch, repeatable; default: all installed).")
@click.option("--api-key", envvar="HUB_API_KEY", help="Require 'Authorization: Bearer KEY' (also: HUB_API_KEY).")
@click.option("--device", help="cpu, cuda, cuda:N or mps (default: the best available).")
@click.option("--dtype", type=click.Choice(["auto", "fp32", "bf16", "fp16"]), help="Dtype policy (default auto).")
@click.option("--backend", type=LazyChoice(BACKENDS),
              help="What runs the forward pass (sets HUB_BACKEND for the server; default auto).")
@site_options
@limit_options
def serve_cmd(host, port, models, allow, api_key, device, dtype, backend, cors_origins, allowed_hosts, **limits):
    """Serve models over HTTP: native routes for every task, OpenAI-compatible embeddings and
    transcriptions, and a page at / (needs the serve extra: pip install 'mmhub[serve]')."""
    from hub.api import get_spec
    from hub.device import requested

    requested(device, dtype)  # a bad --device / HUB_DEVICE fails before anything starts
    if backend:
        import os

        os.environ["HUB_BACKEND"] = backend  # every model the server loads goes through the device manager
    for model in models:  # an unknown id or unusable directory fails before anything starts
        get_spec(model)
    if not api_key and not is_loopback(host):
        click.echo(f"Warning: binding {host} without an API key: anyone who can reach this address can use "
                   "the models. Pass --api-key or set HUB_API_KEY.", err=True)
    serve(host, port, models, allow, api_key or None, device, dtype, Limits(**limits),
          sites_for(host, cors_origins, allowed_hosts))


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(host, port, models, allow, api_key, device, dtype, limits, sites=None) -> None:
    """Build the app and run it under uvicorn until interrupted; shutdown lets requests in flight finish."""
    from hub.errors import DependencyMissingError

    try:
        import uvicorn

        from hub.serve.app import Settings, create_app
    except ImportError as exc:
        raise DependencyMissingError(f"hub serve needs the serve extra ({exc.name} is missing): "
                                     "pip install 'mmhub[serve]'") from None
    settings = Settings(limits, tuple(models), tuple(allow), api_key, device, dtype, sites or sites_for(host))
    app = create_app(settings)
    server = draining_server(uvicorn, uvicorn.Config(app, host=host, port=port, log_level="info",
                                                     timeout_graceful_shutdown=limits.timeout_s))
    server.run()


def draining_server(uvicorn, config):
    """A uvicorn server that, when asked to stop, first answers new requests with 503."""

    class DrainingServer(uvicorn.Server):
        def handle_exit(self, sig, frame):
            config.app.state.hub.begin_shutdown()
            super().handle_exit(sig, frame)
            captured = getattr(self, "_captured_signals", None)
            if sig == signal.SIGTERM and captured and captured[-1] == sig:
                captured.pop()  # a graceful stop asked for by SIGTERM exits 0, not by re-raising the signal

    return DrainingServer(config)
