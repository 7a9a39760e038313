"""Running a request through a model, and the native routes: ``/v1/run/{model}``, ``/v1/models``, ``/v1/tasks``.

Every task in the task table is served by the same code, chosen by what the task takes
(``TaskInfo.inputs``): texts as strings; images and audio as ``data:`` URIs or base64 in JSON, or
as ``file`` parts of a multipart upload. Options are checked by the pipeline's own option contract
before any input is decoded, so a bad option fails only its own request.
"""
from __future__ import annotations

import asyncio
from typing import Any, Optional

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from hub.errors import HubError
from hub.serve.body import Body, narrowed, openapi_body, parse_json, read_model
from hub.serve.errors import ApiError, from_hub_error
from hub.serve.limits import check_generation, check_image, check_items, check_text, decode_base64, read_audio
from hub.tasks.serialisable import check_results

router = APIRouter()


class RunRequest(Body):
    """The JSON body of ``POST /v1/run/{model}``."""

    inputs: list[Any] = Field(description="texts (or the object a structured task takes, such as question-answering's "
                                          "{\"question\", \"context\"}), or data: URIs / base64 of images or audio",
                              json_schema_extra=narrowed(minItems=1, items={"anyOf": [{"type": "string"},
                                                                                      {"type": "object"}]}))
    options: dict[str, Any] = Field(default_factory=dict, description="the task's call options (GET /v1/models/{id})")
    task: Optional[str] = Field(default=None, description="a task other than the model's own (same modality)")


class RunResponse(BaseModel):
    model: str
    task: str
    results: list[dict[str, Any]]
    summaries: Optional[list[str]] = Field(default=None, description=(
        "each result as ``hub run`` prints it (the result class's own summary), when its class writes one"))


def task_inputs(spec) -> str:
    """What the model's task takes: text, image, audio or image+text."""
    from hub.tasks import TASKS

    return TASKS[spec.task].inputs


def task_row(spec):
    """The task table's row of the model's task (a plugin's task brings its own loader)."""
    from hub.tasks import TASKS

    return TASKS[spec.task]


def checked_options(pipeline, options: dict) -> dict:
    """The options resolved and checked by the pipeline's own contract; 400 naming the option otherwise."""
    if not isinstance(options, dict):
        raise ApiError(400, "'options' must be a JSON object of option names and values", "options", "invalid_option")
    try:
        return pipeline.check_options(pipeline.resolve_options(dict(options)))
    except HubError as exc:
        raise from_hub_error(exc, "options") from None


def decode(limits, kind: str, raw: list, task=None) -> list:
    """Inputs as the pipeline takes them: texts checked, images as bytes, audio as (samples, rate), and
    a plugin task's own kind of input (``task.loader``) read from its bytes by the plugin's loader."""
    out = []
    for i, item in enumerate(raw):
        if kind == "text":
            out.append(check_text(limits, text_input(item, i), i))
            continue
        data = item if isinstance(item, bytes) else decode_base64(item, i)
        if task is not None and task.loader:
            out.append(own_kind(task, data, i))
        else:
            out.append(check_image(limits, data, i) if kind.startswith("image") else read_audio(limits, data, i))
    return out


def text_input(item, index: int):
    """A text task's input as its pipeline reads it: a string, an upload's UTF-8 text, or a structured input
    (an object such as question-answering's ``{"question", "context"}``) as its JSON text, as in JSONL."""
    from hub.inputs import structured_text

    if isinstance(item, bytes):
        return _utf8(item, index)
    if isinstance(item, dict):
        return structured_text(item)
    if not isinstance(item, str):
        raise ApiError(400, f"input {index} must be a string, or an object for a task that takes one (such as "
                            f"question-answering's {{\"question\", \"context\"}}), got {type(item).__name__}",
                       "inputs", "invalid_input")
    return item


def own_kind(task, data: bytes, index: int):
    """One input of a plugin's own kind, read by the task's loader; 400 naming the input otherwise."""
    from hub.errors import InputError

    try:
        return task.load_input(data, f"input {index}")
    except InputError as exc:
        raise ApiError(400, str(exc), "inputs", "invalid_input") from None


