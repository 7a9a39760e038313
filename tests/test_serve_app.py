"""hub serve's app: auth on every route, health and readiness, metrics, docs, native routes for image,
audio and CLIP tasks (JSON and multipart), option errors, and graceful shutdown. A real uvicorn server."""
import asyncio
import base64
import io
import threading

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # serves tiny models

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")

import hub  # noqa: E402
from plugins.tiny_models import save_ctc, save_openclip, save_timm  # noqa: E402
from serve_server import hub_app, running  # noqa: E402

MINILM = "all-minilm-l6-v2"
KEY = "s3cret-key"


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    return {"timm": save_timm(root / "tiny-timm"), "clip": save_openclip(root / "tiny-clip").resolve(),
            "ctc": save_ctc(root / "tiny-ctc")}


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    """Two PNG images and a wav file, on disk and as bytes."""
    import soundfile as sf
    from PIL import Image

    root = tmp_path_factory.mktemp("media")
    rng = np.random.default_rng(0)
    paths = []
    for i, size in enumerate([(40, 30), (64, 64)]):
        path = root / f"img{i}.png"
        Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    wav = root / "tone.wav"
    t = np.arange(16000) / 16000
    sf.write(str(wav), (0.3 * np.sin(2 * np.pi * 300 * t)).astype(np.float32), 16000)
    return {"images": paths, "wav": wav}


@pytest.fixture(scope="module")
def server(dirs):
    app = hub_app(preload=(MINILM, str(dirs["timm"]), str(dirs["clip"]), str(dirs["ctc"])), api_key=KEY)
    with running(app) as url:
        yield url, app


def auth():
    return {"Authorization": f"Bearer {KEY}"}


def data_uri(path, mime="image/png") -> str:
    return f"data:{mime};base64," + base64.b64encode(path.read_bytes()).decode()


def local(model, inputs, **options):
    return [r.to_dict() for r in hub.run(model, inputs, device="cpu", dtype="fp32", **options)]


