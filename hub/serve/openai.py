"""The OpenAI-compatible routes: ``POST /v1/embeddings`` and ``POST /v1/audio/transcriptions``.

Wire shapes follow OpenAI's API, so its own client works unchanged. Additions, all optional:

- ``/v1/embeddings`` takes ``"modality": "image"`` to embed images (base64 ``data:`` URIs, or plain base64) with a
  vision model (its pooled features, as the image-embedding task gives them) or a CLIP model (its image
  embeddings); the default, ``"text"``, takes strings. Items may also be written as
  ``{"type": "image_url", "image_url": {"url": "data:..."}}``, which implies the image modality.
- ``dimensions`` truncates text embeddings and re-normalises them to unit length.

A text longer than the model's maximum (in its own tokens) is refused with 422 naming the maximum, as OpenAI
refuses over-long input: nothing is truncated silently, and ``usage`` counts every token of what was embedded.
"""
from __future__ import annotations

import base64
import math
from typing import Any, Literal, Optional, Union

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import PlainTextResponse
from pydantic import Field

from hub.serve.body import Body, narrowed, not_null, openapi_body, read_model
from hub.serve.errors import ApiError
from hub.serve.limits import audio_seconds
from hub.serve.run import checked_options, execute, unless_disconnected
from hub.tasks import TASKS, task_with, tasks_with

router = APIRouter()
FORMATS = ("json", "text", "srt", "vtt", "verbose_json")
ROUTE = "embeddings"  # the tasks /v1/embeddings serves declare route="embeddings" (hub.tasks.TaskInfo)
IMAGE_ITEM = {"type": "object", "required": ["type", "image_url"], "properties": {
    "type": {"const": "image_url"},
    "image_url": {"type": "object", "required": ["url"], "properties": {"url": {"type": "string"}}}}}
INPUT_SCHEMA = {"anyOf": [{"type": "string"}, {"type": "array", "minItems": 1, "items": {"type": "string"}},
                          {"type": "array", "minItems": 1, "items": IMAGE_ITEM}]}


class EmbeddingRequest(Body):
    """OpenAI's embeddings request, plus ``modality``."""

    model: str
    input: Union[str, list[Any]] = Field(description="a string or a list of strings (images: data: URIs)",
                                         json_schema_extra=lambda schema: schema.update(INPUT_SCHEMA))
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: Optional[int] = Field(default=None, description="truncate to this many and re-normalise",
                                      json_schema_extra=narrowed(minimum=1))
    user: Optional[str] = None
    modality: Literal["text", "image"] = Field(default="text", description="what the inputs are")


# -- embeddings -------------------------------------------------------------------------------------
@router.post("/v1/embeddings", tags=["openai"], openapi_extra=openapi_body(EmbeddingRequest))
async def embeddings(request: Request):
    """Embed texts (or images) in OpenAI's shape; ``encoding_format=base64`` is little-endian float32."""
    state = request.app.state.hub
    body = read_model(await request.body(), EmbeddingRequest, state.limits)
    return await unless_disconnected(request, embed(state, body))


async def embed(state, body: EmbeddingRequest) -> dict:
    """The embeddings response for ``body``."""
    items, modality = embedding_inputs(body)
    entry = await state.host.get(body.model, None)
    if modality == "image" and entry.spec.modality == "crossmodal":  # CLIP: the image tower's embeddings
        entry = await state.host.get(body.model, task_with(route=ROUTE, modality="crossmodal"))
        results = await execute(state, entry, items, {"texts": ["an image"], "top_k": 1})
        vectors = [r.image_embeddings[0] for r in results]
    else:
        if modality == "image" and entry.spec.modality == "vision":  # a classifier's pooled features
            entry = await state.host.get(body.model, task_with(route=ROUTE, modality="vision"))
        check_embedder(entry.spec, modality)
        counts = checked_lengths(entry, items) if modality == "text" else None
        vectors = [r.embedding for r in await execute(state, entry, items, {})]
    vectors = truncated(vectors, body.dimensions, entry.spec)
    data = [{"object": "embedding", "index": i, "embedding": encode(v, body.encoding_format)}
            for i, v in enumerate(vectors)]
    tokens = (sum(counts) if counts is not None else count_tokens(entry.pipeline, items)) if modality == "text" else 0
    return {"object": "list", "data": data, "model": entry.spec.id,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}


