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

STATIC = Path(__file__).resolve().parent / "static"
DOCS_ASSETS = "/static-docs"
ERROR_SCHEMA = {"type": "object", "required": ["error"], "properties": {"error": {
    "type": "object", "required": ["message", "type", "param", "code"],
    "properties": {"message": {"type": "string"}, "type": {"type": "string"},
                   "param": {"type": ["string", "null"]}, "code": {"type": ["string", "null"]}}}}}
ERROR_STATUSES = (400, 401, 404, 413, 422, 429, 500, 503, 504)


@dataclass
class Settings:
    """What ``hub serve`` was started with."""

    limits: Limits = field(default_factory=Limits)
    preload: tuple = ()
    allow: tuple = ()
    api_key: str | None = None
    device: str | None = None
    dtype: str | None = None


class ServeState:
    """The app's state: settings, the model host, metrics and whether it is shutting down."""

    def __init__(self, settings: Settings):
        self.settings, self.limits, self.api_key = settings, settings.limits, settings.api_key
        self.metrics = Metrics()
        self.host = ModelHost(settings.limits, settings.preload, settings.allow, settings.device,
                              settings.dtype, self.metrics)
        self.draining = False
        self.preload_task: asyncio.Task | None = None

    def begin_shutdown(self) -> None:
        """From now on new requests get 503; those in flight finish."""
        self.draining = True


def create_app(settings: Settings | None = None) -> FastAPI:
    """The app for ``settings``; models named in ``settings.preload`` load when it starts."""
    from hub import __version__
    from hub.serve import openai, rerank, run

    state = ServeState(settings or Settings())

    @contextlib.asynccontextmanager
    async def lifespan(app):
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
    app.add_middleware(Gate, state=state)
    return app


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
    """The page at ``/`` and its files under ``/static`` (plain HTML, CSS and JS shipped in the package)."""

    @app.get("/", include_in_schema=False)
    async def index():
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")


def add_docs(app: FastAPI) -> None:
    """The OpenAPI page at ``/docs``, its Swagger UI files served from the swagger-ui-bundle package (no CDN)."""
    from fastapi.openapi.docs import get_swagger_ui_html

    assets = swagger_ui_dir()
    if assets is not None:
        app.mount(DOCS_ASSETS, StaticFiles(directory=assets), name="docs-assets")
    urls = {"swagger_js_url": f"{DOCS_ASSETS}/swagger-ui-bundle.js", "swagger_css_url": f"{DOCS_ASSETS}/swagger-ui.css",
            "swagger_favicon_url": f"{DOCS_ASSETS}/favicon-32x32.png"} if assets is not None else {}

    @app.get("/docs", include_in_schema=False)
    async def docs():
        return get_swagger_ui_html(openapi_url="/openapi.json", title="mmhub - API", **urls)


def swagger_ui_dir() -> Path | None:
    """Swagger UI's files from the swagger-ui-bundle package, or None when it is not installed."""
    try:
        from swagger_ui_bundle import swagger_ui_path
    except ImportError:
        return None
    return Path(swagger_ui_path)


def document_errors(app: FastAPI) -> None:
    """Declare the error envelope for every error status of every API route, in the OpenAPI schema."""
    original = app.openapi

    def openapi():
        if app.openapi_schema:
            return app.openapi_schema
        schema = original()
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
