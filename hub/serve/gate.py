"""The ASGI middleware in front of every route: metrics, shutdown, API key and body size.

- Every request is counted and timed by route template and status.
- While the server shuts down, new requests get 503 (``/health`` still answers).
- With an API key, every route but ``/health`` and the static files (``/``, ``/docs``, ``/favicon.ico``,
  ``/static/...`` and Swagger UI's ``/static-docs/...``, which hold no data; the page and ``/docs`` send the
  key with their API calls) needs
  ``Authorization: Bearer KEY``, compared in constant time.
- A body over ``--max-body-mb`` gets 413: at once when ``Content-Length`` says so, else while it is read.
"""
from __future__ import annotations

import hmac
import json
import time

from starlette.exceptions import HTTPException

from hub.serve.errors import envelope
from hub.serve.limits import flag

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

        async def send_status(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            refusal = self.refusal(scope)
            if refusal is not None:
                await respond(send_status, *refusal)
                return
            await self.app(scope, self.limited(scope, receive), send_status)
        finally:
            route = scope.get("route")
            name = getattr(route, "path", None) or ("/static" if scope["path"].startswith("/static/") else "other")
            self.state.metrics.observe(name, status[0], time.perf_counter() - start)

    def refusal(self, scope) -> tuple | None:
        """(status, message, code, headers) when the request is refused before it reaches a route."""
        path = scope["path"]
        if self.state.draining and path not in OPEN_PATHS:
            return 503, "the server is shutting down; retry on another replica", "shutting_down", {}
        if not self.authorised(scope):
            return 401, ("missing or wrong API key: send the header 'Authorization: Bearer <key>' with the key "
                         "the server was started with (--api-key or HUB_API_KEY)"), "invalid_api_key", \
                {"WWW-Authenticate": "Bearer"}
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


def header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


async def respond(send, status: int, message: str, code: str, headers: dict) -> None:
    """Send an error in OpenAI's envelope."""
    body = json.dumps(envelope(status, message, None, code)).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
