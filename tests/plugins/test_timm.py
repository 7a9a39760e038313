"""The timm plugin: ResNets saved in timm's own hub format, loaded by path, against timm directly.

Models are built untrained at test time (``pretrained=False``), saved with
``timm.models.save_for_hf`` and loaded through ``hub.load(str(dir))``: the code path a catalogue
id takes once its weights are on disk. Images are scikit-learn's digits, upscaled to RGB.
"""
from __future__ import annotations

import io
import json
import time

import pytest

pytestmark = pytest.mark.slow  # tiny backbone models

torch = pytest.importorskip("torch")
timm = pytest.importorskip("timm")

import hub  # noqa: E402
from hub.errors import HubError, InputError, ModelUnavailableError, WeightsError  # noqa: E402

ARCHS = ["resnet18", "resnet50d", "resnetrs50"]
DIGIT_NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
SMALL_INPUT = {"input_size": (3, 64, 64), "crop_pct": 0.875}  # in the weights' pretrained_cfg: fast tests


def create(arch, **kwargs):
    """An untrained timm model whose own pretrained_cfg asks for 64x64 inputs."""
    return timm.create_model(arch, pretrained=False, pretrained_cfg_overlay=SMALL_INPUT, **kwargs).eval()


def save(model, directory, safe=True, **model_config):
    from timm.models import save_for_hf

    save_for_hf(model, str(directory), safe_serialization=safe, model_config=model_config or None)
    return directory


def plain(cfg: dict) -> dict:
    return {k: tuple(v) if isinstance(v, (list, tuple)) else v for k, v in cfg.items()}


def direct_transform(model):
    from timm.data import create_transform, resolve_data_config

    return create_transform(**resolve_data_config(model=model), is_training=False)


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """Six digits as 72x72 RGB files (PNG and JPEG), with their PIL images."""
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    root = tmp_path_factory.mktemp("digits")
    paths = []
    for i in range(6):
        pixels = (digits.images[i * 7] * (255 / 16)).astype("uint8")
        img = Image.fromarray(pixels).resize((72, 72), Image.BILINEAR).convert("RGB")
        path = root / f"digit{i}.{'png' if i % 2 else 'jpg'}"
        img.save(path)
        paths.append(path)
    return paths


@pytest.fixture(scope="module", params=ARCHS)
def saved(request, tmp_path_factory):
    """(directory, direct timm model) for each architecture, 10 classes named after digits."""
    torch.manual_seed(0)
    model = create(request.param, num_classes=10)
    _randomise_norms(model)
    directory = save(model, tmp_path_factory.mktemp("m") / f"{request.param}-digits", label_names=DIGIT_NAMES)
    return directory, model


def _randomise_norms(model):
    """Non-trivial BN statistics and gammas, so untrained residual branches count."""
    gen = torch.Generator().manual_seed(1)
    for mod in model.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.weight.data.uniform_(0.5, 1.5, generator=gen)
            mod.running_mean.uniform_(-0.1, 0.1, generator=gen)
            mod.running_var.uniform_(0.5, 1.5, generator=gen)


def direct_logits(model, paths):
    from PIL import Image

    transform = direct_transform(model)
    batch = torch.stack([transform(Image.open(p).convert("RGB")) for p in paths])
    with torch.inference_mode():
        return model(batch), model.forward_head(model.forward_features(batch), pre_logits=True)


def test_classification_matches_timm(saved, images):
    directory, model = saved
    pipe = hub.load(str(directory), task="image-classification", dtype="fp32", cache=False)
    results = pipe([str(p) for p in images], top_k=10)
    probs = direct_logits(model, images)[0].softmax(-1)
    for result, row in zip(results, probs):
        assert len(result.labels) == 10
        ours = torch.tensor([ls.score for ls in sorted(result.labels, key=lambda ls: ls.index)])
        assert (ours - row).abs().max().item() <= 1e-5
        assert result.top.index == int(row.argmax())
        assert result.top.label == DIGIT_NAMES[result.top.index]
    assert plain(pipe.data_config) == plain(timm.data.resolve_data_config(model=model))
    assert pipe.data_config["input_size"] == (3, 64, 64)


