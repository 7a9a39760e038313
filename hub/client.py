"""The Python SDK for a hub server (``hub serve``): the call shape and result classes of ``hub.run``.

    >>> from hub.client import Client
    >>> client = Client("http://127.0.0.1:8000", api_key="...")      # or HUB_API_KEY
    >>> client.run("all-minilm-l6-v2", ["a cat", "a kitten"])       # [Embedding, Embedding]
    >>> client.run("resnet18.a1_in1k", "cat.jpg", top_k=3)           # one input, one Classification

Images (paths, bytes, PIL images, arrays) and audio (paths, bytes, ``(array, rate)``) are sent as
``data:`` URIs; arrays of audio as float32 WAV, so nothing is lost on the way. An error answered by
the server becomes a :class:`ServerError` (a ``HubError``) with the server's message; bad inputs and
options are also ``InputError`` / ``OptionError``, as they are locally. httpx is imported when a
client is made.
"""
from __future__ import annotations

import base64
import io
import mimetypes
import numbers
import os
from pathlib import Path

from hub.errors import DependencyMissingError, HubError, InputError, OptionError

DEFAULT_TIMEOUT = 120.0
REQUEST_ITEMS = 64  # inputs sent per request; larger lists are split and merged back in order
MIME = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".webp": "image/webp",
        ".gif": "image/gif", ".bmp": "image/bmp", ".tif": "image/tiff", ".tiff": "image/tiff",
        ".wav": "audio/wav", ".flac": "audio/flac", ".ogg": "audio/ogg", ".mp3": "audio/mpeg",
        ".aiff": "audio/aiff", ".aif": "audio/aiff"}
MAGIC = ((b"\x89PNG", "image/png"), (b"\xff\xd8\xff", "image/jpeg"), (b"GIF8", "image/gif"), (b"BM", "image/bmp"),
         (b"RIFF", "audio/wav"), (b"fLaC", "audio/flac"), (b"OggS", "audio/ogg"), (b"ID3", "audio/mpeg"),
         (b"FORM", "audio/aiff"))


# -- errors ---------------------------------------------------------------------------------------
class ServerError(HubError):
    """An error answered by a hub server: its message, HTTP status and the envelope's type, param and code."""

    exit_code = 1

    def __init__(self, message: str, status: int | None = None, type: str | None = None, param: str | None = None,
                 code: str | None = None, retry_after: float | None = None):
        super().__init__(message)
        self.status, self.type, self.param, self.code, self.retry_after = status, type, param, code, retry_after


class ServerInputError(ServerError, InputError):
    """The server refused an input or the request (400, 413, 422)."""

    exit_code = 2


class ServerOptionError(ServerInputError, OptionError):
    """The server refused a call option (its message names the option and what it takes)."""


class ServerNotFoundError(ServerError, KeyError):
    """The server does not know the model (404)."""

    exit_code = 2

    def __str__(self) -> str:  # KeyError would add quotes
        return self.args[0]


class ServerAuthError(ServerError):
    """The server wants an API key, or another one (401)."""

    exit_code = 2


class ServerBusyError(ServerError):
    """The server is full or not ready (429, 503); ``retry_after`` says when to try again, when it said."""


class ServerTimeoutError(ServerError):
    """The request waited past the server's timeout (504), or the client's."""


class ServerUnreachableError(ServerError):
    """No hub server answers at the URL given."""

    exit_code = 2


def error_from_response(response, sent_key: bool) -> ServerError:
    """The ServerError for an HTTP error response, with the server's own message."""
    status = response.status_code
    try:
        body = response.json()["error"]
        message, kind, param, code = body["message"], body.get("type"), body.get("param"), body.get("code")
    except Exception:  # not the hub's envelope (a proxy's page, say): show what came back
        text = " ".join(response.text.split())[:300] or response.reason_phrase
        message, kind, param, code = f"the server answered HTTP {status}: {text}", None, None, None
    if status == 401 and not sent_key:
        message += " (this client sent no key: pass Client(api_key=...) or set HUB_API_KEY)"
    retry = response.headers.get("retry-after")
    cls = _error_class(status, code)
    return cls(message, status, kind, param, code, float(retry) if _number(retry) else None)


def _error_class(status: int, code: str | None) -> type:
    if status == 404:
        return ServerNotFoundError
    if status == 401:
        return ServerAuthError
    if status in (429, 503):
        return ServerBusyError
    if status == 504:
        return ServerTimeoutError
    if status in (400, 413, 422):
        return ServerOptionError if code == "invalid_option" else ServerInputError
    return ServerError