def embedding_inputs(body: EmbeddingRequest) -> tuple[list, str]:
    """The inputs as a list and their modality; token arrays and mixed items are a 400."""
    items = [body.input] if isinstance(body.input, str) else list(body.input)
    modality = body.modality
    if items and all(isinstance(x, dict) for x in items):
        items, modality = [image_url(x, i) for i, x in enumerate(items)], "image"
    if any(isinstance(x, (int, float, list)) and not isinstance(x, bool) for x in items):
        raise ApiError(400, "token arrays are not supported as 'input': send the text as a string or a list of "
                            "strings", "input", "token_arrays_unsupported")
    if not all(isinstance(x, str) for x in items):
        raise ApiError(400, "'input' must be a string or a list of strings", "input", "invalid_input")
    return items, modality


def image_url(item: dict, index: int) -> str:
    url = item.get("image_url", {}).get("url") if isinstance(item.get("image_url"), dict) else None
    if item.get("type") != "image_url" or not isinstance(url, str):
        raise ApiError(400, f"input {index} must be a string or {{\"type\": \"image_url\", \"image_url\": "
                            "{\"url\": \"data:...\"}}", "input", "invalid_input")
    return url


def check_embedder(spec, modality: str) -> None:
    wanted = task_with(route=ROUTE, inputs=modality)  # the task that embeds texts (or images) as they are
    if spec.task != wanted:
        hint = ("for images, set \"modality\": \"image\" and use an image-embedding or CLIP model"
                if modality == "text" else "for images use an image-embedding or CLIP model")
        raise ApiError(400, f"model '{spec.id}' is a {spec.task} model and cannot embed {modality}s here; "
                            f"use a {wanted} model (GET /v1/models); {hint}", "model", "not_an_embedding_model")


def checked_lengths(entry, texts: list[str]) -> list[int] | None:
    """Each text's length in the model's tokens (None without a tokenizer); a 422 naming the model's maximum
    when one is longer than the model takes, instead of embedding only its first tokens."""
    pipeline = entry.pipeline
    tokenizer, limit = pipeline.tokenizer, pipeline.max_length()
    if not callable(tokenizer) or limit is None:
        return None
    try:
        counts = [len(ids) for ids in tokenizer(texts, truncation=False, verbose=False)["input_ids"]]
        limit = int(limit)
    except Exception:  # a tokenizer without this call shape: the usage falls back to an estimate
        return None
    for i, count in enumerate(counts):
        if count > limit:
            raise ApiError(422, f"input {i} is {count} tokens long, over the maximum of {limit} tokens of model "
                                f"'{entry.spec.id}'; shorten it or split it into parts (it is refused rather than "
                                "cut, as OpenAI refuses over-long input)", "input", "context_length_exceeded")
    return counts


def truncated(vectors: list, dimensions: int | None, spec) -> list:
    """Vectors cut to ``dimensions`` and re-normalised (text-embedding models only)."""
    if dimensions is None:
        return vectors
    if spec.task != task_with(route=ROUTE, inputs="text"):
        raise ApiError(400, f"model '{spec.id}' ({spec.task}) does not allow 'dimensions'; leave it out",
                       "dimensions", "dimensions_unsupported")
    size = len(vectors[0]) if vectors else 0
    if not 1 <= dimensions <= size:
        raise ApiError(400, f"'dimensions' must be between 1 and {size} for model '{spec.id}', got {dimensions}",
                       "dimensions", "invalid_dimensions")
    out = []
    for v in vectors:
        cut = v[:dimensions]
        norm = math.sqrt(sum(x * x for x in cut)) or 1.0
        out.append([x / norm for x in cut])
    return out


def encode(vector: list, encoding_format: str):
    if encoding_format == "float":
        return vector
    import numpy as np

    return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")


