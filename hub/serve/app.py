"""The FastAPI app of ``hub serve``: settings, start-up and shutdown, error envelopes and the ops routes.

Routes: ``/health``, ``/ready``, ``/metrics``, ``/docs`` and ``/openapi.json`` here; the native routes in
:mod:`hub.serve.run`; the OpenAI routes in :mod:`hub.serve.openai`; ``/v1/rerank`` in
:mod:`hub.serve.rerank`; the page at ``/`` and ``/static``.
"""
from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from hub.errors import HubError
from hub.serve.errors import ApiError, envelope, from_hub_error
from hub.serve.gate import Gate
from hub.serve.limits import Limits
from hub.serve.metrics import Metrics
from hub.serve.models import ModelHost
from hub.serve.sites import Sites

STATIC = Path(__file__).resolve().parent / "static"
DOCS_ASSETS = "/static-docs"
ERROR_SCHEMA = {"type": "object", "required": ["error"], "properties": {"error": {
    "type": "object", "required": ["message", "type", "param", "code"],
    "properties": {"message": {"type": "string"}, "type": {"type": "string"},
                   "param": {"type": ["string", "null"]}, "code": {"type": ["string", "null"]}}}}}
ERROR_STATUSES = (400, 401, 403, 404, 413, 415, 422, 429, 500, 503, 504)


@dataclass
class Settings:
    """What ``hub serve`` was started with."""

    limits: Limits = field(default_factory=Limits)
    preload: tuple = ()
    allow: tuple = ()
    api_key: str | None = None
    device: str | None = None
    dtype: str | None = None
    sites: Sites = field(default_factory=Sites)  # the Host and Origin allow-lists (--allowed-host, --cors-origin)


class ServeState:
    """The app's state: settings, the model host, metrics and whether it is shutting down."""

    def __init__(self, settings: Settings):
        self.settings, self.limits, self.api_key = settings, settings.limits, settings.api_key
        self.sites = settings.sites
        self.bodies: list = []  # (route, the content types its body is read as), for the routes that take one
        self.metrics = Metrics()
        self.host = ModelHost(settings.limits, settings.preload, settings.allow, settings.device,
                              settings.dtype, self.metrics)
        self.draining = False
        self.preload_task: asyncio.Task | None = None

    def begin_shutdown(self) -> None:
        """From now on new requests get 503; those in flight finish, and those waiting for a model to load get 503.

        Safe to call from a signal handler."""
        self.draining = True
        self.host.stop()


def create_app(settings: Settings | None = None) -> FastAPI:
    """The app for ``settings``; models named in ``settings.preload`` load when it starts."""
    from hub import __version__
    from hub.serve import openai, rerank, run

    state = ServeState(settings or Settings())

    @contextlib.asynccontextmanager
    async def lifespan(app):
        state.host.start()
        state.preload_task = asyncio.create_task(state.host.load_preloaded())
        yield
        state.begin_shutdown()
        state.preload_task.cancel()
        await state.host.close()

    app = FastAPI(title="mmhub", version=__version__, lifespan=lifespan, docs_url=None,
                  description="Every model of the hub's catalogue over HTTP: native routes for every task, "
                              "OpenAI-compatible embeddings and transcriptions, cross-request micro-batching.")
    app.state.hub = state
    add_error_handlers(app)
    add_ops_routes(app)
    app.include_router(run.router)
    app.include_router(openai.router)
    app.include_router(rerank.router)
    add_page(app)
    add_docs(app)
    document_errors(app)
    state.bodies = body_types(app.routes)
    app.add_middleware(Gate, state=state)
    return app


def body_types(routes) -> list:
    """(route, content types) for each route that takes a body: those its OpenAPI request body declares
    (routes that read their own body), else multipart for form fields and JSON for a model."""
    from fastapi import params
    from fastapi.routing import APIRoute

    out = []
    for route in routes:
        inner = getattr(route, "original_router", None)  # an included router (no prefixes are used)
        if inner is not None:
            out += body_types(inner.routes)
        if not isinstance(route, APIRoute):
            continue
        declared = ((route.openapi_extra or {}).get("requestBody") or {}).get("content")
        if declared:
            out.append((route, frozenset(declared)))
        elif route.body_field is not None:
            form = isinstance(route.body_field.field_info, params.Form)
            out.append((route, frozenset({"multipart/form-data" if form else "application/json"})))
    return out


def error_response(status: int, message: str, param=None, code=None, headers=None) -> JSONResponse:
    return JSONResponse(envelope(status, message, param, code), status_code=status, headers=headers)


