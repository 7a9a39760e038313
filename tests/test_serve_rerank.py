"""POST /v1/rerank of hub serve (infinity's and TEI's shapes) and Client.rerank, against a real uvicorn server.

A tiny cross-encoder and a tiny NLI model are built offline and preloaded by path. Every score is compared
with ``hub.run`` on the same query and documents; bad requests get the server's error envelope.
"""
from concurrent.futures import ThreadPoolExecutor

import pytest

pytestmark = pytest.mark.slow  # serves tiny models

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")
pytest.importorskip("transformers")

import hub  # noqa: E402
from plugins.tiny_pairs import save_cross_encoder, save_nli  # noqa: E402
from serve_server import hub_app, running  # noqa: E402

QUERY = "what is the capital of france"
DOCS = ["paris is the capital of france", "berlin is a city in germany", "the river is long", "music and sports"]
TOL = 1e-5


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("pairs")
    return {"ce": str(save_cross_encoder(root / "tiny-ce")), "nli": str(save_nli(root / "tiny-nli"))}


@pytest.fixture(scope="module")
def server(dirs):
    from hub.serve.limits import Limits

    app = hub_app(preload=(dirs["ce"], dirs["nli"]), limits=Limits(max_items=8, max_text_chars=500))
    with running(app) as url:
        yield url


def expected(directory, query=QUERY, docs=DOCS, **options) -> dict:
    """index -> score as hub.run gives them."""
    result = hub.run(directory, query, texts=docs, top_k=len(docs), device="cpu", dtype="fp32", **options)
    return {label.index: label.score for label in result.labels}


def post(server, body):
    return httpx.post(server + "/v1/rerank", json=body, timeout=60)


def test_infinity_shape_ranks_like_hub_run(server, dirs):
    answer = post(server, {"model": dirs["ce"], "query": QUERY, "documents": DOCS})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    want = expected(dirs["ce"])
    results = body["results"]
    assert sorted(r["index"] for r in results) == list(range(len(DOCS)))
    assert [r["relevance_score"] for r in results] == sorted((r["relevance_score"] for r in results), reverse=True)
    assert max(abs(r["relevance_score"] - want[r["index"]]) for r in results) <= TOL
    assert all(r["document"] is None for r in results)
    assert body["object"] == "rerank" and body["model"] == "tiny-ce"
    assert body["usage"]["prompt_tokens"] == body["usage"]["total_tokens"] > len(DOCS) * len(QUERY.split())

    top = post(server, {"model": dirs["ce"], "query": QUERY, "documents": DOCS, "top_n": 2,
                        "return_documents": True}).json()["results"]
    assert [r["index"] for r in top] == [r["index"] for r in results[:2]]
    assert [r["document"] for r in top] == [DOCS[r["index"]] for r in results[:2]]


def test_tei_shape_with_raw_scores_and_text(server, dirs):
    answer = post(server, {"model": dirs["ce"], "query": QUERY, "texts": DOCS, "raw_scores": True, "return_text": True})
    assert answer.status_code == 200, answer.text
    rows = answer.json()
    want = expected(dirs["ce"], raw_scores=True)
    assert isinstance(rows, list) and sorted(r["index"] for r in rows) == list(range(len(DOCS)))
    assert max(abs(r["score"] - want[r["index"]]) for r in rows) <= TOL
    assert all(r["text"] == DOCS[r["index"]] for r in rows)
    assert any(r["score"] > 1 or r["score"] < 0 for r in rows)  # logits, not probabilities
    plain = post(server, {"model": dirs["ce"], "query": QUERY, "texts": DOCS}).json()
    assert all(set(r) == {"index", "score"} and 0 < r["score"] < 1 for r in plain)


def test_concurrent_requests_each_get_their_own_scores(server, dirs):
    queries = [QUERY, "where is the river", "music", "who lives in berlin"] * 3

    def ask(query):
        return post(server, {"model": dirs["ce"], "query": query, "documents": DOCS}).json()["results"]

    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(ask, queries))
    for query, results in zip(queries, answers):
        want = expected(dirs["ce"], query)
        assert max(abs(r["relevance_score"] - want[r["index"]]) for r in results) <= TOL


