"""hub serve's JSON bodies: a nesting depth limit (422 naming it, at any depth and shape, never a 500) and unknown
top-level fields refused with the valid ones listed, on every route that takes JSON. A real uvicorn server."""
import json

import pytest

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")

from hub.serve.body import json_depth  # noqa: E402
from hub.serve.limits import Limits  # noqa: E402
from serve_server import hub_app, running  # noqa: E402

MINILM = "all-minilm-l6-v2"
DEPTH = Limits().max_json_depth


@pytest.fixture(scope="module")
def served():
    app = hub_app(preload=(MINILM,), allow=(MINILM,))
    with running(app) as url:
        yield url, app


@pytest.fixture(scope="module")
def shallow():
    with running(hub_app(allow=("none",), limits=Limits(max_json_depth=5))) as url:
        yield url


def all_routes(routes):
    """Every route of the app, with those of included routers."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        yield from all_routes(inner.routes) if inner is not None else [route]


def json_routes(app) -> list[str]:
    """The path of every route that reads a JSON body, model ids filled in. Every route that takes a POST is
    in the gate's table of bodies, and all but the multipart upload of OpenAI's transcriptions read JSON."""
    posts = {r.path for r in all_routes(app.routes) if "POST" in (getattr(r, "methods", None) or ())}
    bodies = {route.path: types for route, types in app.state.hub.bodies}
    assert posts == set(bodies) and posts >= {"/v1/run/{model_id:path}", "/v1/embeddings", "/v1/rerank"}
    assert [p for p, types in bodies.items() if "application/json" not in types] == ["/v1/audio/transcriptions"]
    return [path.replace("{model_id:path}", MINILM) for path, types in bodies.items() if "application/json" in types]


def nested(depth: int, shape: str) -> bytes:
    """A body of exactly ``depth`` levels (the top-level object is one) in one of several shapes."""
    inner = depth - 1
    if shape == "arrays":
        return b'{"inputs": ' + b"[" * inner + b"]" * inner + b"}"
    if shape == "objects":
        return b'{"options": ' + b'{"a": ' * (inner - 1) + b"{}" + b"}" * (inner - 1) + b"}"
    if shape == "mixed":  # arrays and objects in turn, a number innermost
        opens = b"".join(b'{"k": ' if i % 2 else b"[" for i in range(inner))
        closes = b"".join(b"}" if i % 2 else b"]" for i in reversed(range(inner)))
        return b'{"inputs": ' + opens + b"1" + closes + b"}"
    if shape == "top-level array":
        return b"[" * depth + b"]" * depth
    if shape == "deep last item":
        return b'{"inputs": ["a", "b", ' + b"[" * (inner - 1) + b"]" * (inner - 1) + b"]}"
    raise AssertionError(shape)


SHAPES = ["arrays", "objects", "mixed", "top-level array", "deep last item"]


@pytest.mark.parametrize("shape", SHAPES)
def test_nested_builds_the_depth_it_says(shape):
    for depth in (3, 10, 33):
        body = nested(depth, shape)
        assert json_depth(body) == depth
        value = json.loads(body)  # valid JSON
        assert value is not None


def test_brackets_inside_strings_do_not_count():
    assert json_depth(b'{"a": "[[[[{{{{", "b": "\\"[[[", "c": ["]]]"]}') == 2


def post(url: str, path: str, body: bytes):
    return httpx.post(url + path, content=body, headers={"Content-Type": "application/json"}, timeout=60)


def depth_error(response) -> dict | None:
    """The error when the response is the depth limit's 422, else None."""
    assert response.status_code != 500, response.text
    error = response.json().get("error") if response.headers["content-type"].startswith("application/json") else None
    if error and error["code"] == "limit_max_json_depth":
        assert response.status_code == 422
        return error
    return None


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("depth", [DEPTH + 1, DEPTH + 7, 1000, 50_000])
def test_a_body_deeper_than_the_limit_is_422_naming_it_on_every_json_route(served, shape, depth):
    url, app = served
    for path in json_routes(app):
        error = depth_error(post(url, path, nested(depth, shape)))
        assert error is not None, (path, shape, depth)
        assert f"max_json_depth={DEPTH}" in error["message"] and "--max-json-depth" in error["message"]
        assert f" is {depth}," in error["message"]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("depth", [2, 5, DEPTH])