def count_tokens(pipeline, texts: list[str]) -> int:
    """Tokens in the texts by the model's own tokenizer, else about one per 4 characters."""
    tokenizer = pipeline.tokenizer
    if callable(tokenizer):
        try:
            return sum(len(ids) for ids in tokenizer(texts, truncation=True)["input_ids"])
        except Exception:  # a tokenizer without this call shape: fall back to the estimate
            pass
    return sum(max(1, len(t) // 4) for t in texts)


# -- transcriptions ---------------------------------------------------------------------------------
@router.post("/v1/audio/transcriptions", tags=["openai"], responses={200: {
    "description": "json and verbose_json as JSON; text and srt as text/plain; vtt as text/vtt",
    "content": {"text/plain": {"schema": {"type": "string"}}, "text/vtt": {"schema": {"type": "string"}}}}})
async def transcriptions(request: Request, file: UploadFile = File(...),
                         model: str = Form(..., json_schema_extra={"minLength": 1}),
                         language: Optional[str] = Form(None, json_schema_extra=not_null()),
                         prompt: Optional[str] = Form(None, json_schema_extra=not_null()),
                         response_format: str = Form("json", json_schema_extra={"enum": list(FORMATS)}),
                         temperature: Optional[float] = Form(None, json_schema_extra=not_null())):
    """Transcribe an uploaded audio file (wav, flac, ogg, mp3, aiff) in OpenAI's shape, in any response_format."""
    state = request.app.state.hub
    return await unless_disconnected(request, transcribe(state, file, model, language, prompt, response_format,
                                                         temperature))


async def transcribe(state, file, model, language, prompt, response_format, temperature):
    """The transcription of the uploaded ``file`` in ``response_format``."""
    if response_format not in FORMATS:
        raise ApiError(400, f"response_format must be one of {', '.join(FORMATS)}, got {response_format!r}",
                       "response_format", "invalid_response_format")
    entry = await state.host.get(model, None)
    if TASKS[entry.spec.task].route != "transcriptions":
        wanted = " or ".join(tasks_with(route="transcriptions"))
        raise ApiError(400, f"model '{entry.spec.id}' is a {entry.spec.task} model; transcriptions need a "
                            f"{wanted} model (GET /v1/models)", "model", "not_a_speech_model")
    data = await file.read()
    options = speech_options(entry.pipeline, language, prompt, temperature)
    result = (await execute(state, entry, [data], options))[0]
    return formatted(result, response_format, language, audio_seconds(data))


def speech_options(pipeline, language, prompt, temperature) -> dict:
    """OpenAI's fields as the model's own options; a field the model cannot honour is a 400 naming it."""
    takes = {o.name for o in pipeline.call_options}
    options = {}
    for name, value in (("language", language), ("prompt", prompt), ("temperature", temperature)):
        if value is None or value == "":
            continue
        if name in takes:
            options[name] = value
        elif not (name == "temperature" and value == 0):
            raise ApiError(400, f"model '{pipeline.spec.id}' does not take '{name}'"
                                + (" (it decodes greedily; send temperature 0 or leave it out)"
                                   if name == "temperature" else "; leave it out"), name, f"{name}_unsupported")
    checked_options(pipeline, options)
    return options


def segments(result, duration: float) -> list[tuple[float, float, str]]:
    """(start, end, text) of each chunk; the whole text as one segment when the model gave no chunks."""
    chunks = [(c.start, c.end, c.text.strip()) for c in result.chunks if c.text.strip()]
    return chunks or [(0.0, round(duration, 3), result.text.strip())]


def formatted(result, response_format: str, language: str | None, duration: float):
    """The transcription in ``response_format``: json, text, srt, vtt or verbose_json."""
    if response_format == "json":
        return {"text": result.text}
    if response_format == "text":
        return PlainTextResponse(result.text)
    parts = segments(result, duration)
    if response_format == "srt":
        return PlainTextResponse("\n".join(f"{i}\n{stamp(s, ',')} --> {stamp(e, ',')}\n{t}\n"
                                           for i, (s, e, t) in enumerate(parts, 1)))
    if response_format == "vtt":
        return PlainTextResponse("WEBVTT\n\n" + "\n".join(f"{stamp(s, '.')} --> {stamp(e, '.')}\n{t}\n"
                                                          for s, e, t in parts), media_type="text/vtt")
    return {"task": "transcribe", "language": language or "", "duration": round(duration, 3), "text": result.text,
            "segments": [{"id": i, "seek": 0, "start": s, "end": e, "text": t, "tokens": [], "temperature": 0.0,
                          "avg_logprob": 0.0, "compression_ratio": 0.0, "no_speech_prob": 0.0}
                         for i, (s, e, t) in enumerate(parts)]}


def stamp(seconds: float, mark: str) -> str:
    """``HH:MM:SS,mmm`` (srt) or ``HH:MM:SS.mmm`` (vtt)."""
    ms = int(round(max(0.0, seconds) * 1000))
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}{mark}{ms % 1000:03d}"
