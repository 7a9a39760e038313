"""Property-based fuzzing of hub serve's OpenAPI schema with schemathesis against a real server:
no generated request gets a 500, every response conforms to the schema (status, content type, body), and
schema and behaviour agree: a request the schema refuses is refused, and one it allows is refused only for
what no schema can say (see SEMANTIC).

Cases are drawn from each operation's schemathesis strategy inside a hypothesis test (schemathesis' own
pytest plugin is not used: it does not run under the pinned pytest).
"""
import pytest

pytestmark = pytest.mark.slow  # fuzzes the server's schema

pytest.importorskip("fastapi")
schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from serve_server import hub_app, running  # noqa: E402

MINILM = "all-minilm-l6-v2"
KEY = "fuzz-key"
HEADERS = {"Authorization": f"Bearer {KEY}"}
# Not a 500; status, content type, headers and body as the schema says; schema-invalid requests refused (4xx).
CHECKS = [getattr(schemathesis.checks, name) for name in (
    "not_a_server_error", "status_code_conformance", "content_type_conformance", "response_schema_conformance",
    "response_headers_conformance", "negative_data_rejection")]
# The refusals of schema-valid requests that no schema can express: what the model named takes (its options, its
# tasks, its embedding size, its longest text, its kind of input), what uploaded bytes hold (text, an image,
# audio) and the server's limits (codes limit_*). Any other refusal of a schema-valid request (schemathesis'
# ST202) means the schema and the behaviour disagree.
SEMANTIC = {"invalid_option", "option_over_limit", "invalid_input", "invalid_image", "invalid_audio", "task_mismatch",
            "not_an_embedding_model", "not_a_speech_model", "not_a_ranking_model", "invalid_dimensions",
            "dimensions_unsupported", "language_unsupported", "prompt_unsupported", "temperature_unsupported",
            "context_length_exceeded", "model_load_failed"}
ROUTES = ["/v1/embeddings", "/v1/audio/transcriptions", "/v1/run/{model_id}", "/v1/rerank", "/v1/models/{model_id}",
          "/v1/models", "/v1/tasks", "/health", "/ready", "/metrics"]


@pytest.fixture(scope="module")
def served():
    # only MiniLM may be loaded, so generated model ids are answered at once (404) instead of loading models
    with running(hub_app(preload=(MINILM,), allow=(MINILM,), api_key=KEY)) as url:
        yield url


@pytest.fixture(scope="module")
def api_schema(served):
    return schemathesis.openapi.from_url(served + "/openapi.json", headers=HEADERS)


def operations(schema) -> list:
    return [result.ok() for result in schema.get_all_operations()]


def test_every_route_is_in_the_schema(api_schema):
    paths = {op.path for op in operations(api_schema)}
    assert set(ROUTES) <= paths


def aim_at_the_served_model(case) -> None:
    if case.path_parameters and "model_id" in case.path_parameters:
        case.path_parameters["model_id"] = MINILM
    if isinstance(case.body, dict) and "model" in case.body:
        case.body["model"] = MINILM


def accepted_unless_semantic(response) -> None:
    """A schema-valid request is not refused, but for what no schema can express (SEMANTIC)."""
    if response.status_code not in (400, 413, 415, 422):
        return
    code = response.json()["error"]["code"]
    assert code in SEMANTIC or code.startswith("limit_"), (
        f"a schema-valid request was refused ({response.status_code}, {code}): {response.text}\n"
        f"request: {response.request.method} {response.request.url} {(response.request.body or b'')[:500]!r}")


@pytest.mark.parametrize("path", ROUTES)
def test_generated_requests_get_no_500_and_conforming_responses(api_schema, path):
    operation = next(op for op in operations(api_schema) if op.path == path)
    negative = operation.as_strategy(generation_mode=schemathesis.GenerationMode.NEGATIVE)

    @given(case=st.tuples(st.just(True), operation.as_strategy()) | st.tuples(st.just(False), negative),
           served=st.booleans())
    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None, derandomize=True)
    def check(case, served):
        valid, case = case
        if served:  # half the cases name the model that is served, so they reach the model and its checks
            aim_at_the_served_model(case)
        response = case.call_and_validate(headers=HEADERS, checks=CHECKS)
        if valid:
            accepted_unless_semantic(response)

    check()


def test_fuzzing_reached_the_model(served):
    """The generated requests that named the served model were run by it, not only refused."""
    import re

    import httpx

    metrics = httpx.get(served + "/metrics", headers=HEADERS).text
    answered = dict(re.findall(r'hub_requests_total{route="(/v1/embeddings)",status="200"} (\S+)', metrics))
    assert float(answered.get("/v1/embeddings", 0)) > 0, metrics