def close(a, b, tol=1e-5):
    """Two result dicts equal, numbers within ``tol``."""
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(close(a[k], b[k], tol) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(close(x, y, tol) for x, y in zip(a, b))
    if isinstance(a, float):
        return abs(a - b) <= tol
    return a == b


# -- auth ------------------------------------------------------------------------------------------------
def concrete(path: str) -> str:
    return path.replace("{model_id:path}", MINILM).replace("{model_id}", MINILM).replace("{path:path}", "app.js")


def all_routes(routes):
    """Every route, with those of included routers (no prefixes are used)."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        yield from all_routes(inner.routes) if inner is not None else [route]


def test_no_route_is_reachable_without_the_key_but_health_and_the_page(server):
    url, app = server
    from starlette.routing import Mount

    checked = 0
    for route in all_routes(app.routes):
        methods = sorted(getattr(route, "methods", None) or {"GET"})
        path = concrete(route.path) + ("/index.html" if isinstance(route, Mount) else "")
        for method in methods:
            if method == "HEAD":
                continue
            open_ = route.path in ("/health", "/", "/docs", "/favicon.ico") or isinstance(route, Mount)
            no_key = httpx.request(method, url + path)
            wrong = httpx.request(method, url + path, headers={"Authorization": "Bearer wrong"})
            if open_:  # answered without the key (a mount's index.html may not exist: 404, not 401)
                assert no_key.status_code == 200 or (isinstance(route, Mount) and no_key.status_code == 404), \
                    (method, path, no_key.status_code)
                continue
            for response in (no_key, wrong):
                assert response.status_code == 401, (method, path, response.status_code)
                assert response.json()["error"]["code"] == "invalid_api_key"
                assert response.headers["www-authenticate"] == "Bearer"
            with_key = httpx.request(method, url + path, headers=auth(), json={"inputs": ["a cat"]}
                                     if method == "POST" else None)
            assert with_key.status_code != 401, (method, path)
            checked += 1
    assert checked >= 9
    assert httpx.get(url + "/v1/models", headers={"Authorization": KEY}).status_code == 401  # no scheme


# -- ops ---------------------------------------------------------------------------------------------
def test_health_ready_metrics_and_docs(server, dirs):
    url, _ = server
    assert httpx.get(url + "/health").json() == {"status": "ok"}
    ready = httpx.get(url + "/ready", headers=auth()).json()
    assert ready["status"] == "ready" and {MINILM, "tiny-timm", str(dirs["clip"]), "tiny-ctc"} <= set(ready["models"])
    httpx.post(f"{url}/v1/run/{MINILM}", json={"inputs": ["a cat"]}, headers=auth())
    metrics = httpx.get(url + "/metrics", headers=auth())
    assert metrics.headers["content-type"].startswith("text/plain")
    for name in ("hub_requests_total", "hub_request_seconds_bucket", "hub_queue_depth", "hub_batch_size_bucket",
                 'hub_model_loaded{model="tiny-timm"} 1.0', "hub_models_loaded 4.0"):
        assert name in metrics.text, name
    docs = httpx.get(url + "/docs", headers=auth()).text
    assert "swagger" in docs.lower() and "cdn" not in docs.lower()  # works offline: Swagger UI is served here
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        assert f"/static-docs/{asset}" in docs
        served = httpx.get(f"{url}/static-docs/{asset}")
        assert served.status_code == 200 and len(served.content) > 10_000
    schema = httpx.get(url + "/openapi.json", headers=auth()).json()
    assert {"/v1/embeddings", "/v1/audio/transcriptions", "/v1/run/{model_id}", "/ready"} <= set(schema["paths"])
    assert httpx.get(url + "/", headers=auth()).headers["content-type"].startswith("text/html")


def test_ready_is_503_while_a_preloaded_model_cannot_load():
    with running(hub_app(preload=("no-such-model",)), ready=False) as url:
        for _ in range(100):
            response = httpx.get(url + "/ready")
            if "no-such-model" in response.text:
                break
        assert response.status_code == 503
        assert "unknown model id 'no-such-model'" in response.json()["error"]["message"]
        assert httpx.get(url + "/health").status_code == 200


def test_ready_is_503_when_a_model_worker_has_died(monkeypatch):
    from hub.serve.batcher import Batcher

    with running(hub_app(preload=(MINILM,))) as url:
        def broken(self, *args):
            raise RuntimeError("worker fault injected by the test")

        monkeypatch.setattr(Batcher, "take", broken)
        response = httpx.post(f"{url}/v1/run/{MINILM}", json={"inputs": ["a cat"]})
        assert response.status_code == 503 and "fault injected" in response.json()["error"]["message"]
        ready = httpx.get(url + "/ready")
        assert ready.status_code == 503 and f"the worker of {MINILM} has stopped" in ready.text
        assert httpx.post(f"{url}/v1/run/{MINILM}", json={"inputs": ["a"]}).json()["error"]["code"] == "worker_died"


# -- native routes -----------------------------------------------------------------------------------
def test_text_results_are_those_of_hub_run(server):
    url, _ = server
    response = httpx.post(f"{url}/v1/run/{MINILM}", json={"inputs": ["a cat", "a dog"]}, headers=auth()).json()
    assert response["model"] == MINILM and response["task"] == "text-embedding"
    assert close(response["results"], local(MINILM, ["a cat", "a dog"]))


def test_images_as_data_uris_base64_and_multipart(server, dirs, media):
    url, _ = server
    images = media["images"]
    expected = local(str(dirs["timm"]), [str(p) for p in images], top_k=2)
    inputs = [data_uri(images[0]), base64.b64encode(images[1].read_bytes()).decode()]
    as_json = httpx.post(f"{url}/v1/run/tiny-timm", json={"inputs": inputs, "options": {"top_k": 2}},
                         headers=auth()).json()
    assert as_json["task"] == "image-classification" and close(as_json["results"], expected)
    files = [("file", (p.name, p.read_bytes(), "image/png")) for p in images]
    form = httpx.post(f"{url}/v1/run/tiny-timm", files=files, data={"options": '{"top_k": 2}'}, headers=auth())
    assert close(form.json()["results"], expected)
    plain = httpx.post(f"{url}/v1/run/tiny-timm", data={"file": "not an upload"}, files=files[:1], headers=auth())
    assert plain.status_code == 422 and "must be a file upload" in plain.json()["error"]["message"]
    embed = httpx.post(f"{url}/v1/run/tiny-timm", json={"inputs": inputs, "task": "image-embedding"},
                       headers=auth()).json()
    assert embed["task"] == "image-embedding"
    assert close(embed["results"], local(str(dirs["timm"]), [str(p) for p in images], task="image-embedding"))


def test_clip_tasks_with_their_options(server, dirs, media):
    url, _ = server
    images = media["images"]
    body = {"inputs": [data_uri(p) for p in images], "options": {"labels": ["cat", "dog", "car"]}}
    zero_shot = httpx.post(f"{url}/v1/run/{dirs['clip']}", json=body, headers=auth()).json()
    assert close(zero_shot["results"], local(str(dirs["clip"]), [str(p) for p in images],
                                             labels=["cat", "dog", "car"]))
    body = {"inputs": [data_uri(images[0])], "task": "image-text-similarity", "options": {"texts": ["a", "b"]}}
    similarity = httpx.post(f"{url}/v1/run/{dirs['clip']}", json=body, headers=auth()).json()
    assert similarity["task"] == "image-text-similarity"
    assert close(similarity["results"], local(str(dirs["clip"]), [str(images[0])], task="image-text-similarity",
                                              texts=["a", "b"]))
    embedded = httpx.post(f"{url}/v1/embeddings", headers=auth(), json={
        "model": str(dirs["clip"]), "modality": "image", "input": [data_uri(images[1])], "encoding_format": "float"}).json()
    assert np.allclose(embedded["data"][0]["embedding"], similarity_of(url, dirs, images[1]), atol=1e-5)
    typed = httpx.post(f"{url}/v1/embeddings", headers=auth(), json={
        "model": str(dirs["clip"]), "encoding_format": "float",
        "input": [{"type": "image_url", "image_url": {"url": data_uri(images[1])}}]}).json()
    assert typed["data"][0]["embedding"] == embedded["data"][0]["embedding"]


def test_vision_models_embed_images_on_the_embeddings_route(server, dirs, media):
    url, _ = server
    images = media["images"]
    response = httpx.post(f"{url}/v1/embeddings", headers=auth(), json={
        "model": "tiny-timm", "modality": "image", "input": [data_uri(p) for p in images], "encoding_format": "float"})
    expected = local(str(dirs["timm"]), [str(p) for p in images], task="image-embedding")
    assert [np.allclose(d["embedding"], e["embedding"], atol=1e-5) for d, e in zip(response.json()["data"], expected)] \
        == [True, True]
    assert response.json()["usage"] == {"prompt_tokens": 0, "total_tokens": 0}
    as_text = httpx.post(f"{url}/v1/embeddings", headers=auth(), json={"model": "tiny-timm", "input": "a cat"})
    assert as_text.status_code == 400 and '"modality": "image"' in as_text.json()["error"]["message"]
    dims = httpx.post(f"{url}/v1/embeddings", headers=auth(), json={
        "model": "tiny-timm", "modality": "image", "input": [data_uri(images[0])], "dimensions": 4})
    assert dims.status_code == 400 and dims.json()["error"]["param"] == "dimensions"


def similarity_of(url, dirs, image):
    body = {"inputs": [data_uri(image)], "task": "image-text-similarity", "options": {"texts": ["x"]}}
    return httpx.post(f"{url}/v1/run/{dirs['clip']}", json=body, headers=auth()).json()["results"][0][
        "image_embeddings"][0]


def test_audio_as_multipart_and_data_uri(server, dirs, media):
    url, _ = server
    expected = local(str(dirs["ctc"]), [str(media["wav"])])
    wav = media["wav"].read_bytes()
    form = httpx.post(f"{url}/v1/run/tiny-ctc", files={"file": ("tone.wav", wav, "audio/wav")}, headers=auth())
    assert form.status_code == 200 and close(form.json()["results"], expected)
    as_json = httpx.post(f"{url}/v1/run/tiny-ctc", json={"inputs": [data_uri(media["wav"], "audio/wav")]},
                         headers=auth())
    assert close(as_json.json()["results"], expected)


@pytest.mark.parametrize("body, status, words", [
    ({"inputs": ["a"], "options": {"top_kk": 2}}, 400, "does not take the option 'top_kk'"),
    ({"inputs": ["a"], "options": {"top_k": 0}}, 400, "option 'top_k'"),
    ({"inputs": ["a"], "options": {"top_k": "many"}}, 400, "option 'top_k'"),
    ({"inputs": ["a"], "options": []}, 422, "options: Input should be a valid dictionary"),
    ({"inputs": []}, 400, "no inputs"),
    ({"inputs": "a cat"}, 422, "inputs"),
    ({"inputs": [3]}, 400, "input 0 must be a string"),
    ({"inputs": ["a"], "task": "image-classification"}, 400, "cannot serve the task 'image-classification'"),
    ({"inputs": ["a"], "task": "telepathy"}, 400, "unknown task 'telepathy'"),
])
def test_bad_requests_name_the_problem(server, dirs, body, status, words):
    url, _ = server
    model = "tiny-timm" if "top_k" in str(body) else MINILM
    if model == "tiny-timm" and body["inputs"] == ["a"]:
        body = {**body, "inputs": [base64.b64encode(b"\x89PNG").decode()]}
    response = httpx.post(f"{url}/v1/run/{model}", json=body, headers=auth())
    assert response.status_code == status, response.text
    assert words in response.json()["error"]["message"]


def test_bad_media_is_400_naming_the_input(server):
    url, _ = server
    for model, item, words in [("tiny-timm", "data:image/png;base64,@@@", "not valid base64"),
                               ("tiny-timm", base64.b64encode(b"no image").decode(), "input 0 is not a readable image"),
                               ("tiny-ctc", base64.b64encode(b"no audio").decode(), "input 0 is not readable audio"),
                               ("tiny-timm", "data:image/png,abc", "without ';base64,'")]:
        response = httpx.post(f"{url}/v1/run/{model}", json={"inputs": [item]}, headers=auth())
        assert response.status_code == 400 and words in response.json()["error"]["message"], response.text


def test_model_details_and_tasks_let_clients_build_themselves(server, dirs):
    url, _ = server
    detail = httpx.get(f"{url}/v1/models/{dirs['clip']}", headers=auth()).json()
    assert detail["inputs"] == "image" and detail["spec"]["task"] == "zero-shot-image-classification"
    assert {"labels", "templates", "top_k"} <= {o["name"] for o in detail["options"]}
    assert all({"name", "type", "default", "help"} <= set(o) for o in detail["options"])
    lazy = httpx.get(f"{url}/v1/models/distilbert-sst2", headers=auth()).json()  # not loaded: from the hook
    assert lazy["task"] == "text-classification" and [o["name"] for o in lazy["options"]] == ["top_k"]
    tasks = httpx.get(f"{url}/v1/tasks", headers=auth()).json()
    assert {"name": "speech-recognition", "inputs": "audio"}.items() <= next(
        t for t in tasks if t["name"] == "speech-recognition").items()
    missing = httpx.get(f"{url}/v1/models/nope", headers=auth())
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "model_not_found"


def test_allow_limits_the_models_loaded_on_request():
    with running(hub_app(allow=("bge-*",))) as url:
        refused = httpx.post(f"{url}/v1/run/{MINILM}", json={"inputs": ["a"]})
        assert refused.status_code == 404 and "--allow" in refused.json()["error"]["message"]
        listed = {m["id"] for m in httpx.get(url + "/v1/models").json()["data"]}
        assert listed and all(m.startswith("bge-") for m in listed)


def test_lazy_loading_does_not_block_requests_to_loaded_models(monkeypatch):
    from hub.serve import models

    release = threading.Event()
    real = models.ModelHost.load_sync

    def slow_load(self, name, spec):
        if name != MINILM:  # another model's load takes until the test releases it
            release.wait(30)
        return real(self, name, spec)

    monkeypatch.setattr(models.ModelHost, "load_sync", slow_load)

    async def scenario(url):
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            loading = asyncio.create_task(client.post("/v1/run/bge-small-en-v1.5", json={"inputs": ["a"]}))
            await asyncio.sleep(0.2)
            quick = await client.post(f"/v1/run/{MINILM}", json={"inputs": ["a cat"]})
            still_loading = not loading.done()
            release.set()
            return quick, still_loading, await loading

    with running(hub_app(preload=(MINILM,))) as url:
        quick, still_loading, slow = asyncio.run(scenario(url))
    assert quick.status_code == 200 and still_loading
    assert slow.status_code in (200, 503)  # 503 when the bge weights are not on this machine


def test_shutdown_lets_requests_in_flight_finish_and_refuses_new_ones():
    from hub.serve.limits import Limits

    app = hub_app(preload=(MINILM,), limits=Limits(max_wait_ms=400, workers=1))
    with running(app) as url:
        result = {}
        thread = threading.Thread(target=lambda: result.setdefault("r", httpx.post(
            f"{url}/v1/run/{MINILM}", json={"inputs": ["a cat", "a dog"]}, timeout=30)))
        thread.start()
        import time

        time.sleep(0.15)  # the request waits in its batch window
        app.state.hub.begin_shutdown()
        refused = httpx.post(f"{url}/v1/run/{MINILM}", json={"inputs": ["a"]})
        thread.join()
        assert refused.status_code == 503 and refused.json()["error"]["code"] == "shutting_down"
        assert httpx.get(url + "/ready").status_code == 503
        assert httpx.get(url + "/health").status_code == 200
    assert result["r"].status_code == 200 and len(result["r"].json()["results"]) == 2


def test_aliases_name_their_model(server):
    url, _ = server
    response = httpx.post(f"{url}/v1/run/minilm", json={"inputs": ["a cat"]}, headers=auth()).json()
    assert response["model"] == MINILM and close(response["results"], local(MINILM, ["a cat"]))

