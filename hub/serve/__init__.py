"""``hub serve``: the hub behind an HTTP API (FastAPI + uvicorn), with cross-request micro-batching.

Importing this package is cheap; FastAPI, uvicorn and torch are imported when an app is built.
Modules: :mod:`~hub.serve.app` (routes), :mod:`~hub.serve.batcher` (the queue per model),
:mod:`~hub.serve.models` (lazy loading), :mod:`~hub.serve.limits` (limits and request decoding),
:mod:`~hub.serve.body` (JSON bodies: depth, unknown fields), :mod:`~hub.serve.sites` (Host, Origin, CORS),
:mod:`~hub.serve.gate` (the middleware that applies them),
:mod:`~hub.serve.openai` (OpenAI wire shapes), :mod:`~hub.serve.metrics`, :mod:`~hub.serve.errors`
and :mod:`~hub.serve.command` (the click command).
"""