def test_embedding_matches_timm(saved, images):
    directory, model = saved
    pipe = hub.load(str(directory), task="image-embedding", dtype="fp32", cache=False)
    results = pipe([str(p) for p in images], batch_size=4)
    features = direct_logits(model, images)[1]
    assert [r.dim for r in results] == [model.num_features] * len(images)
    ours = torch.tensor([r.embedding for r in results])
    assert (ours - features).abs().max().item() <= 1e-5


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A resnet18 with 10 unnamed classes, saved with safetensors."""
    torch.manual_seed(0)
    model = create("resnet18", num_classes=10)
    return save(model, tmp_path_factory.mktemp("s") / "resnet18-unnamed"), model


def test_input_kinds_agree(small, images):
    import numpy as np
    from PIL import Image

    pipe = hub.load(str(small[0]), task="image-classification", dtype="fp32", cache=False)
    path = images[1]
    pil = Image.open(path).convert("RGB")
    inputs = [str(path), path, path.read_bytes(), pil, np.asarray(pil)]
    results = pipe(inputs, top_k=3)
    assert len({json.dumps(r.to_dict()) for r in results}) == 1
    assert pipe(str(path), top_k=2).labels == results[0].labels[:2]


def test_unnamed_classes_and_top_k(small, images):
    pipe = hub.load(str(small[0]), task="image-classification", dtype="fp32", cache=False)
    result = pipe(str(images[0]))
    assert len(result.labels) == 5
    assert all(ls.label == f"class_{ls.index}" for ls in result.labels)
    assert [ls.score for ls in result.labels] == sorted((ls.score for ls in result.labels), reverse=True)
    assert pipe([]) == []


def test_bad_images_are_named(small, tmp_path, images):
    pipe = hub.load(str(small[0]), task="image-classification", dtype="fp32", cache=False)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"this is not a jpeg")
    with pytest.raises(InputError, match="broken.jpg"):
        pipe([str(images[0]), str(broken)])
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(images[1].read_bytes()[:60])
    with pytest.raises(InputError, match="truncated.png"):
        pipe([str(truncated)])
    with pytest.raises(InputError, match="missing.png"):
        pipe(str(tmp_path / "missing.png"))


def test_imagenet_labels_for_imagenet_heads(tmp_path, images):
    torch.manual_seed(0)
    model = create("resnet18")  # 1000 classes, tag a1_in1k
    directory = save(model, tmp_path / "resnet18-in1k")
    result = hub.load(str(directory), dtype="fp32", cache=False)(str(images[0]), top_k=3)
    names = timm.data.ImageNetInfo().label_descriptions()
    assert [ls.label for ls in result.labels] == [names[ls.index] for ls in result.labels]


def test_pickle_weights_load_with_weights_only(tmp_path, images):
    torch.manual_seed(0)
    model = create("resnet18", num_classes=4)
    directory = save(model, tmp_path / "resnet18-bin", safe=False)
    assert not (directory / "model.safetensors").exists()
    result = hub.load(str(directory), dtype="fp32", cache=False)(str(images[2]), top_k=4)
    probs = direct_logits(model, [images[2]])[0].softmax(-1)[0]
    assert max(abs(ls.score - probs[ls.index].item()) for ls in result.labels) <= 1e-5


def test_missing_or_mismatched_weights_fail_clearly(small, tmp_path):
    import shutil

    missing = tmp_path / "resnet18-noweights"
    missing.mkdir()
    shutil.copy(small[0] / "config.json", missing / "config.json")
    with pytest.raises(WeightsError, match="no weights"):
        hub.load(str(missing), cache=False)
    wrong = tmp_path / "resnet18-wrong"
    shutil.copytree(small[0], wrong)
    config = json.loads((wrong / "config.json").read_text())
    config["num_classes"] = config["model_args"]["num_classes"] = 7
    (wrong / "config.json").write_text(json.dumps(config))
    with pytest.raises(HubError, match="do not fit timm architecture 'resnet18'"):
        hub.load(str(wrong), cache=False)


def test_spec_for_path(small, tmp_path):
    spec = hub.get_spec(str(small[0]))
    assert (spec.plugin, spec.task, spec.arch) == ("timm", "image-classification", "resnet18")
    assert hub.get_spec(str(small[0]), task="image-feature-extraction").task == "image-embedding"
    other = tmp_path / "not-timm"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"architectures": ["BertModel"], "hidden_size": 8}))
    from mmhub_timm import spec_for_path

    assert spec_for_path(str(other), None) is None
    assert spec_for_path(str(small[0]), "text-embedding") is None


def test_auto_policy_runs_channels_last_bf16(small, images):
    from hub.device import DeviceManager

    pipe = hub.load(str(small[0]), task="image-classification", dtype="bf16", cache=False)
    assert DeviceManager(dtype="bf16").dtype == "bf16"
    assert pipe.model.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    fp32 = hub.load(str(small[0]), task="image-classification", dtype="fp32", cache=False)
    ours, ref = pipe([str(p) for p in images], top_k=10), fp32([str(p) for p in images], top_k=10)
    for a, b in zip(ours, ref):
        by_index = {ls.index: ls.score for ls in b.labels}
        assert max(abs(ls.score - by_index[ls.index]) for ls in a.labels) < 0.05


def timm_catalogue():
    return [s for s in hub.list_models(plugin="timm", installed_only=False)]


def test_catalogue_names_real_timm_weights():
    specs = timm_catalogue()
    assert len(specs) >= 9
    tasks = {s.task for s in specs}
    assert {"image-classification", "image-embedding"} <= tasks
    for spec in specs:
        repo = spec.source.removeprefix("hf-hub:")
        assert spec.source.startswith("hf-hub:timm/") and spec.revision and spec.license, spec.id
        assert timm.models.is_model(spec.arch) and repo.split("/")[1].split(".")[0] == spec.arch, spec.id
        assert timm.list_pretrained(repo.split("/")[1]), f"{spec.id}: timm knows no pretrained tag {repo}"
        assert spec.params and spec.params > 1_000_000, spec.id


def test_uncached_catalogue_id_fails_at_once_offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    import huggingface_hub.constants as hfc

    monkeypatch.setattr(hfc, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr(hfc, "HF_HUB_OFFLINE", True)
    start = time.perf_counter()
    with pytest.raises(ModelUnavailableError) as err:
        hub.load("resnet50.a1_in1k", cache=False)
    assert time.perf_counter() - start < 10
    message = str(err.value)
    assert "resnet50.a1_in1k" in message and "`hf download timm/resnet50.a1_in1k --revision " in message


def test_catalogue_entry_with_local_copy(small, tmp_path, monkeypatch, fresh_hub, images):
    catalogue = tmp_path / "catalog.yaml"
    catalogue.write_text(
        "models:\n  my-resnet18:\n    task: image-embedding\n    plugin: timm\n"
        f"    source: hf-hub:timm/resnet18.a1_in1k\n    local: {small[0]}\n    arch: resnet18\n"
    )
    monkeypatch.setenv("HUB_CATALOG", str(catalogue))
    result = hub.load("my-resnet18", dtype="fp32", cache=False)(str(images[0]))
    assert result.dim == 512


def test_preprocess_overrides_from_the_catalogue():
    from mmhub_timm.loading import data_config

    model = timm.create_model("resnet18", pretrained=False)  # resnet18.a1_in1k: 224 train, 288 test
    assert data_config(model)["input_size"] == (3, 224, 224)
    assert data_config(model, {"use_test_size": True})["input_size"] == (3, 288, 288)
    assert data_config(model, {"crop_pct": 1.0, "interpolation": "bilinear"})["crop_pct"] == 1.0


# -- call options -----------------------------------------------------------------------------------------
def test_classification_top_k_contract(small, images):
    from option_contract import check_top_k

    pipe = hub.load(str(small[0]), task="image-classification", dtype="fp32")
    check_top_k(pipe, [str(p) for p in images[:3]], n_labels=10)


def test_embedding_takes_no_options(small, images):
    from option_contract import check_bad_options

    pipe = hub.load(str(small[0]), task="image-embedding", dtype="fp32")
    check_bad_options(pipe, [str(images[0])], [({"top_k": 1}, ["'top_k'", "It takes no options"]),
                                                ({"labels": ["a"]}, ["'labels'"])])


@pytest.mark.parametrize("task, args, words", [
    ("image-classification", ["-o", "top_k=0"], ["'top_k'", "integer >= 1"]),
    ("image-classification", ["-o", "top_k=five"], ["'top_k'", "integer >= 1"]),
    ("image-classification", ["-o", "topk=3"], ["Did you mean: top_k?"]),
    ("image-classification", ["--label", "cat"], ["'labels'", "Valid options: top_k"]),
    ("image-embedding", ["--top-k", "3"], ["'top_k'", "It takes no options"]),
])
def test_cli_refuses_bad_options(small, images, task, args, words):
    from option_contract import check_cli_refuses

    check_cli_refuses(str(small[0]), task, str(images[0]), args, words)
