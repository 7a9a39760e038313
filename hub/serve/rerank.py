"""``POST /v1/rerank``: score documents against a query with a text-ranking model (a cross-encoder).

Two wire shapes, told apart by the key that holds the documents:

- infinity's (and Cohere's): ``{"model", "query", "documents", "top_n", "return_documents"}`` ->
  ``{"object": "rerank", "results": [{"index", "relevance_score", "document"}], "model", "usage", "id",
  "created"}``, results best first; ``document`` is null unless ``return_documents`` is true.
- text-embeddings-inference's: ``{"model", "query", "texts", "raw_scores", "return_text"}`` -> a list of
  ``{"index", "score", "text"}``, best first; ``text`` only with ``return_text``. TEI serves one model and
  needs no ``model``; this server serves many, so it is required here too.

``raw_scores`` (either shape) gives the model's logits instead of its activation's scores; ``top_n`` (either
shape) keeps the best n. Each (query, document) pair is one item in the model's batching queue, so the
pairs of concurrent requests share batches under the server's limits (``max_items`` documents a request,
``max_text_chars`` a text, the queue, the timeout); a model whose pipeline cannot take pairs is run
through its own ``texts`` option as one input. Bad requests are 400s in the server's error envelope.
"""
from __future__ import annotations

import time
import uuid
from typing import Any, Optional

from fastapi import APIRouter, Request
from pydantic import ConfigDict, Field

from hub.errors import HubError
from hub.serve.body import Body, narrowed, openapi_body, read_model
from hub.serve.errors import ApiError, from_hub_error
from hub.serve.limits import over_limit
from hub.serve.run import execute, unless_disconnected
from hub.tasks import TASKS, tasks_with

router = APIRouter()
ROUTE = "rerank"  # the tasks /v1/rerank serves declare route="rerank" (hub.tasks.TaskInfo)


TEXT = {"type": "string", "pattern": "\\S"}  # not blank
DOCUMENTS = narrowed(minItems=1, items=TEXT)
ONE_SHAPE = {  # the documents in 'documents' or in 'texts', not both
    "anyOf": [{"required": [name], "properties": {name: {"type": "array"}}} for name in ("documents", "texts")],
    "not": {"required": ["documents", "texts"], "properties": {"documents": {"type": "array"},
                                                               "texts": {"type": "array"}}}}


