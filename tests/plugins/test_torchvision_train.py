"""Semantic segmentation fine-tuning through the shared loop (mmhub_torchvision.train), measured by mIoU.

The model is the plugin's FCN on a ResNet-18 backbone read at ``layer2`` (stride 8,
``mmhub_torchvision.small``), random weights built here, trained from scratch on 64x64 images of
coloured circles, squares and triangles on noise and stripe backgrounds (tests/plugins/shapes_data.py).
The ResNet-50 models of the catalogue take seconds per step at this size on two CPU cores; this one
learns the shapes in six epochs of 640 images. Held-out images (seeds never trained on) measure it.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # tiny backbone models

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")
pytest.importorskip("mmhub_torchvision")

sys.path.insert(0, str(Path(__file__).parent))
from shapes_data import CLASSES, write_folder  # noqa: E402

import hub  # noqa: E402
from hub.cli import cli  # noqa: E402
from hub.errors import HubError  # noqa: E402

TRANSFORMS = "FCN_ResNet50_Weights.COCO_WITH_VOC_LABELS_V1"  # the weights whose transforms() the models take
SMALL = {"out_layer": "layer2"}
TRAIN_ARGS = ["--epochs", "6", "--batch-size", "16", "--lr", "2e-3", "--precision", "fp32"]


def start_model(directory: Path, categories: list[str], seed: int = 0) -> Path:
    """A random-weight FCN ResNet-18 (layer2) saved as this plugin's model directory, resized to 64 px."""
    from mmhub_torchvision import loading
    from mmhub_torchvision.small import fcn_resnet18

    torch.manual_seed(seed)
    model = fcn_resnet18(num_classes=len(categories), **SMALL)
    return loading.save_directory(model, directory, "fcn_resnet18", categories, weights=TRANSFORMS,
                                  preprocess={"resize_size": 64}, model_args=SMALL)


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    root = tmp_path_factory.mktemp("shapes")
    return (write_folder(root / "train", range(0, 640)), write_folder(root / "val", range(10000, 10064)),
            write_folder(root / "test", range(20000, 20096)))


@pytest.fixture(scope="module")
def trained(shapes, tmp_path_factory):
    """``hub finetune`` of a 21-class start on the 4 shape classes (a new last layer), held-out val."""
    from click.testing import CliRunner

    root = tmp_path_factory.mktemp("run")
    start = start_model(root / "start", [f"voc_{i}" for i in range(21)])
    out = root / "out"
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # small convolutions: one thread beats two oversubscribed cores many times over
    try:
        res = CliRunner().invoke(cli, ["finetune", str(start), "--data", str(shapes[0]), "--val", str(shapes[1]),
                                       "--out", str(out), *TRAIN_ARGS])
    finally:
        torch.set_num_threads(before)
    assert res.exit_code == 0, res.output
    return out


def run_miou(out: Path, folder: Path) -> float:
    """mIoU of ``hub.run(OUT)``'s class maps against the masks (pixels of every image together)."""
    from PIL import Image

    from hub.train.metrics import segmentation_report

    images = sorted((folder / "images").iterdir())
    results = hub.run(str(out), [str(p) for p in images], dtype="fp32")
    n = len(CLASSES)
    cm = np.zeros((n, n), dtype=np.int64)
    for path, result in zip(images, results):
        truth = np.asarray(Image.open(folder / "masks" / path.name), dtype=np.int64)
        np.add.at(cm, (truth.ravel(), np.asarray(result.class_map).ravel()), 1)
    return segmentation_report(cm)["miou"]


def test_learns_shapes_on_held_out_images(trained, shapes, cli_runner):
    """mIoU >= 0.6 on images never trained on, far above the same model untrained."""
    test = shapes[2]
    res = cli_runner.invoke(cli, ["eval", str(trained), "--data", str(test), "--json", "--precision", "fp32"])
    assert res.exit_code == 0, res.output
    after = json.loads(res.output)
    untrained = start_model(trained.parent / "untrained", CLASSES, seed=1)
    res = cli_runner.invoke(cli, ["eval", str(untrained), "--data", str(test), "--json", "--precision", "fp32"])
    before = json.loads(res.output)
    print(f"held-out mIoU: untrained {before['miou']:.3f}, fine-tuned {after['miou']:.3f}; pixel accuracy "
          f"{after['pixel_accuracy']:.3f}; per class {[round(c['iou'], 3) for c in after['per_class'].values()]}")
    assert after["miou"] >= 0.6 and after["miou"] >= before["miou"] + 0.3
    assert list(after["per_class"]) == CLASSES and after["count"] == 96


def test_eval_reproduces_metrics_json_and_run_agrees(trained, shapes, cli_runner):
    """``hub eval OUT`` on the validation rows gives metrics.json; ``hub run OUT`` predicts the same masks."""
    recorded = json.loads((trained / "metrics.json").read_text())
    res = cli_runner.invoke(cli, ["eval", str(trained), "--data", str(shapes[1]), "--json", "--precision", "fp32"])
    again = json.loads(res.output)
    assert again["confusion"] == recorded["confusion"]
    for key in ("miou", "pixel_accuracy", "mean_class_accuracy", "loss"):
        assert again[key] == pytest.approx(recorded[key], abs=1e-4)
    assert run_miou(trained, shapes[1]) == pytest.approx(recorded["miou"], abs=1e-6)


