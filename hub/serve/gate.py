"""The ASGI middleware in front of every route: metrics, hosts and origins, shutdown, API key, content type and
body size.

- Every request is counted and timed by route template and status.
- A ``Host`` that does not name this server is a 400 and an ``Origin`` of a page not allowed a 403
  (:mod:`hub.serve.sites`); allowed cross-origin pages get CORS answers, their preflights need no key.
- While the server shuts down, new requests get 503 (``/health`` still answers).
- With an API key, every route but ``/health`` and the static files (``/``, ``/docs``, ``/favicon.ico``,
  ``/static/...`` and Swagger UI's ``/static-docs/...``, which hold no data; the page and ``/docs`` send the
  key with their API calls) needs
  ``Authorization: Bearer KEY``, compared in constant time.
- A request to a route that takes a body gets 415 unless its ``Content-Type`` is one the route declares
  (``application/json``; ``multipart/form-data`` on the upload routes).
- A body over ``--max-body-mb`` gets 413: at once when ``Content-Length`` says so, else while it is read.
"""
from __future__ import annotations

import hmac
import json
import time

from starlette.exceptions import HTTPException

from hub.serve.errors import envelope
from hub.serve.limits import flag
from hub.serve.sites import PREFLIGHT_HEADERS, cors_headers

OPEN_PATHS = ("/health",)
PAGE_PATHS = ("/", "/index.html", "/docs", "/favicon.ico")


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` when a body grows past the limit (an HTTPException, so FastAPI passes it on)."""

    def __init__(self, message: str):
        super().__init__(413, message)


class Gate:
    """Pure ASGI middleware; ``state`` is the app's :class:`hub.serve.app.ServeState`."""

    def __init__(self, app, state):
        self.app, self.state = app, state

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start, status = time.perf_counter(), [500]
        origin = header(scope, b"origin")
        kind = self.origin_kind(scope, origin)
        extra = [(k.lower().encode(), v.encode()) for k, v in cors_headers(origin).items()] if kind == "cross" else []

        async def send_status(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                if extra:
                    message = {**message, "headers": [*message.get("headers", ()), *extra]}
            await send(message)

        try:
            refusal = self.refusal(scope, origin, kind)
            if refusal is not None:
                await respond(send_status, *refusal)
                return
            await self.app(scope, self.limited(scope, receive), send_status)
        finally:
            route = scope.get("route")
            name = getattr(route, "path", None) or ("/static" if scope["path"].startswith("/static/") else "other")
            self.state.metrics.observe(name, status[0], time.perf_counter() - start)

    def origin_kind(self, scope, origin: str | None) -> str | None:
        """'same' or 'cross' for an allowed page (or no page: 'same'), None for a page that is refused."""
        if origin is None:
            return "same"
        server = scope.get("server")
        return self.state.sites.origin_kind(origin, header(scope, b"host"), server[1] if server else None)

    def refusal(self, scope, origin: str | None, kind: str | None) -> tuple | None:
        """(status, message, code, headers) when the request is refused before it reaches a route."""
        path = scope["path"]
        host = header(scope, b"host")
        if not self.state.sites.host_allowed(host):
            return 400, host_message(host), "host_not_allowed", {}
        if kind is None:
            return 403, origin_message(origin), "origin_not_allowed", {}
        if scope["method"] == "OPTIONS" and header(scope, b"access-control-request-method") and origin:
            return 204, None, None, PREFLIGHT_HEADERS  # an allowed page's preflight: no key needed
        if self.state.draining and path not in OPEN_PATHS:
            return 503, "the server is shutting down; retry on another replica", "shutting_down", {}
        if not self.authorised(scope):
            return 401, ("missing or wrong API key: send the header 'Authorization: Bearer <key>' with the key "
                         "the server was started with (--api-key or HUB_API_KEY)"), "invalid_api_key", \
                {"WWW-Authenticate": "Bearer"}
        wrong_type = self.content_type_refusal(scope)
        if wrong_type is not None:
            return 415, wrong_type, "unsupported_media_type", {}
        length = header(scope, b"content-length")
        limit = self.state.limits.max_body_bytes
        if length is not None and length.isdigit() and int(length) > limit:
            return 413, body_message(limit), "body_too_large", {}
        return None

    def authorised(self, scope) -> bool:
        key = self.state.api_key
        path = scope["path"]
        if not key or path in OPEN_PATHS or path in PAGE_PATHS or path.startswith(("/static/", "/static-docs/")):
            return True
        given = header(scope, b"authorization") or ""
        scheme, _, token = given.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), key.encode())

    def content_type_refusal(self, scope) -> str | None:
        """Why the request's content type is not one its route reads its body as; None when it is, or takes none."""
        from starlette.routing import Match

        for route, types in self.state.bodies:
            if route.matches(scope)[0] == Match.FULL:
                given = (header(scope, b"content-type") or "").split(";")[0].strip().lower()
                if given in types:
                    return None
                wanted = " or ".join(f"'Content-Type: {t}'" for t in sorted(types))
                return (f"{scope['method']} {route.path} takes a body sent with {wanted}, got "
                        f"{repr(given) if given else 'no Content-Type'}")
        return None

    def limited(self, scope, receive):
        """``receive`` that raises BodyTooLarge once more than the limit has arrived."""
        limit, seen = self.state.limits.max_body_bytes, [0]

        async def receive_limited():
            message = await receive()
            if message["type"] == "http.request":
                seen[0] += len(message.get("body", b""))
                if seen[0] > limit:
                    raise BodyTooLarge(body_message(limit))
            return message

        return receive_limited


def body_message(limit: int) -> str:
    return (f"the request body is over the server's limit max_body_mb={limit / 2**20:g} MiB (set with "
            f"{flag('max_body_mb')}); send fewer or smaller inputs")


def host_message(host: str | None) -> str:
    return (f"the Host header {host!r} names neither this server's address nor localhost, so the request is refused "
            "(a web page under another name could reach this server through DNS rebinding); to serve under that "
            "name, start the server with --allowed-host NAME")


def origin_message(origin: str | None) -> str:
    return (f"requests from the web page at {origin!r} are refused: this server answers pages of its own origin "
            "only; to let that page call it, start the server with --cors-origin ORIGIN")


def header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


async def respond(send, status: int, message: str | None, code: str | None, headers: dict) -> None:
    """Send an error in OpenAI's envelope (no body when there is no message: a preflight's answer)."""
    body = json.dumps(envelope(status, message, None, code)).encode() if message is not None else b""
    raw = [(b"content-type", b"application/json")] if body else []
    raw += [(b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
