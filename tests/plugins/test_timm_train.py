"""The timm training adapter: new head on timm-format weights, transforms, save -> hub.load.

The "pretrained" starting point is an untrained timm ResNet built at test time whose own
pretrained_cfg asks for 32x32 inputs, saved with ``timm.models.save_for_hf``: the format a
hub id's snapshot has. Images are scikit-learn's digits.
"""
from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.slow  # tiny backbone models

torch = pytest.importorskip("torch")
timm = pytest.importorskip("timm")

import hub  # noqa: E402
from hub.device import get_device_manager  # noqa: E402
from hub.errors import HubError  # noqa: E402
from hub.local import write_card  # noqa: E402
from hub.registry import ModelSpec  # noqa: E402
from hub.train.adapter import Record, TrainAdapter  # noqa: E402

SMALL = {"input_size": (3, 32, 32), "crop_pct": 1.0, "test_input_size": None, "mean": (0.5,) * 3, "std": (0.5,) * 3}
NO_FLIP = {"augment": {"hflip": 0.0, "scale": [0.85, 1.0]}}


def save_base(directory, arch="resnet18", num_classes=7, seed=0):
    """An untrained timm model saved in timm's hub format, as a fine-tuning starting point."""
    from timm.models import save_for_hf

    torch.manual_seed(seed)
    model = timm.create_model(arch, pretrained=False, num_classes=num_classes, pretrained_cfg_overlay=SMALL)
    save_for_hf(model, str(directory), safe_serialization=True)
    return model.eval()


def spec_for(directory, **extra):
    return ModelSpec(id="base", task="image-classification", plugin="timm", source=str(directory), **extra)


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    directory = tmp_path_factory.mktemp("base")
    return directory, save_base(directory)


@pytest.fixture(scope="module")
def digit_files(tmp_path_factory):
    """An image folder of 12 digits (classes zero/one/two), PNG files of 8x8 grey images."""
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    root = tmp_path_factory.mktemp("digits")
    names = ["zero", "one", "two"]
    records = []
    for i in range(len(digits.target)):
        label = int(digits.target[i])
        if label > 2 or sum(r.label == names[label] for r in records) >= 4:
            continue
        path = root / names[label] / f"{i}.png"
        path.parent.mkdir(exist_ok=True)
        Image.fromarray((digits.images[i] * (255 / 16)).astype("uint8")).save(path)
        records.append(Record(input=str(path), label=names[label], where=f"digits/{names[label]}/{i}.png"))
    return records


@pytest.fixture(scope="module")
def adapter(base):
    from mmhub_timm.train import trainable

    return trainable(spec_for(base[0], options=NO_FLIP), "image-classification", 3, ["zero", "one", "two"],
                     get_device_manager("cpu", "fp32"))


def test_adapter_keeps_backbone_and_builds_a_new_head(adapter, base):
    _, original = base
    assert isinstance(adapter, TrainAdapter) and adapter.kind == "classification"
    assert adapter.labels == ["zero", "one", "two"] and adapter.head_prefixes == ("fc",)
    assert adapter.module.fc.out_features == 3
    state, before = adapter.module.state_dict(), original.state_dict()
    for key in ("conv1.weight", "layer4.1.conv2.weight", "bn1.running_mean"):
        assert torch.equal(state[key], before[key]), key
    assert [type(b).__name__ for b in adapter.blocks(adapter.module)] == ["Sequential"] * 4
    assert adapter.blocks(adapter.module)[0] is adapter.module.layer1
    assert adapter.spec_fields == {"task": "image-classification", "plugin": "timm", "arch": "resnet18",
                                   "description": adapter.spec_fields["description"]}


def test_examples_collate_loss_and_predict(adapter, digit_files):
    train = [adapter.load_example(r, True) for r in digit_files[:5]]
    evals = [adapter.load_example(r, False) for r in digit_files[:5]]
    assert train[0][0].shape == (3, 32, 32) and evals[0][0].shape == (3, 32, 32)
    assert [y for _, y in evals] == [["zero", "one", "two"].index(r.label) for r in digit_files[:5]]
    batch = adapter.collate(evals)
    assert batch["pixel_values"].shape == (5, 3, 32, 32) and batch["labels"].dtype == torch.long
    adapter.module.train()
    value = adapter.loss(adapter.module, batch)
    value.backward()
    assert value.ndim == 0 and torch.isfinite(value) and adapter.module.fc.weight.grad is not None
    adapter.module.zero_grad()
    adapter.module.eval()
    with torch.no_grad():
        assert adapter.predict(adapter.module, batch).shape == (5, 3)


def test_eval_transform_is_timms_own_for_the_weights(adapter, base, digit_files):
    from PIL import Image
    from timm.data import create_transform, resolve_data_config

    direct = create_transform(**resolve_data_config(model=base[1]), is_training=False)
    image = Image.open(digit_files[0].input).convert("RGB")
    assert torch.equal(adapter.load_example(digit_files[0], False)[0], direct(image))


