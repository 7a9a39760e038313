"""The one device manager: device choice, dtype policy, autocast, placement and the LRU cache."""
import pytest
import torch

from hub import device as device_mod
from hub.device import DeviceManager, ModelCache, parse_bytes
from hub.errors import HubError


def test_cpu_when_nothing_else(monkeypatch):
    monkeypatch.delenv("HUB_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert DeviceManager().device in ("cpu", "mps")


def test_env_and_argument_override(monkeypatch):
    monkeypatch.setenv("HUB_DEVICE", "cpu")
    assert DeviceManager().device == "cpu"
    assert DeviceManager(device="cpu").plan.reason.startswith("requested")


def test_unavailable_cuda_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(HubError, match="CUDA is not available"):
        DeviceManager(device="cuda").plan


@pytest.mark.parametrize("flags, expected", [({"amx_bf16"}, "bf16"), ({"avx512_bf16", "avx2"}, "bf16"),
                                             ({"avx2"}, "fp32"), (set(), "fp32")])
def test_auto_policy_on_cpu_follows_cpu_flags(monkeypatch, flags, expected):
    monkeypatch.setattr(device_mod, "cpu_flags", lambda: flags)
    dm = DeviceManager(device="cpu", dtype="auto")
    assert dm.dtype == expected
    assert "auto" in dm.plan.reason


def test_explicit_policies(monkeypatch):
    assert DeviceManager(device="cpu", dtype="fp32").dtype == "fp32"
    assert DeviceManager(device="cpu", dtype="bf16").torch_dtype() is torch.bfloat16
    monkeypatch.setenv("HUB_DTYPE", "fp16")
    assert DeviceManager(device="cpu").dtype == "fp16"
    with pytest.raises(HubError, match="unknown dtype policy"):
        DeviceManager(dtype="fp8")


def test_autocast_runs_bf16_and_fp32_is_plain():
    lin = torch.nn.Linear(4, 4)
    x = torch.randn(2, 4)
    with DeviceManager(device="cpu", dtype="bf16").inference():
        assert lin(x).dtype is torch.bfloat16
    with DeviceManager(device="cpu", dtype="fp32").inference():
        out = lin(x)
        assert out.dtype is torch.float32 and torch.is_inference(out)


def test_place_and_to_device():
    dm = DeviceManager(device="cpu", dtype="bf16")
    conv = dm.place(torch.nn.Conv2d(3, 4, 3), channels_last=True)
    assert not conv.training and conv.weight.is_contiguous(memory_format=torch.channels_last)
    moved = dm.to_device({"a": torch.ones(1), "b": [torch.zeros(1)], "c": "text"})
    assert moved["c"] == "text" and moved["b"][0].device.type == "cpu"


def test_lru_cache_evicts_least_recently_used():
    cache = ModelCache()
    one_mb = lambda: torch.nn.Linear(512, 512)  # 1.05 MB of fp32 weights
    cache.set_budget("cpu", int(2.5e6))
    a = cache.get_or_load(("a",), "cpu", one_mb)
    cache.get_or_load(("b",), "cpu", one_mb)
    assert cache.get_or_load(("a",), "cpu", lambda: pytest.fail("a should be cached")) is a
    cache.get_or_load(("c",), "cpu", one_mb)  # over budget: evicts b, the least recently used
    assert [k[0] for k in cache.keys()] == ["a", "c"]
    assert cache.bytes_on("cpu") <= int(2.5e6)


def test_manager_cache_keys_include_device_and_dtype():
    dm = DeviceManager(device="cpu", dtype="fp32")
    made = []
    obj = dm.cached(("m",), lambda: made.append(1) or torch.nn.Linear(2, 2))
    assert dm.cached(("m",), lambda: made.append(2)) is obj and made == [1]
    assert ("m", "cpu", "fp32") in device_mod.MODEL_CACHE.keys()


def test_parse_bytes():
    assert parse_bytes("8GB") == 8 * 10**9
    assert parse_bytes("512MiB") == 512 * 2**20
    with pytest.raises(HubError, match="HUB_CACHE_BUDGET"):
        parse_bytes("lots")