def _utf8(data: bytes, index: int) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, f"input {index} is not UTF-8 text", "inputs", "invalid_input") from None


def prepare(pipeline, items: list) -> list:
    """``pipeline.prepare`` on each input (decoding images, resampling audio); 400 naming the input."""
    out = []
    for i, item in enumerate(items):
        try:
            out.append(pipeline.prepare(item))
        except HubError as exc:
            raise ApiError(400, f"input {i}: {exc}", "inputs", "invalid_input") from None
    return out


async def unless_disconnected(request: Request, work):
    """Await ``work``; if the client goes away first, cancel it (its queued items are then skipped).

    A dict answer is serialised here straight to JSON: FastAPI's generic encoder walks every float of
    every embedding in Python, which costs more than the serialisation itself."""
    from fastapi.responses import JSONResponse, Response

    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(wait_for_disconnect(request))
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
    if task.done():
        result = task.result()
        return JSONResponse(result) if isinstance(result, dict) else result
    task.cancel()
    return Response(status_code=499)  # nobody reads it: the client closed the request


async def wait_for_disconnect(request: Request) -> None:
    """Return when the client disconnects (the body has been read, so only a disconnect can arrive)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def execute(state, entry, raw: list, options: dict) -> list:
    """Check, decode, prepare and batch ``raw`` inputs for a loaded model; the results in order."""
    check_items(state.limits, len(raw))
    resolved = checked_options(entry.pipeline, options)
    longest = max((len(x) for x in raw if isinstance(x, str)), default=None)  # characters: at least its tokens
    check_generation(state.limits, entry.pipeline, resolved, longest)
    kind = task_inputs(entry.spec)
    if kind == "text":  # cheap enough for the event loop: two thread hops would cost more than the work
        items = decode(state.limits, kind, raw, task_row(entry.spec))
        prepared = prepare(entry.pipeline, items)
    else:
        items = await asyncio.to_thread(decode, state.limits, kind, raw, task_row(entry.spec))
        prepared = await asyncio.to_thread(prepare, entry.pipeline, items)
    tokens = [max(1, len(x) // 4) for x in items] if kind == "text" else None
    return await entry.batcher.submit(prepared, resolved, tokens)


@router.post("/v1/run/{model_id:path}", response_model=RunResponse, tags=["native"], openapi_extra=openapi_body(
    RunRequest, **{"multipart/form-data": {"schema": {
        "type": "object", "required": ["file"], "additionalProperties": False, "properties": {
            "file": {"type": "array", "minItems": 1, "items": {"type": "string", "format": "binary"}},
            "options": {"type": "object", "description": "the options as a JSON object"},
            "task": {"type": "string"}}},
        "encoding": {"options": {"contentType": "application/json"}}}}))
async def run_model(model_id: str, request: Request):
    """Run a model on inputs (JSON or multipart); the results are the JSON of ``hub run --json``."""
    state = request.app.state.hub
    raw, options, task = await read_run_body(request)
    if task is not None and not task.strip():
        raise ApiError(400, "'task' is empty: name a task (GET /v1/tasks lists them) or leave it out", "task",
                       "unknown_task")
    entry = await state.host.get(model_id, task)
    results = await unless_disconnected(request, execute(state, entry, raw, options))
    if not isinstance(results, list):
        return results
    dicts = check_results(results, entry.spec.plugin, entry.spec.id, entry.spec.task)  # as hub run and hub.run do
    return {"model": entry.spec.id, "task": entry.spec.task, "results": dicts,
            "summaries": summaries(results)}


def summaries(results: list) -> list[str] | None:
    """Each result's own summary (what ``hub run`` prints), for result classes that write one; None for classes
    that keep the base class's (it repeats the JSON), or when a plugin's ``summary()`` fails (the JSON stands)."""
    from hub.tasks.results import Result

    if not results or any(type(r).summary is Result.summary for r in results):
        return None
    try:
        return [str(r.summary()) for r in results]
    except Exception:  # a plugin's summary is a courtesy; its results are still answered
        return None


async def read_run_body(request: Request) -> tuple[list, dict, str | None]:
    """(inputs, options, task) from a JSON body or a multipart form."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "multipart/form-data":
        return await read_form(request)
    body = read_model(await request.body(), RunRequest, request.app.state.hub.limits)
    return body.inputs, body.options, body.task