def test_saved_model_loads_back_through_the_hub_with_the_same_scores(adapter, digit_files, tmp_path):
    torch.manual_seed(1)
    with torch.no_grad():
        adapter.module.fc.weight.normal_(0, 0.5)  # a head that says something
    out = tmp_path / "out"
    adapter.save(adapter.module, out)
    config = json.loads((out / "config.json").read_text())
    assert config["architecture"] == "resnet18" and config["num_classes"] == 3
    assert config["label_names"] == ["zero", "one", "two"] and (out / "model.safetensors").is_file()
    adapter.module.eval()
    batch = adapter.collate([adapter.load_example(r, False) for r in digit_files[:6]])
    with torch.no_grad():
        expected = adapter.predict(adapter.module, batch).softmax(-1)
    for with_card in (False, True):  # timm's own directory, and with the loop's mmhub.yaml
        if with_card:
            write_card(out, adapter.spec_fields)
        pipe = hub.load(str(out), dtype="fp32", cache=False)
        results = pipe([r.input for r in digit_files[:6]], top_k=3)
        for row, result in zip(expected, results):
            got = {s.label: s.score for s in result.labels}
            assert set(got) == {"zero", "one", "two"}
            assert max(abs(got[name] - float(row[i])) for i, name in enumerate(adapter.labels)) <= 1e-5


def test_through_the_hook_and_for_other_tasks(base, fresh_hub):
    from hub.plugins import get_plugin_manager

    hook = get_plugin_manager().hook.trainable
    dm = get_device_manager("cpu", "fp32")
    found = hook(spec=spec_for(base[0]), task="image-classification", num_labels=2, labels=["a", "b"],
                 device_manager=dm)
    assert isinstance(found, TrainAdapter) and found.module.fc.out_features == 2
    assert hook(spec=spec_for(base[0]), task="image-embedding", num_labels=None, labels=None,
                device_manager=dm) is None


def test_errors_name_the_fix(base, tmp_path):
    from mmhub_timm.train import trainable

    dm = get_device_manager("cpu", "fp32")
    with pytest.raises(HubError, match="at least 2 classes"):
        trainable(spec_for(base[0]), "image-classification", 1, ["a"], dm)
    only_config = tmp_path / "no_weights"
    only_config.mkdir()
    (only_config / "config.json").write_text((base[0] / "config.json").read_text())
    with pytest.raises(HubError, match="no model.safetensors"):
        trainable(spec_for(only_config), "image-classification", 2, ["a", "b"], dm)
    wrong = tmp_path / "wrong"
    save_base(wrong, arch="resnet10t")
    config = json.loads((wrong / "config.json").read_text())
    config["architecture"] = "resnet18"
    (wrong / "config.json").write_text(json.dumps(config))
    with pytest.raises(HubError, match="do not fit timm architecture 'resnet18'"):
        trainable(spec_for(wrong), "image-classification", 2, ["a", "b"], dm)


# -- learning: the shared loop fine-tunes a timm ResNet on scikit-learn's digits ---------------------------------
@pytest.mark.slow
def test_resnet_fine_tuned_on_digits_reaches_97_percent(tmp_path):
    """A ResNet-18 layout (half-width stem and stages, 32x32 inputs) through hub.train.finetune."""
    from PIL import Image
    from sklearn.datasets import load_digits
    from timm.models import save_for_hf

    from hub.train.api import finetune
    from hub.train.data import read_records, stratified_split

    names = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    digits = load_digits()
    data = tmp_path / "digits"
    for i, (pixels, target) in enumerate(zip(digits.images, digits.target)):
        path = data / names[target] / f"{i:04d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray((pixels * (255 / 16)).astype("uint8")).save(path)
    torch.manual_seed(0)
    start = timm.create_model("resnet18", pretrained=False, num_classes=1000, pretrained_cfg_overlay=SMALL,
                              stem_width=16, channels=(16, 32, 64, 128))
    base = tmp_path / "base"
    save_for_hf(start, str(base), safe_serialization=True)
    write_card(base, {"task": "image-classification", "plugin": "timm", "options": NO_FLIP})  # digits: no flips

    result = finetune(str(base), data, out=tmp_path / "out", epochs=6, lr=3e-3, batch_size=64, head_lr_mult=1.0,
                      precision="fp32", progress=False)
    records, _ = read_records(data, "classification", "image")
    train, val = stratified_split(records, 0.2, seed=0)  # the split finetune makes
    assert (result.train_rows, result.val_rows) == (len(train), len(val)) and len(val) > 350
    assert result.metrics["accuracy"] >= 0.97, result.metrics

    # the output directory is a model: the hub's timm pipeline agrees on the held-out digits
    pipe = hub.load(str(tmp_path / "out"), dtype="fp32", cache=False)
    predicted = [r.labels[0].label for r in pipe([v.input for v in val], top_k=1)]
    accuracy = sum(p == v.label for p, v in zip(predicted, val)) / len(val)
    assert accuracy >= 0.97 and abs(accuracy - result.metrics["accuracy"]) < 1e-9
