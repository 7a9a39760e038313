"""Cross-site requests to hub serve: bodies only with the content type their route declares (415 otherwise),
Origin and Host allow-lists (403 for other pages, 400 for DNS-rebinding hosts), and CORS for --cors-origin.
A real uvicorn server; no model is loaded (the gate answers before any route runs)."""
import pytest

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")

from hub.serve.sites import Sites, hostname, normal_origin  # noqa: E402
from serve_server import hub_app, running  # noqa: E402

KEY = "site-key"
FRIEND = "http://localhost:3000"
JSON_ROUTES = ["/v1/run/no-such-model", "/v1/embeddings", "/v1/rerank"]
UPLOAD_ROUTES = ["/v1/run/no-such-model", "/v1/audio/transcriptions"]


@pytest.fixture(scope="module")
def server():
    app = hub_app(allow=("no-model-matches-this",), sites=Sites(cors_origins=(FRIEND,)))
    with running(app) as url:
        yield url


@pytest.fixture(scope="module")
def keyed():
    with running(hub_app(allow=("no-model-matches-this",), api_key=KEY, sites=Sites(cors_origins=(FRIEND,)))) as url:
        yield url


def own_origin(url: str) -> str:
    return url  # http://127.0.0.1:PORT


def port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def refused(response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["code"] == code, error
    return error["message"]


# -- content types ------------------------------------------------------------------------------------
BODY = b'{"model": "no-such-model", "inputs": ["a cat"], "input": "a cat", "query": "q", "documents": ["d"]}'
NOT_JSON_TYPES = [None, "text/plain", "text/plain; charset=utf-8", "application/x-www-form-urlencoded",
                  "multipart/form-data; boundary=x", "application/xml", "text/json", "application/json-patch+json",
                  "application/octet-stream", "", "application"]


@pytest.mark.parametrize("path", JSON_ROUTES + ["/v1/audio/transcriptions"])
@pytest.mark.parametrize("content_type", NOT_JSON_TYPES)
def test_a_body_of_a_type_its_route_does_not_declare_is_415(server, path, content_type):
    if content_type and content_type.startswith("multipart/form-data") and path in UPLOAD_ROUTES:
        pytest.skip("an upload route takes multipart")
    headers = {} if content_type is None else {"Content-Type": content_type}
    response = httpx.post(server + path, content=BODY, headers=headers)
    message = refused(response, 415, "unsupported_media_type")
    assert path.split("/no-such")[0] in message and "Content-Type: " in message


@pytest.mark.parametrize("path", JSON_ROUTES)
def test_json_is_read_with_its_content_type_whatever_its_parameters(server, path):
    for content_type in ("application/json", "application/json; charset=utf-8", "Application/JSON"):
        response = httpx.post(server + path, content=BODY,
                              headers={"Content-Type": content_type})
        assert response.status_code != 415, (content_type, response.text)


def test_a_json_body_to_the_upload_only_route_is_415(server):
    response = httpx.post(server + "/v1/audio/transcriptions", json={"model": "x", "file": "abc"})
    assert "multipart/form-data" in refused(response, 415, "unsupported_media_type")


def test_the_schema_declares_the_content_types_the_gate_accepts(server):
    paths = httpx.get(server + "/openapi.json").json()["paths"]
    for path, types in [("/v1/run/{model_id}", {"application/json", "multipart/form-data"}),
                        ("/v1/embeddings", {"application/json"}), ("/v1/rerank", {"application/json"}),
                        ("/v1/audio/transcriptions", {"multipart/form-data"})]:
        assert set(paths[path]["post"]["requestBody"]["content"]) == types, path


# -- the attack: a page posting to the loopback server ------------------------------------------------
@pytest.mark.parametrize("origin", ["http://evil.example", "https://evil.example:8000", "null",
                                    "http://127.0.0.1.evil.example", "http://localhost:3001", "file://"])
def test_a_cross_origin_text_plain_post_is_refused(server, origin):
    """What a page can send without a CORS preflight: a text/plain POST. Refused, and never run."""
    response = httpx.post(f"{server}/v1/embeddings", content=b'{"model": "all-minilm-l6-v2", "input": "x"}',
                          headers={"Content-Type": "text/plain", "Origin": origin})
    message = refused(response, 403, "origin_not_allowed")
    assert "--cors-origin" in message
    same = httpx.post(f"{server}/v1/embeddings", content=b'{"model": "all-minilm-l6-v2", "input": "x"}',
                      headers={"Content-Type": "text/plain", "Origin": own_origin(server)})
    refused(same, 415, "unsupported_media_type")  # its own page may post, but only as JSON


@pytest.mark.parametrize("method, path", [("GET", "/v1/models"), ("GET", "/ready"), ("POST", "/v1/run/m"),
                                          ("GET", "/openapi.json"), ("GET", "/metrics")])
def test_pages_not_allowed_are_refused_on_every_kind_of_route(server, method, path):
    response = httpx.request(method, server + path, headers={"Origin": "http://evil.example"}, json={})
    refused(response, 403, "origin_not_allowed")
    assert "access-control-allow-origin" not in response.headers


def test_the_servers_own_pages_are_answered(server):
    loopback = [own_origin(server), f"http://localhost:{port(server)}", f"http://[::1]:{port(server)}"]
    for origin in loopback:
        response = httpx.get(server + "/v1/models", headers={"Origin": origin})
        assert response.status_code == 200, (origin, response.text)
    assert httpx.get(server + "/v1/models").status_code == 200  # no Origin: not a page


# -- Host (DNS rebinding) -----------------------------------------------------------------------------
@pytest.mark.parametrize("host", ["evil.example", "evil.example:8000", "127.0.0.1.nip.io", "localhost.evil.example",
                                  "attacker.test:80", "[not-an-address", "mymachine.lan"])
def test_a_host_that_names_another_site_is_400(server, host):
    for path in ("/v1/models", "/health", "/", "/static/app.js"):
        response = httpx.get(server + path, headers={"Host": host})
        assert "--allowed-host" in refused(response, 400, "host_not_allowed"), (host, path)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.1:8000", "localhost", "LOCALHOST:1", "localhost.",
                                  "app.localhost:9", "[::1]:8000", "10.1.2.3", "192.168.0.7:80"])