def _number(text) -> bool:
    try:
        float(text)
        return True
    except (TypeError, ValueError):
        return False


# -- the client -----------------------------------------------------------------------------------
class Client:
    """A connection to a hub server; ``run`` answers like ``hub.run``, with the same result classes."""

    def __init__(self, base_url: str, api_key: str | None = None, timeout: float = DEFAULT_TIMEOUT):
        try:
            import httpx
        except ImportError:
            raise DependencyMissingError("hub.client needs httpx: pip install 'mmhub[serve]'") from None
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise InputError(f"server URL {base_url!r} must start with http:// or https://, "
                             "e.g. http://127.0.0.1:8000")
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key if api_key is not None else os.environ.get("HUB_API_KEY") or None
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        self._http = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout)
        self._tasks: dict[tuple[str, str | None], dict] = {}

    def close(self) -> None:
        self._http.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- catalogue --------------------------------------------------------------------------------
    def list_models(self, task: str | None = None) -> list[dict]:
        """The servable models, as ``GET /v1/models`` lists them (id, task, modality, owned_by)."""
        models = self.request("GET", "/v1/models")["data"]
        if task is None:
            return models
        name = self._task_row(task)["name"]
        return [m for m in models if m.get("task") == name]

    def get_model(self, model: str) -> dict:
        """One model: its catalogue entry (``spec``), call ``options`` and the ``inputs`` its task takes."""
        return self.request("GET", f"/v1/models/{_quoted(model)}")

    def tasks(self) -> list[dict]:
        """The server's task table (``TaskInfo.to_dict()`` rows)."""
        return self.request("GET", "/v1/tasks")

    # -- running ----------------------------------------------------------------------------------
    def run(self, model: str, inputs, task: str | None = None, batch_size: int | None = None, **options):
        """Run ``model`` on one input (one result) or a list (a list of results), like ``hub.run``.

        ``batch_size`` is how many inputs go in one request (the server batches across requests itself).
        """
        row = self.task_of(model, task)
        kind, result_name = row["inputs"], row["result"]
        single = _single(inputs, kind)
        items = [inputs] if single else list(inputs)
        if not items:
            return []
        payload = [encode_input(x, kind, i) for i, x in enumerate(items)]
        sent = {k: _json_option(k, v) for k, v in options.items() if v is not None}
        results = []
        size = max(1, int(batch_size or REQUEST_ITEMS))
        for start in range(0, len(payload), size):
            body = {"inputs": payload[start:start + size], "options": sent}
            if task is not None:
                body["task"] = task
            answer = self.request("POST", f"/v1/run/{_quoted(model)}", json=body)
            results += [_result(result_name, r) for r in answer["results"]]
        return results[0] if single else results

    def embed(self, model: str, texts, dimensions: int | None = None):
        """Embeddings through ``POST /v1/embeddings`` (sent back as base64 float32): one or a list."""
        from hub.tasks.results import Embedding

        single = isinstance(texts, str)
        body = {"model": model, "input": texts, "encoding_format": "base64"}
        if dimensions is not None:
            body["dimensions"] = dimensions
        data = sorted(self.request("POST", "/v1/embeddings", json=body)["data"], key=lambda d: d["index"])
        vectors = [Embedding(_floats(d["embedding"])) for d in data]
        return vectors[0] if single else vectors

    def rerank(self, model: str, query: str, documents, top_n: int | None = None, raw_scores: bool = False):
        """Documents ranked against ``query`` through ``POST /v1/rerank``: a Classification as ``hub.run`` gives for
        text-ranking (each label a document, best first, with its score and its index in ``documents``)."""
        from hub.tasks.results import Classification, LabelScore

        body = {"model": model, "query": query, "documents": documents, "return_documents": True,
                "raw_scores": raw_scores, **({"top_n": top_n} if top_n is not None else {})}
        results = self.request("POST", "/v1/rerank", json=body)["results"]
        return Classification([LabelScore(r["document"], r["relevance_score"], r["index"]) for r in results])

    def health(self) -> dict:
        return self.request("GET", "/health")

    def ready(self) -> bool:
        """Whether the server reports ready (its preloaded models are loaded)."""
        try:
            return self.request("GET", "/ready").get("status") == "ready"
        except ServerBusyError:
            return False

    # -- plumbing ---------------------------------------------------------------------------------
    def request(self, method: str, path: str, **kwargs):
        """The decoded JSON answer; an error answer or a failed connection raises a ServerError."""
        import httpx

        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TimeoutException:
            raise ServerTimeoutError(f"the hub server at {self.base_url} did not answer {method} {path} within "
                                     f"{self._http.timeout.read} s; raise Client(timeout=...)") from None
        except httpx.TransportError as exc:
            raise ServerUnreachableError(f"cannot reach a hub server at {self.base_url} ({type(exc).__name__}: "
                                         f"{exc}); start one with `hub serve`, or check the URL") from None
        if response.status_code >= 400:
            raise error_from_response(response, bool(self.api_key))
        try:
            return response.json()
        except ValueError:
            raise ServerError(f"{self.base_url}{path} did not answer JSON; is it a hub server?",
                              response.status_code) from None

    def task_of(self, model: str, task: str | None = None) -> dict:
        """The task table row (name, inputs, result, ...) of ``model`` run for ``task``; asked once per pair."""
        key = (model, task)
        if key not in self._tasks:
            if task is None:
                info = self.get_model(model)
                task = info.get("task") or info["spec"]["task"]
            self._tasks[key] = self._task_row(task)
        return self._tasks[key]

    def _task_row(self, task: str) -> dict:
        """The server's task table row for a task name or alias."""
        wanted = task.strip().lower().replace("_", "-")
        rows = self.tasks()
        for row in rows:
            if wanted == row["name"] or wanted in row.get("aliases", []):
                return row
        from hub.errors import UnknownTaskError

        raise UnknownTaskError(task, sorted(r["name"] for r in rows))