async def read_form(request: Request) -> tuple[list, dict, str | None]:
    form = await request.form()
    if any(isinstance(f, str) for f in form.getlist("file")):  # the schema's 'file' parts are uploads
        raise ApiError(422, "every 'file' part must be a file upload (a part with a filename); send texts as JSON: "
                            "{\"inputs\": [\"...\"]}", "file", "invalid_input")
    unknown = sorted(set(form) - {"file", "options", "task"})
    if unknown:
        raise ApiError(422, f"unknown part{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} in the "
                            "multipart upload; the valid parts are file, options, task", unknown[0], "unknown_field")
    files = [await f.read() for f in form.getlist("file")]
    options = form.get("options") or "{}"
    options = parse_json(options.encode() if isinstance(options, str) else await options.read(),
                         request.app.state.hub.limits, "the 'options' part")
    task = form.get("task")
    return files, options, task if isinstance(task, str) else None  # an empty 'task' part names no task: 400


def document_tasks(schema: dict) -> None:
    """Declare the task table's names and aliases as the values ``task`` takes on ``/v1/run`` (JSON and multipart)."""
    from hub.tasks import list_tasks

    names = sorted({name for t in list_tasks() for name in (t.name, *t.aliases)})
    operation = schema.get("paths", {}).get("/v1/run/{model_id}", {}).get("post")
    for content in ((operation or {}).get("requestBody") or {}).get("content", {}).values():
        task = content["schema"]["properties"]["task"]
        branches = [b for b in task.get("anyOf", ()) if b.get("type") == "string"]
        (branches[0] if branches else task)["enum"] = names


# -- the catalogue ----------------------------------------------------------------------------------
def model_object(spec, host) -> dict:
    """A model as ``/v1/models`` lists it: OpenAI's shape plus task, modality and availability."""
    return {"id": spec.id, "object": "model", "created": 0, "owned_by": spec.plugin, "task": spec.task,
            "modality": spec.modality, "availability": availability(host, spec)}


def availability(host, spec) -> str:
    """'loaded', or where the model's weights are (:func:`hub.weights.availability`): 'local', 'download',
    'missing' or 'unknown'. Found without loading or fetching anything."""
    from hub.weights import availability as weights_availability

    if any(entry.spec.id == spec.id for entry in host.loaded.values()):
        return "loaded"
    return weights_availability(spec)


def model_objects(host) -> list[dict]:
    return [model_object(s, host) for s in host.servable()]


@router.get("/v1/models", tags=["catalogue"])
async def list_served_models(request: Request):
    """The models this server serves: those loaded, and the allowed catalogue models it can load. Each says
    whether it is loaded, or where its weights are ('local', 'download', 'missing', 'unknown')."""
    return {"object": "list", "data": await asyncio.to_thread(model_objects, request.app.state.hub.host)}


@router.get("/v1/models/{model_id:path}", tags=["catalogue"])
async def get_model(model_id: str, request: Request):
    """One model: its catalogue entry, its call options and what its task takes."""
    host = request.app.state.hub.host
    try:
        spec = await asyncio.to_thread(host.spec, model_id)
        options = await asyncio.to_thread(options_of, host, spec)
    except HubError as exc:
        raise from_hub_error(exc, "model") from None
    return {**model_object(spec, host), "spec": spec.to_dict(), "options": options, "inputs": task_inputs(spec)}


def options_of(host, spec) -> list[dict]:
    """The model's call options: from its pipeline when loaded, else from its plugin's model_options hook."""
    from hub.model_options import model_options

    entry = host.loaded.get((spec.id, spec.task))
    declared = entry.pipeline.call_options if entry else model_options(spec)
    return [o.to_dict() for o in declared or ()]


@router.get("/v1/tasks", tags=["catalogue"])
async def list_tasks():
    """The task table: each task's modality, what it takes and the result it gives."""
    from hub.tasks import list_tasks as tasks

    return [t.to_dict() for t in tasks()]