def test_the_output_is_a_model_with_its_run_log(trained, shapes, cli_runner):
    card = (trained / "mmhub.yaml").read_text()
    assert "task: image-segmentation" in card and "metric: miou" in card and "triangle" in card
    logged = [json.loads(line) for line in (trained / "metrics.jsonl").read_text().splitlines()]
    val = [r for r in logged if r["split"] == "val"]
    assert len(val) == 6 and {"miou", "pixel_accuracy", "loss"} <= set(val[0])
    assert (trained / "training_curves.png").is_file() and (trained / "checkpoints").is_dir()
    image = sorted((shapes[2] / "images").iterdir())[0]
    res = cli_runner.invoke(cli, ["run", str(trained), str(image), "--json", "--dtype", "fp32"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)[0]["labels"] == CLASSES


def test_a_jsonl_of_image_and_mask_with_bad_rows(shapes, tmp_path, cli_runner):
    """Rows whose files are missing, of the wrong size or mode, or out of the classes are listed and skipped."""
    from PIL import Image

    from hub.train.api import finetune

    train = shapes[0]
    rows = [{"image": f"{train}/images/{i:05d}.png", "mask": f"{train}/masks/{i:05d}.png"} for i in range(12)]
    Image.new("L", (32, 32)).save(tmp_path / "small.png")
    Image.new("RGB", (64, 64)).save(tmp_path / "rgb.png")
    Image.fromarray(np.full((64, 64), 9, np.uint8)).save(tmp_path / "nine.png")
    bad = [{"image": "missing.png", "mask": "small.png"}, {"image": rows[0]["image"], "mask": "small.png"},
           {"image": rows[0]["image"], "mask": "rgb.png"}, {"image": rows[0]["image"], "mask": "nine.png"},
           {"image": rows[0]["image"]}]
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows + bad))
    (tmp_path / "classes.txt").write_text("\n".join(CLASSES))
    start = start_model(tmp_path / "start", CLASSES)
    with pytest.warns(UserWarning) as seen:
        result = finetune(str(start), data, out=tmp_path / "out", epochs=1, batch_size=4, precision="fp32",
                          progress=False)
    said = " ".join(str(w.message) for w in seen)
    assert "data.jsonl:13: image file 'missing.png' not found" in said
    assert "data.jsonl:14: the mask is 32x32 but the image is 64x64" in said
    assert "data.jsonl:15: the mask is a RGB image" in said and "data.jsonl:16: the mask holds class index 9" in said
    assert "data.jsonl:17: no mask file named" in said and len(result.problems) == 5
    res = cli_runner.invoke(cli, ["finetune", str(start), "--data", str(data), "--on-bad-rows", "error",
                                  "--out", str(tmp_path / "strict")])
    assert res.exit_code == 2 and "bad rows" in res.output and "Traceback" not in res.output


def test_data_layout_and_metric_errors(shapes, tmp_path, cli_runner):
    start = start_model(tmp_path / "start", CLASSES)
    res = cli_runner.invoke(cli, ["finetune", str(start), "--data", str(shapes[1]), "--metric", "accuracy_top5",
                                  "--out", str(tmp_path / "x")])
    assert res.exit_code == 2 and "miou, pixel_accuracy, mean_class_accuracy, loss" in res.output
    (tmp_path / "empty").mkdir()
    res = cli_runner.invoke(cli, ["finetune", str(start), "--data", str(tmp_path / "empty"), "--out",
                                  str(tmp_path / "y")])
    assert res.exit_code == 2 and "images/" in res.output and "Traceback" not in res.output
    other = write_folder(tmp_path / "other", range(3))
    (other / "classes.txt").write_text("background\ncircle\nsquare\nhexagon\n")
    with pytest.raises(HubError, match=r"declares the segmentation classes \[background, circle, square, hexagon\]"):
        from hub.train.api import evaluate

        evaluate(str(start), other)


def test_small_builders_match_their_torchvision_parts():
    """fcn_resnet18 is torchvision's FCN with FCNHead on torchvision's resnet18, read at the named layer."""
    from torchvision.models import resnet18
    from torchvision.models._utils import IntermediateLayerGetter
    from torchvision.models.segmentation.fcn import FCN, FCNHead

    from mmhub_torchvision.small import deeplabv3_resnet18, fcn_resnet18

    torch.manual_seed(0)
    ours = fcn_resnet18(num_classes=4, out_layer="layer3").eval()
    direct = FCN(IntermediateLayerGetter(resnet18(), {"layer3": "out"}), FCNHead(256, 4)).eval()
    direct.load_state_dict(ours.state_dict())
    x = torch.randn(2, 3, 48, 48)
    with torch.no_grad():
        assert torch.equal(ours(x)["out"], direct(x)["out"]) and ours(x)["out"].shape == (2, 4, 48, 48)
    assert deeplabv3_resnet18(num_classes=3)(torch.randn(2, 3, 64, 64))["out"].shape == (2, 3, 64, 64)
    with pytest.raises(ValueError, match="out_layer"):
        fcn_resnet18(out_layer="layer9")