# -- inputs ---------------------------------------------------------------------------------------
def _single(inputs, kind: str) -> bool:
    """Whether ``inputs`` is one input (as hub.run reads it), an audio ``(array, rate)`` pair included."""
    if kind == "audio" and _audio_pair(inputs):
        return True
    return not isinstance(inputs, (list, tuple))


def _audio_pair(item) -> bool:
    return (isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], numbers.Real)
            and not isinstance(item[1], bool) and not isinstance(item[0], (str, bytes, Path)))


def encode_input(item, kind: str, index: int):
    """One input as JSON: a string for text tasks, a ``data:`` URI for images and audio."""
    if kind == "text":
        if isinstance(item, dict):  # a structured input (a question-answering pair): sent as the object it is
            return item
        if not isinstance(item, str):
            raise InputError(f"input {index} must be text (a str), or the object a structured task takes (a dict), "
                             f"for this model, got {type(item).__name__}")
        return item
    if kind in ("image", "image+text"):
        return data_uri(*_image_bytes(item, index))
    if kind == "audio":
        return data_uri(*_audio_bytes(item, index))
    return _own_kind_input(item, kind, index)


def _own_kind_input(item, kind: str, index: int) -> str:
    """An input of a kind a plugin's task declares: a data: URI as it is, else a file's or bytes' content."""
    if isinstance(item, str) and item.startswith("data:"):
        return item
    if isinstance(item, (bytes, bytearray)):
        return data_uri(bytes(item), "application/octet-stream")
    if isinstance(item, (str, Path)):
        return data_uri(*_file_bytes(item, index, kind))
    raise InputError(f"input {index}: this client cannot send {type(item).__name__} for inputs of kind '{kind}'; "
                     "pass a file path, bytes or a data: URI")


def data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _image_bytes(item, index: int) -> tuple[bytes, str]:
    """(bytes, mime) of an image given as a path, bytes, a PIL image or an array."""
    if isinstance(item, (str, Path)):
        return _file_bytes(item, index, "image")
    if isinstance(item, (bytes, bytearray)):
        return bytes(item), _sniffed(bytes(item))
    if hasattr(item, "__array__") or type(item).__module__.startswith("PIL"):
        from hub.inputs import load_image

        buffer = io.BytesIO()
        load_image(item).save(buffer, format="PNG")  # the RGB pixels the pipeline would see, losslessly
        return buffer.getvalue(), "image/png"
    raise InputError(f"input {index}: cannot use {type(item).__name__} as an image; pass a path, bytes, "
                     "a PIL image or an array")


def _audio_bytes(item, index: int) -> tuple[bytes, str]:
    """(bytes, mime) of audio given as a path, bytes, ``(array, rate)`` or ``{"array", "sampling_rate"}``."""
    if isinstance(item, (str, Path)):
        return _file_bytes(item, index, "audio")
    if isinstance(item, (bytes, bytearray)):
        return bytes(item), _sniffed(bytes(item))
    if isinstance(item, dict) and "array" in item:
        item = (item["array"], item.get("sampling_rate", item.get("rate")))
    if isinstance(item, tuple) and len(item) == 2:
        return wav_bytes(*item, name=f"input {index}"), "audio/wav"
    raise InputError(f"input {index}: cannot use {type(item).__name__} as audio; pass a path, bytes, "
                     "(array, sample_rate) or {'array': ..., 'sampling_rate': ...}")