def add_error_handlers(app: FastAPI) -> None:
    """Every error in OpenAI's envelope: ours, FastAPI's validation errors, 404/405 and bugs (500)."""

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError):
        return error_response(exc.status, exc.message, exc.param, exc.code, exc.headers)

    @app.exception_handler(HubError)
    async def hub_error(request: Request, exc: HubError):
        err = from_hub_error(exc)
        return error_response(err.status, err.message, err.param, err.code)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "body"
        return error_response(422, f"invalid request: {where}: {first.get('msg')}", where, "invalid_request")

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404:
            message = f"no route {request.method} {request.url.path}; see /docs for the routes"
        return error_response(exc.status_code, message, None, "http_error", getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def bug(request: Request, exc: Exception):
        return error_response(500, f"unexpected {type(exc).__name__}: {exc}", None, "server_error")


def add_ops_routes(app: FastAPI) -> None:
    state: ServeState = app.state.hub

    @app.get("/health", tags=["ops"])
    async def health():
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/ready", tags=["ops"])
    async def ready():
        """Readiness: 200 once the preloaded models are loaded and every model worker runs, else 503."""
        ok, why = state.host.ready()
        if state.draining:
            ok, why = False, "shutting down"
        if not ok:
            return error_response(503, f"not ready: {why}", None, "not_ready")
        return {"status": "ready", "models": sorted({e.spec.id for e in state.host.loaded.values()})}

    @app.get("/metrics", tags=["ops"], response_class=PlainTextResponse)
    async def metrics():
        """Prometheus metrics: requests, latency, queue depth, batch sizes, loaded models."""
        body, content_type = state.metrics.render()
        return Response(body, media_type=content_type)


def add_page(app: FastAPI) -> None:
    """The page at ``/``, its files under ``/static`` (plain HTML, CSS and JS shipped in the package) and
    ``/favicon.ico``."""

    @app.get("/", include_in_schema=False)
    async def index():
        return FileResponse(STATIC / "index.html")

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon():
        return FileResponse(STATIC / "favicon.ico", media_type="image/x-icon")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")


DOCS_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>mmhub - API</title>
  <link rel="icon" href="{root}/static/favicon.svg" type="image/svg+xml">
  <link rel="stylesheet" href="{root}{assets}/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui" data-openapi="{root}/openapi.json"></div>
  <script src="{root}{assets}/swagger-ui-bundle.js"></script>
  <script type="module" src="{root}/static/docs.js"></script>
</body>
</html>
"""
NO_DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>mmhub - API</title></head>
<body><h1>mmhub - API</h1>
<p>This page needs Swagger UI, which comes with the serve extra: <code>pip install 'mmhub[serve]'</code>
(or <code>pip install fastapi-offline</code>), then restart <code>hub serve</code>.</p>
<p>The API's OpenAPI description is at <a href="{root}/openapi.json">/openapi.json</a>.</p></body></html>
"""


def add_docs(app: FastAPI) -> None:
    """The OpenAPI page at ``/docs``: Swagger UI 5 (it reads OpenAPI 3.1), its files served from the
    fastapi-offline package (no CDN); without that package, a page that says how to get it (503)."""
    from fastapi.responses import HTMLResponse

    assets = swagger_ui_dir()
    if assets is not None:
        app.mount(DOCS_ASSETS, StaticFiles(directory=assets), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs(request: Request):
        root = request.scope.get("root_path", "").rstrip("/")
        if assets is None:
            return HTMLResponse(NO_DOCS_PAGE.format(root=root), status_code=503)
        return HTMLResponse(DOCS_PAGE.format(root=root, assets=DOCS_ASSETS))


def swagger_ui_dir() -> Path | None:
    """Swagger UI's files from the fastapi-offline package (found without importing it), or None."""
    import importlib.util

    found = importlib.util.find_spec("fastapi_offline")
    if found is None or not found.submodule_search_locations:
        return None
    path = Path(list(found.submodule_search_locations)[0]) / "static"
    return path if (path / "swagger-ui-bundle.js").is_file() else None


def document_errors(app: FastAPI) -> None:
    """Declare the error envelope for every error status of every API route, and the tasks ``/v1/run`` takes, in
    the OpenAPI schema."""
    from hub.serve import run

    original = app.openapi

    def openapi():
        if app.openapi_schema:
            return app.openapi_schema
        schema = original()
        run.document_tasks(schema)
        schema.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
        for path in schema.get("paths", {}).values():
            for operation in path.values():
                responses = operation.setdefault("responses", {})
                responses.pop("422", None)
                for status in ERROR_STATUSES:
                    responses[str(status)] = {"description": "an error in OpenAI's envelope", "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
        return schema

    app.openapi = openapi