class RerankRequest(Body):
    """The body of ``POST /v1/rerank``: infinity's shape (``documents``) or TEI's (``texts``)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=ONE_SHAPE)

    model: str = Field(description="a text-ranking model (GET /v1/models)")
    query: Any = Field(description="the text the documents are ranked against", json_schema_extra=TEXT)
    documents: Optional[list[Any]] = Field(default=None, description="the documents (infinity's shape)",
                                           json_schema_extra=DOCUMENTS)
    texts: Optional[list[Any]] = Field(default=None, description="the documents (TEI's shape)",
                                       json_schema_extra=DOCUMENTS)
    top_n: Optional[int] = Field(default=None, description="return only the best n (default: all)",
                                 json_schema_extra=narrowed(minimum=1))
    return_documents: bool = Field(default=False, description="include each document's text (infinity's shape)")
    return_text: bool = Field(default=False, description="include each text (TEI's shape)")
    raw_scores: bool = Field(default=False, description="the model's logits instead of its activation's scores")


@router.post("/v1/rerank", tags=["rerank"], openapi_extra=openapi_body(RerankRequest))
async def rerank(request: Request):
    """Rank documents against a query, best first, in infinity's or TEI's shape (see the module docs)."""
    state = request.app.state.hub
    body = read_model(await request.body(), RerankRequest, state.limits)
    return await unless_disconnected(request, answer(state, body))


async def answer(state, body: RerankRequest):
    """The response to ``body``, in the shape it was asked in."""
    documents, tei = checked_request(state.limits, body)
    entry = await state.host.get(body.model, None)
    if TASKS[entry.spec.task].route != ROUTE:
        wanted = " or ".join(tasks_with(route=ROUTE))
        raise ApiError(400, f"model '{entry.spec.id}' is a {entry.spec.task} model; /v1/rerank needs a {wanted} model "
                            "such as a cross-encoder (GET /v1/models)", "model", "not_a_ranking_model")
    scores = await score(state, entry, body.query, documents, body.raw_scores)
    order = sorted(range(len(scores)), key=lambda i: -scores[i])[:body.top_n or len(scores)]
    if tei:
        return [{"index": i, "score": scores[i], **({"text": documents[i]} if body.return_text else {})}
                for i in order]
    tokens = prompt_tokens(entry.pipeline, body.query, documents)
    return {"object": "rerank", "id": f"rerank-{uuid.uuid4().hex}", "created": int(time.time()),
            "model": entry.spec.id, "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            "results": [{"index": i, "relevance_score": scores[i],
                         "document": documents[i] if body.return_documents else None} for i in order]}


def checked_request(limits, body: RerankRequest) -> tuple[list[str], bool]:
    """(documents, whether TEI's shape was used), every field checked; a 400 or 422 naming the field otherwise."""
    if body.documents is not None and body.texts is not None:
        raise ApiError(400, "give the documents once: 'documents' (infinity's shape) or 'texts' (TEI's shape)",
                       "documents", "invalid_request")
    tei = body.texts is not None
    field = "texts" if tei else "documents"
    documents = body.texts if tei else body.documents
    if not documents:
        raise ApiError(400, f"no documents: give at least one string in '{field}'", field, "no_documents")
    if len(documents) > limits.max_items:
        raise over_limit("max_items", f"the number of {field}", len(documents), limits.max_items)
    check_text(limits, body.query, "query")
    for i, document in enumerate(documents):
        check_text(limits, document, f"{field}[{i}]")
    if body.top_n is not None and body.top_n < 1:
        raise ApiError(400, f"'top_n' must be at least 1 (or left out for all), got {body.top_n}", "top_n",
                       "invalid_top_n")
    return list(documents), tei


def check_text(limits, text, where: str) -> None:
    """A non-blank string within the text limit; a 400 (422 over the limit) naming ``where`` otherwise."""
    param = where.split("[")[0]
    if not isinstance(text, str):
        raise ApiError(400, f"'{where}' must be a string, got {type(text).__name__}", param, "invalid_input")
    if not text.strip():
        raise ApiError(400, f"'{where}' is empty; give the text", param, "invalid_input")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ApiError(400, f"'{where}' holds characters that are not valid text (lone surrogates)", param,
                       "invalid_input") from None
    if len(text) > limits.max_text_chars:
        raise over_limit("max_text_chars", f"the length of '{where}' in characters", len(text), limits.max_text_chars)


async def score(state, entry, query: str, documents: list[str], raw: bool) -> list[float]:
    """One score per document, in order: as (query, document) pairs through the model's queue when it takes them."""
    pipeline = entry.pipeline
    if pipeline.pair_batching:
        try:
            options = pipeline.resolve_options({"raw_scores": raw} if raw else {})
        except HubError as exc:
            raise from_hub_error(exc, "raw_scores") from None
        pairs = [(query, document) for document in documents]
        tokens = [max(1, (len(query) + len(document)) // 4) for document in documents]
        return [float(s) for s in await entry.batcher.submit(pairs, options, tokens)]
    extra = {"raw_scores": True} if raw else {}
    result = (await execute(state, entry, [query], {"texts": documents, "top_k": len(documents), **extra}))[0]
    by_index = {label.index: label.score for label in result.labels}
    return [float(by_index[i]) for i in range(len(documents))]


def prompt_tokens(pipeline, query: str, documents: list[str]) -> int:
    """Tokens the model read: the query once per document plus every document (the model's tokenizer if it has one)."""
    from hub.serve.openai import count_tokens

    return count_tokens(pipeline, [query]) * len(documents) + count_tokens(pipeline, documents)