def wav_bytes(wave, rate, name: str = "the audio") -> bytes:
    """A float32 WAV file of mono or multi-channel samples, checked as the hub checks them."""
    import soundfile as sf

    from hub.inputs import check_sample_rate, mono_samples

    rate = check_sample_rate(rate, name)
    buffer = io.BytesIO()
    sf.write(buffer, mono_samples(wave, name), rate, format="WAV", subtype="FLOAT")
    return buffer.getvalue()


def _file_bytes(path, index: int, what: str) -> tuple[bytes, str]:
    path = Path(path).expanduser()
    if not path.is_file():
        problem = "is a directory" if path.is_dir() else "does not exist"
        raise InputError(f"input {index}: {what} file '{path}' {problem}")
    data = path.read_bytes()
    return data, MIME.get(path.suffix.lower()) or mimetypes.guess_type(path.name)[0] or _sniffed(data)


def _sniffed(data: bytes) -> str:
    """The MIME type from the first bytes (RIFF WEBP is an image); octet-stream when unknown."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return next((mime for magic, mime in MAGIC if data.startswith(magic)), "application/octet-stream")


def _json_option(name: str, value):
    """An option value as JSON: tuples become lists; functions cannot travel to a server."""
    if isinstance(value, (tuple, list)):
        value = list(value)
        if any(callable(v) for v in value):
            raise OptionError(f"option '{name}' holds a function, which cannot be sent to a server; pass strings, "
                              "or run the model in this process with hub.run")
    elif callable(value):
        raise OptionError(f"option '{name}' is a function, which cannot be sent to a server")
    return value


# -- results --------------------------------------------------------------------------------------
def _result(result_name: str, data):
    """A result dataclass from its JSON; a result class this hub does not know stays a dict."""
    from hub.tasks.results import RESULT_TYPES, result_from_dict

    if result_name not in RESULT_TYPES:
        return _plugin_result(result_name, data)
    try:
        return result_from_dict(result_name, data)
    except ValueError as exc:
        raise ServerError(f"the server's answer is not a {result_name} result ({exc}); are client and server "
                          "the same version of mmhub?") from None


def _plugin_result(result_ref: str, data):
    """A result class named "module:Class" (a plugin's, or a core task's such as text-to-speech's) read from its
    JSON when that module is installed here, else the dict."""
    from hub.tasks import list_tasks

    for info in list_tasks():
        if info.result == result_ref:
            cls = info.result_type()
            return cls.from_dict(data) if hasattr(cls, "from_dict") else data
    return data


def _floats(value) -> list[float]:
    """A vector sent as a list of floats or as base64 little-endian float32."""
    if isinstance(value, list):
        return [float(v) for v in value]
    import array
    import sys

    out = array.array("f")
    out.frombytes(base64.b64decode(value))
    if sys.byteorder == "big":
        out.byteswap()
    return out.tolist()


def _quoted(model: str) -> str:
    from urllib.parse import quote

    return quote(model, safe="")


# -- hub run --server -----------------------------------------------------------------------------
def run_on_server(server: str, model: str, inputs, task, batch_size, extra, labels, texts, top_k, as_json: bool,
                  local: dict) -> None:
    """``hub run --server URL``: the inputs and output of a local ``hub run``, the model run by the server."""
    from itertools import chain
    from types import SimpleNamespace

    from hub.run_inputs import RUN_CHUNK, call_options, input_chunks, no_input_error
    from hub.views import JsonArrayView, TableView, stop_writing

    given = [flag for flag, value in local.items() if value]
    if given:
        raise HubError(f"{', '.join(given)} cannot be used with --server: the server chose how it loads and runs "
                       "its models (see 'hub serve --help'); drop them, or run locally without --server")
    kwargs = call_options(extra, labels, texts, top_k)
    with Client(server) as client:
        row = client.task_of(model, task)
        named = SimpleNamespace(id=model, task=row["name"])
        chunks = input_chunks(inputs, row["inputs"], named, max(RUN_CHUNK, batch_size or 0))
        first = next(chunks, None)
        if first is None:
            raise no_input_error()
        view = JsonArrayView() if as_json else TableView()
        try:
            for names, items in chain([first], chunks):
                view.add(names, client.run(model, items, task=task, batch_size=batch_size, **kwargs))
            view.close()
        except BrokenPipeError:
            stop_writing()
