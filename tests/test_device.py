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
    with pytest.raises(HubError, match="is not a dtype policy"):
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


def test_manager_cache_keys_include_device_dtype_and_backend():
    dm = DeviceManager(device="cpu", dtype="fp32", backend="torch")
    made = []
    obj = dm.cached(("m",), lambda: made.append(1) or torch.nn.Linear(2, 2))
    assert dm.cached(("m",), lambda: made.append(2)) is obj and made == [1]
    assert ("m", "cpu", "fp32", "torch") in device_mod.MODEL_CACHE.keys()


def test_parse_bytes():
    assert parse_bytes("8GB") == 8 * 10**9
    assert parse_bytes("512MiB") == 512 * 2**20
    with pytest.raises(HubError, match="HUB_CACHE_BUDGET"):
        parse_bytes("lots")


@pytest.mark.parametrize("text, expected", [("8GB", 8 * 10**9), ("512MiB", 512 * 2**20), ("1.5 GB", 15 * 10**8),
                                            (" 2gb ", 2 * 10**9), ("100", 100), ("1TiB", 2**40), ("64KB", 64000)])
def test_parse_bytes_accepts_sizes_with_units(text, expected):
    assert parse_bytes(text) == expected


BAD_SIZES = ["inf", "-inf", "Infinity", "nan", "-5GB", "0", "0GB", "0.1B", "garbage", "lots", "1e9", "8XB",
             "GB", "5GB extra", "8 G B", "+5GB", "0x10"]


@pytest.mark.parametrize("text", BAD_SIZES)
def test_bad_cache_budget_names_the_variable_and_the_form(monkeypatch, text):
    monkeypatch.setenv("HUB_CACHE_BUDGET", text)
    with pytest.raises(HubError) as err:
        ModelCache().budget_for("cpu")
    msg = str(err.value)
    assert msg.startswith(f"HUB_CACHE_BUDGET={text!r} is not a memory size") and "8GB" in msg


def test_blank_cache_budget_means_the_default(monkeypatch):
    monkeypatch.setenv("HUB_CACHE_BUDGET", "  ")
    assert ModelCache().budget_for("cpu") == device_mod._default_budget("cpu")


@pytest.mark.parametrize("value", ["tpu", "gpu", "cuda:x", "cuda:-1", "cuda:", "cpu,cuda", "cuda 0", "CUDA:0:1"])
def test_bad_hub_device_names_the_variable(monkeypatch, value):
    monkeypatch.setenv("HUB_DEVICE", value)
    with pytest.raises(HubError, match=rf"^HUB_DEVICE={value!r} is not a device; use cpu, cuda, cuda:N"):
        DeviceManager()
    with pytest.raises(HubError, match=rf"^device {value!r} is not a device"):
        DeviceManager(device=value)


@pytest.mark.parametrize("value", ["fp8", "float33", "bf 16", "int8", "half-ish"])
def test_bad_hub_dtype_names_the_variable(monkeypatch, value):
    monkeypatch.setenv("HUB_DTYPE", value)
    with pytest.raises(HubError, match=rf"^HUB_DTYPE={value!r} is not a dtype policy; use one of auto, fp32"):
        DeviceManager(device="cpu")
    assert DeviceManager(device="cpu", dtype="fp32").dtype == "fp32"  # an argument wins over the variable


@pytest.mark.parametrize("value, expected", [(" CPU ", "cpu"), ("cuda:1", "cuda:1"), ("mps", "mps"), ("", None)])
def test_device_forms_are_normalised(monkeypatch, value, expected):
    monkeypatch.setenv("HUB_DEVICE", value)
    assert DeviceManager().requested_device == expected


def test_unavailable_cuda_from_the_variable_says_so(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("HUB_DEVICE", "cuda:0")
    with pytest.raises(HubError, match=r"\(from HUB_DEVICE\) was requested but CUDA is not available; set HUB_DEVICE"):
        DeviceManager().plan


def test_missing_cuda_index_is_named(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    with pytest.raises(HubError, match=r"device 'cuda:5' does not exist: this machine has 2 CUDA device"):
        DeviceManager(device="cuda:5").plan


def test_a_bad_budget_fails_before_the_model_loads(monkeypatch):
    monkeypatch.setenv("HUB_CACHE_BUDGET", "garbage")
    loaded = []
    with pytest.raises(HubError, match="HUB_CACHE_BUDGET='garbage'"):
        ModelCache().get_or_load(("m",), "cpu", lambda: loaded.append(1))
    assert loaded == []


@pytest.mark.parametrize("env", [{"HUB_CACHE_BUDGET": "nan"}, {"HUB_DEVICE": "cuda:x"}, {"HUB_DTYPE": "float8"}])
def test_bad_settings_through_the_python_api_name_the_variable(monkeypatch, env):
    import hub

    device_mod.MODEL_CACHE.clear()  # a cached model would be returned without reading the budget
    device_mod.MODEL_CACHE._budgets.clear()
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(HubError, match=f"^{next(iter(env))}="):
        hub.load("all-minilm-l6-v2", cache=True)
    device_mod.MODEL_CACHE._budgets.clear()