def test_client_rerank_equals_hub_run(server, dirs):
    from hub.client import Client

    with Client(server) as client:
        got = client.rerank(dirs["ce"], QUERY, DOCS, top_n=3)
    want = hub.run(dirs["ce"], QUERY, texts=DOCS, top_k=3, device="cpu", dtype="fp32")
    assert [(l.label, l.index) for l in got.labels] == [(l.label, l.index) for l in want.labels]
    assert max(abs(a.score - b.score) for a, b in zip(got.labels, want.labels)) <= TOL


@pytest.mark.parametrize("change, status, param, words", [
    ({"documents": []}, 400, "documents", ["no documents"]),
    ({"documents": None}, 400, "documents", ["no documents"]),
    ({"documents": None, "texts": []}, 400, "texts", ["no documents"]),
    ({"texts": DOCS}, 400, "documents", ["once"]),
    ({"query": ""}, 400, "query", ["'query' is empty"]),
    ({"query": "   "}, 400, "query", ["'query' is empty"]),
    ({"query": 7}, 400, "query", ["'query' must be a string"]),
    ({"documents": ["fine", 3]}, 400, "documents", ["'documents[1]' must be a string"]),
    ({"documents": ["fine", ""]}, 400, "documents", ["'documents[1]' is empty"]),
    ({"top_n": 0}, 400, "top_n", ["'top_n' must be at least 1"]),
    ({"top_n": -2}, 400, "top_n", ["'top_n'"]),
    ({"documents": ["d"] * 9}, 422, "inputs", ["max_items=8", "--max-items"]),
    ({"query": "q" * 501}, 422, "inputs", ["max_text_chars=500"]),
    ({"model": None}, 422, "model", ["invalid request"]),
    ({"model": "no-such-reranker"}, 404, "model", ["no-such-reranker"]),
    ({"model": "nli"}, 400, "model", ["zero-shot-classification model", "text-ranking"]),
    ({"raw_scores": "sometimes"}, 422, "raw_scores", ["invalid request"]),
])
def test_bad_requests_get_the_error_envelope(server, dirs, change, status, param, words):
    body = {"model": dirs["ce"], "query": QUERY, "documents": DOCS, **change}
    if body["model"] == "nli":
        body["model"] = dirs["nli"]
    body = {k: v for k, v in body.items() if v is not None}
    answer = post(server, body)
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["param"] == param and all(w in error["message"] for w in words), error


def test_client_rerank_raises_the_servers_error(server, dirs):
    from hub.client import Client, ServerInputError

    with Client(server) as client, pytest.raises(ServerInputError, match="'top_n' must be at least 1"):
        client.rerank(dirs["ce"], QUERY, DOCS, top_n=0)


def test_generated_requests_get_no_500_and_conforming_responses(server, dirs):
    """schemathesis cases for /v1/rerank (valid and invalid), half of them naming the served cross-encoder."""
    schemathesis = pytest.importorskip("schemathesis")
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    checks = [getattr(schemathesis.checks, name) for name in (
        "not_a_server_error", "status_code_conformance", "content_type_conformance", "response_schema_conformance",
        "negative_data_rejection")]
    schema = schemathesis.openapi.from_url(server + "/openapi.json")
    operation = next(r.ok() for r in schema.get_all_operations() if r.ok().path == "/v1/rerank")

    @given(case=operation.as_strategy() | operation.as_strategy(generation_mode=schemathesis.GenerationMode.NEGATIVE),
           aimed=st.booleans())
    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None, derandomize=True)
    def check(case, aimed):
        if aimed and isinstance(case.body, dict) and "model" in case.body:
            case.body["model"] = dirs["ce"]
        case.call_and_validate(checks=checks)

    check()