def test_addresses_and_localhost_are_answered(server, host):
    assert httpx.get(server + "/health", headers={"Host": host}).status_code == 200, host


def test_a_rebinding_page_is_refused_even_though_it_is_same_origin_to_itself(server):
    """DNS rebinding: the page at evil.example:PORT now resolves to 127.0.0.1, so its requests are same-origin."""
    host = f"evil.example:{port(server)}"
    response = httpx.post(server + "/v1/run/m", json={"inputs": ["x"]},
                          headers={"Host": host, "Origin": f"http://{host}"})
    refused(response, 400, "host_not_allowed")


@pytest.mark.parametrize("sites, host, allowed", [
    (Sites(allowed_hosts=("mymachine.lan",)), "mymachine.lan:8000", True),
    (Sites(allowed_hosts=("MyMachine.LAN",)), "mymachine.lan", True),
    (Sites(allowed_hosts=("mymachine.lan",)), "other.lan", False),
    (Sites(allowed_hosts=("*",)), "anything.example", True),
    (Sites(bind_host="gpu-box"), "gpu-box:8000", True),
    (Sites(bind_host="gpu-box"), "gpu-box.evil.example", False),
    (Sites(), None, True),
    (Sites(), "", False),
])
def test_the_host_allow_list(sites, host, allowed):
    assert sites.host_allowed(host) is allowed


@pytest.mark.parametrize("origin, host, kind", [
    ("http://127.0.0.1:8000", "127.0.0.1:8000", "same"),
    ("https://mymachine.lan", "mymachine.lan", "same"),
    ("http://localhost:8000", "127.0.0.1:8000", "cross"),
    ("http://localhost:3000", "127.0.0.1:8000", "cross"),
    ("http://LOCALHOST:3000/", "127.0.0.1:8000", "cross"),
    ("http://localhost:3001", "127.0.0.1:8000", None),
    ("http://evil.example", "127.0.0.1:8000", None),
    ("null", "127.0.0.1:8000", None),
    ("ftp://localhost:3000", "127.0.0.1:8000", None),
])
def test_the_origin_allow_list(origin, host, kind):
    assert Sites(cors_origins=(normal_origin(FRIEND),)).origin_kind(origin, host, 8000) == kind


def test_hostname():
    assert [hostname(h) for h in ("A.b:80", "[::1]:9", "::1", "x.", "[bad")] == ["a.b", "::1", "::1", "x", None]


# -- CORS for --cors-origin ---------------------------------------------------------------------------
def test_an_allowed_origin_gets_cors_answers_and_its_preflight_needs_no_key(keyed):
    preflight = httpx.options(keyed + "/v1/embeddings", headers={
        "Origin": FRIEND, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type"})
    assert preflight.status_code == 204, preflight.text
    assert preflight.headers["access-control-allow-origin"] == FRIEND
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
    answer = httpx.get(keyed + "/v1/models", headers={"Origin": FRIEND, "Authorization": f"Bearer {KEY}"})
    assert answer.status_code == 200 and answer.headers["access-control-allow-origin"] == FRIEND
    no_key = httpx.get(keyed + "/v1/models", headers={"Origin": FRIEND})
    assert no_key.status_code == 401 and no_key.headers["access-control-allow-origin"] == FRIEND  # readable error
    other = httpx.options(keyed + "/v1/embeddings", headers={"Origin": "http://evil.example",
                                                             "Access-Control-Request-Method": "POST"})
    refused(other, 403, "origin_not_allowed")
    assert "access-control-allow-origin" not in other.headers
    same = httpx.get(keyed + "/v1/models", headers={"Origin": keyed, "Authorization": f"Bearer {KEY}"})
    assert same.status_code == 200 and "access-control-allow-origin" not in same.headers