def test_a_body_within_the_limit_is_parsed(served, shape, depth):
    url, app = served
    for path in json_routes(app):
        response = post(url, path, nested(depth, shape))
        assert depth_error(response) is None and response.status_code < 500, (path, response.text)


def test_the_limit_is_a_flag_and_applies_to_the_multipart_options_part(shallow):
    assert depth_error(post(shallow, "/v1/run/m", nested(5, "arrays"))) is None
    error = depth_error(post(shallow, "/v1/run/m", nested(6, "objects")))
    assert error and "max_json_depth=5" in error["message"]
    form = httpx.post(shallow + "/v1/run/m", files={"file": ("a.png", b"x")},
                      data={"options": "[" * 50_000 + "]" * 50_000})
    error = depth_error(form)
    assert error and "max_json_depth=5" in error["message"]


def test_a_deep_body_is_refused_without_a_traceback_and_the_server_goes_on(served, capfd):
    url, app = served
    for _ in range(3):
        assert depth_error(post(url, f"/v1/run/{MINILM}", b"[" * 200_000 + b"]" * 200_000))
    assert "RecursionError" not in capfd.readouterr().err
    assert post(url, f"/v1/run/{MINILM}", b'{"inputs": ["a cat"]}').status_code == 200


@pytest.mark.parametrize("body", [b"", b"{", b'{"inputs": [1,]}', b"\xff\xfe", b"NaN-ish", b'"a string"', b"[]",
                                  b"null"])
def test_a_body_that_is_not_a_json_object_is_422(served, body):
    url, app = served
    for path in json_routes(app):
        response = post(url, path, body)
        assert response.status_code == 422, (path, body, response.text)
        assert response.json()["error"]["code"] in ("invalid_json", "invalid_request")


# -- unknown fields -----------------------------------------------------------------------------------
@pytest.mark.parametrize("unknown", ["optins", "Inputs", "input_", "extra", "model_id", ""])
def test_an_unknown_field_is_422_listing_the_valid_ones_on_every_json_route(served, unknown):
    """The meta-test: every route the app has that reads JSON, found from its routes, refuses unknown fields."""
    url, app = served
    paths = json_routes(app)
    assert {f"/v1/run/{MINILM}", "/v1/embeddings", "/v1/rerank"} <= set(paths)
    schema = httpx.get(url + "/openapi.json").json()["paths"]
    for path in paths:
        template = path.replace(MINILM, "{model_id}")
        declared = schema[template]["post"]["requestBody"]["content"]["application/json"]["schema"]
        valid = list(declared["properties"])
        assert declared.get("additionalProperties") is False, path
        response = post(url, path, json.dumps({unknown: 1}).encode())
        assert response.status_code == 422, (path, response.text)
        error = response.json()["error"]
        assert error["code"] == "unknown_field" and error["param"] == unknown, error
        assert f"'{unknown}'" in error["message"] and all(name in error["message"] for name in valid), error


def test_a_misspelt_field_beside_valid_ones_is_refused_not_ignored(served):
    url, _ = served
    response = httpx.post(f"{url}/v1/run/{MINILM}", json={"inputs": ["a cat"], "optins": {"normalize": False}})
    assert response.status_code == 422
    assert response.json()["error"]["message"] == ("unknown field 'optins' in the request body; the valid fields are "
                                                   "inputs, options, task")
    two = httpx.post(url + "/v1/embeddings", json={"model": MINILM, "input": "x", "dimensons": 3, "usr": "me"})
    assert "unknown fields 'dimensons', 'usr'" in two.json()["error"]["message"]


def test_an_unknown_part_of_a_multipart_upload_is_422(served):
    url, _ = served
    response = httpx.post(f"{url}/v1/run/{MINILM}", files={"file": ("a.txt", b"a cat")}, data={"optins": "{}"})
    assert response.status_code == 422 and response.json()["error"]["code"] == "unknown_field"
    assert "file, options, task" in response.json()["error"]["message"]
