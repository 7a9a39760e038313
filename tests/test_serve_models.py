"""The server's model host: models the device manager's cache evicts are dropped and load again on request.

In a module of its own: the model cache is shared by the whole process, and other modules' servers keep
their models in it.
"""
import base64

import pytest

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")

import hub  # noqa: E402
from plugins.tiny_models import save_timm  # noqa: E402
from serve_server import hub_app, running  # noqa: E402

MINILM = "all-minilm-l6-v2"


@pytest.fixture
def small_cache():
    """An empty CPU model cache with room for MiniLM alone; restored afterwards."""
    from hub.device import MODEL_CACHE, module_bytes

    before = MODEL_CACHE.budget_for("cpu")
    MODEL_CACHE.clear()
    MODEL_CACHE.set_budget("cpu", module_bytes(hub.load(MINILM, device="cpu", dtype="fp32")) + 1000)
    yield MODEL_CACHE
    MODEL_CACHE.set_budget("cpu", before)


def test_models_the_cache_evicts_are_dropped_and_load_again_when_asked_for(small_cache, tmp_path):
    from PIL import Image

    timm_dir = save_timm(tmp_path / "evictable-timm")
    Image.new("RGB", (40, 40), (0, 120, 0)).save(tmp_path / "green.png")
    image = base64.b64encode((tmp_path / "green.png").read_bytes()).decode()
    expected = hub.run(MINILM, ["a cat"], device="cpu", dtype="fp32")[0].embedding
    with running(hub_app(preload=(MINILM, str(timm_dir)))) as url:
        assert httpx.get(url + "/ready").json()["models"] == ["evictable-timm"]  # loading timm evicted MiniLM
        again = httpx.post(f"{url}/v1/run/{MINILM}", json={"inputs": ["a cat"]})
        assert again.status_code == 200 and again.json()["results"][0]["embedding"] == pytest.approx(expected, abs=1e-5)
        assert httpx.get(url + "/ready").json()["models"] == [MINILM]
        metrics = httpx.get(url + "/metrics").text
        assert 'hub_model_loaded{model="evictable-timm"}' not in metrics and "hub_models_loaded 1.0" in metrics
        assert httpx.post(f"{url}/v1/run/evictable-timm", json={"inputs": [image]}).status_code == 200
        assert [k[0] for k in small_cache.keys()] == ["evictable-timm"]
