"""The torchvision plugin: detection and segmentation against torchvision's direct use, weights, drawing.

Models are built offline with random weights (``weights=None, weights_backbone=None``, seeded), at
small input sizes so the tests stay fast. They reach the hub two ways: saved as a local directory
(``torchvision_config.json`` + ``model.safetensors``), and saved into a temporary ``TORCH_HOME`` under
the weights enum's own file name, where torchvision's own ``Weights`` loading finds them too.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # tiny backbone models

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")

import hub  # noqa: E402
from hub.errors import InputError, ModelUnavailableError, OptionError, WeightsError  # noqa: E402
from mmhub_torchvision import drawing, loading  # noqa: E402
from mmhub_torchvision.results import Detection, Segmentation  # noqa: E402

from torchvision.models import detection as D, segmentation as S  # noqa: E402

DETECTORS = {
    "fasterrcnn_resnet50_fpn_v2": D.FasterRCNN_ResNet50_FPN_V2_Weights.COCO_V1,
    "retinanet_resnet50_fpn_v2": D.RetinaNet_ResNet50_FPN_V2_Weights.COCO_V1,
    "fcos_resnet50_fpn": D.FCOS_ResNet50_FPN_Weights.COCO_V1,
}
SEGMENTERS = {
    "deeplabv3_resnet50": S.DeepLabV3_ResNet50_Weights.COCO_WITH_VOC_LABELS_V1,
    "fcn_resnet50": S.FCN_ResNet50_Weights.COCO_WITH_VOC_LABELS_V1,
}
SMALL = {"min_size": 96, "max_size": 128}  # detection resize settings (the builders' own)
FEW = {"fasterrcnn_resnet50_fpn_v2": {"rpn_post_nms_top_n_test": 64}}  # fewer proposals: a fast box head
SEG_SMALL = {"resize_size": 64}  # the segmentation weights' transforms() keyword
HUB = str(Path(sys.executable).parent / "hub")


def full_name(weights) -> str:
    return f"{type(weights).__name__}.{weights.name}"


def spread_scores(model):
    """Random heads score every box alike (about 1/91); scale them so scores spread and thresholds matter."""
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if ("cls_score" in name or "cls_logits" in name) and p.dim() > 1:
                p.copy_(torch.randn(p.shape, generator=gen) * (0.01 if p.dim() == 2 else 0.05))
            elif "cls_logits" in name or "cls_score" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * 2.0 - 2.0)
    return model


def direct_detector(builder, **kwargs):
    torch.manual_seed(0)
    model = torchvision.models.get_model(builder, weights=None, weights_backbone=None, **SMALL,
                                         **FEW.get(builder, {}), **kwargs)
    return spread_scores(model).eval()


def direct_segmenter(builder, aux_loss=False):
    torch.manual_seed(0)
    return torchvision.models.get_model(builder, weights=None, weights_backbone=None, num_classes=21,
                                        aux_loss=aux_loss).eval()


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """Three images (two of one size, one of another): coloured shapes on a textured background."""
    import numpy as np
    from PIL import Image, ImageDraw

    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    paths = []
    for i, (w, h) in enumerate([(96, 72), (96, 72), (64, 80)]):
        noise = rng.integers(60, 200, (h, w, 3), dtype=np.uint8)
        img = Image.fromarray(noise)
        draw = ImageDraw.Draw(img)
        draw.ellipse((10 + i * 5, 10, 40 + i * 5, 45), fill=(220, 30, 30))
        draw.rectangle((w // 2, h // 3, w - 8, h - 6), fill=(30, 30, 220))
        path = root / f"shapes{i}.{'png' if i % 2 else 'jpg'}"
        img.save(path)
        paths.append(path)
    return paths


@pytest.fixture(scope="module", params=list(DETECTORS))
def detector(request, tmp_path_factory):
    """(directory, direct model, weights) for each detection builder."""
    builder, weights = request.param, DETECTORS[request.param]
    model = direct_detector(builder)
    directory = loading.save_directory(model, tmp_path_factory.mktemp("det") / builder, builder,
                                       weights.meta["categories"], weights=full_name(weights), preprocess=SMALL,
                                       model_args=FEW.get(builder))
    return directory, model, weights


@pytest.fixture(scope="module", params=list(SEGMENTERS))
def segmenter(request, tmp_path_factory):
    builder, weights = request.param, SEGMENTERS[request.param]
    model = direct_segmenter(builder)
    directory = loading.save_directory(model, tmp_path_factory.mktemp("seg") / builder, builder,
                                       weights.meta["categories"], weights=full_name(weights), preprocess=SEG_SMALL)
    return directory, model, weights


def direct_detections(model, weights, paths):
    """torchvision's documented use: the weights' transforms, then the model on a list of images of one size."""
    from PIL import Image

    transform = weights.transforms()
    tensors = [transform(Image.open(p).convert("RGB")) for p in paths]
    groups = {}
    for i, t in enumerate(tensors):
        groups.setdefault(tuple(t.shape), []).append(i)
    out = [None] * len(tensors)
    with torch.inference_mode():
        for group in groups.values():
            for i, found in zip(group, model([tensors[i] for i in group])):
                out[i] = found
    return out


def direct_segmentation(model, weights, path, **transform_args):
    """torchvision's use: transforms, ``model(x)["out"]``, logits resized to the image, softmax, argmax."""
    from PIL import Image

    img = Image.open(path).convert("RGB")
    with torch.inference_mode():
        logits = model(weights.transforms(**transform_args)(img).unsqueeze(0))["out"]
        full = torch.nn.functional.interpolate(logits, size=(img.height, img.width), mode="bilinear",
                                               align_corners=False)[0]
    prob, class_map = full.softmax(0).max(0)
    return class_map, prob


# -- parity ---------------------------------------------------------------------------------------
def test_detection_equals_torchvision_direct_use(detector, images):
    directory, model, weights = detector
    pipe = hub.load(str(directory), device="cpu", dtype="fp32", cache=False)
    assert pipe.task == "object-detection"
    results = pipe([str(p) for p in images], score_threshold=0.0, top_k=1000)
    for result, found, path in zip(results, direct_detections(model, weights, images), images):
        from PIL import Image

        assert isinstance(result, Detection)
        assert (result.width, result.height) == Image.open(path).size
        assert len(result.boxes) == len(found["boxes"]) > 0
        assert [b.index for b in result.boxes] == found["labels"].tolist()
        assert [b.label for b in result.boxes] == [weights.meta["categories"][i] for i in found["labels"].tolist()]
        torch.testing.assert_close(torch.tensor([b.box for b in result.boxes]), found["boxes"], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(torch.tensor([b.score for b in result.boxes]), found["scores"], rtol=0, atol=1e-5)
        assert max(b.box[2] for b in result.boxes) <= result.width + 1e-3  # original-image pixel coordinates
        assert max(b.box[3] for b in result.boxes) <= result.height + 1e-3


def test_segmentation_equals_torchvision_direct_use(segmenter, images):
    directory, model, weights = segmenter
    pipe = hub.load(str(directory), device="cpu", dtype="fp32", cache=False)
    results = pipe([str(p) for p in images], masks=True)
    for result, path in zip(results, images):
        class_map, prob = direct_segmentation(model, weights, path, **SEG_SMALL)
        assert isinstance(result, Segmentation)
        assert (result.height, result.width) == tuple(class_map.shape)
        assert torch.equal(torch.tensor(result.class_map), class_map)
        assert result.labels == weights.meta["categories"]
        assert sum(c.pixels for c in result.classes) == result.width * result.height
        for c in result.classes:
            chosen = class_map == c.index
            assert c.pixels == int(chosen.sum()) and c.label == weights.meta["categories"][c.index]
            assert c.score == pytest.approx(float(prob[chosen].double().mean()), abs=1e-5)
        assert [m.index for m in result.masks] == [c.index for c in result.classes]
        for m in result.masks:
            assert torch.equal(torch.tensor(m.mask, dtype=torch.bool), class_map == m.index)
    assert pipe(str(images[0])).masks is None  # masks only on request


def test_results_do_not_depend_on_the_batch(detector, images):
    directory, _, _ = detector
    pipe = hub.load(str(directory), device="cpu", dtype="fp32", cache=False)
    files = [str(p) for p in images]
    together = pipe(files, batch_size=3, score_threshold=0.0)
    alone = [pipe(f, score_threshold=0.0) for f in files]
    for a, b in zip(together, alone):
        torch.testing.assert_close(torch.tensor([x.box for x in a.boxes]), torch.tensor([x.box for x in b.boxes]),
                                   rtol=1e-4, atol=1e-3)


# -- the weights enum and torch's cache ---------------------------------------------------------------
@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return tmp_path / "torch"


def catalogue(tmp_path, monkeypatch, entries: dict):
    import yaml

    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump({"models": entries}))
    monkeypatch.setenv("HUB_CATALOG", str(path))
    from hub.plugins import reset_plugin_manager

    reset_plugin_manager()
    return path


def test_enum_weights_load_from_torch_cache_like_torchvision(torch_home, tmp_path, monkeypatch, images, fresh_hub):
    """A checkpoint in torch's cache under the enum's file name: the hub and torchvision's builder agree."""
    weights = S.FCN_ResNet50_Weights.COCO_WITH_VOC_LABELS_V1
    saved = direct_segmenter("fcn_resnet50", aux_loss=True)  # the real checkpoint has the auxiliary head
    path = loading.checkpoint_path(weights)
    assert path.parent == torch_home / "hub" / "checkpoints" and path.name == "fcn_resnet50_coco-1167a1af.pth"
    path.parent.mkdir(parents=True)
    torch.save(saved.state_dict(), path)
    catalogue(tmp_path, monkeypatch, {"fcn-small": {"task": "image-segmentation", "plugin": "torchvision",
                                                    "source": "torchvision:" + full_name(weights),
                                                    "arch": "fcn_resnet50", "preprocess": SEG_SMALL}})
    pipe = hub.load("fcn-small", device="cpu", dtype="fp32", cache=False)
    direct = torchvision.models.segmentation.fcn_resnet50(weights=weights).eval()  # torchvision reads the same file
    result = pipe(str(images[2]))
    class_map, _ = direct_segmentation(direct, weights, images[2], **SEG_SMALL)
    assert torch.equal(torch.tensor(result.class_map), class_map)
    assert pipe.model.aux_classifier is None  # inference skips the training-only head


def test_enum_detector_from_torch_cache(torch_home, tmp_path, monkeypatch, images, fresh_hub):
    weights = D.RetinaNet_ResNet50_FPN_V2_Weights.COCO_V1
    saved = direct_detector("retinanet_resnet50_fpn_v2")
    loading.checkpoint_path(weights).parent.mkdir(parents=True)
    torch.save(saved.state_dict(), loading.checkpoint_path(weights))
    catalogue(tmp_path, monkeypatch, {"retina-small": {"task": "object-detection", "plugin": "torchvision",
                                                       "source": "torchvision:" + full_name(weights),
                                                       "arch": "retinanet_resnet50_fpn_v2", "preprocess": SMALL}})
    got = hub.run("retina-small", [str(images[0])], device="cpu", dtype="fp32", score_threshold=0.0, top_k=1000)[0]
    direct = D.retinanet_resnet50_fpn_v2(weights=weights, **SMALL).eval()
    found = direct_detections(direct, weights, images[:1])[0]
    torch.testing.assert_close(torch.tensor([b.score for b in got.boxes]), found["scores"], rtol=0, atol=1e-5)


def test_missing_checkpoint_offline_names_the_file_and_the_fix(torch_home, fresh_hub):
    with pytest.raises(ModelUnavailableError) as err:
        hub.load("fasterrcnn-resnet50-fpn-v2", device="cpu")
    message = str(err.value)
    assert "fasterrcnn_resnet50_fpn_v2_coco-dd69338a.pth" in message and str(torch_home) in message
    assert "HF_HUB_OFFLINE" in message and "get_state_dict()" in message


def test_missing_checkpoint_cli_is_one_line(torch_home, images, tmp_path):
    import os

    env = {**os.environ, "TORCH_HOME": str(torch_home), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([HUB, "run", "retinanet", str(images[0])], capture_output=True,
                          text=True, env=env)
    assert done.returncode in (1, 2) and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "retinanet_resnet50_fpn_v2_coco" in done.stderr


def test_corrupt_checkpoint_is_refused_naming_it(torch_home, fresh_hub):
    path = loading.checkpoint_path(S.DeepLabV3_ResNet50_Weights.COCO_WITH_VOC_LABELS_V1)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"PK\x03\x04 not a checkpoint")
    with pytest.raises(WeightsError, match="deeplabv3_resnet50_coco-cd0a2569.pth"):
        hub.load("deeplabv3-resnet50", device="cpu")


def test_checkpoint_with_code_is_never_run(torch_home, fresh_hub):
    path = loading.checkpoint_path(S.FCN_ResNet50_Weights.COCO_WITH_VOC_LABELS_V1)
    path.parent.mkdir(parents=True)
    torch.save({"weights": torch.zeros(2), "hook": subprocess.Popen}, path)  # an object, not a tensor
    with pytest.raises(WeightsError, match="weights_only=True"):
        hub.load("fcn-resnet50", device="cpu")


def test_wrong_shapes_and_missing_weights_are_clear(tmp_path, fresh_hub):
    model = direct_segmenter("fcn_resnet50")
    directory = loading.save_directory(model, tmp_path / "seg", "fcn_resnet50", ["a", "b"])  # 21 outputs, 2 names
    with pytest.raises(WeightsError, match="do not fit torchvision's fcn_resnet50 with 2 classes"):
        hub.load(str(directory), device="cpu")
    (directory / loading.WEIGHTS_NAME).unlink()
    with pytest.raises(WeightsError, match="no model.safetensors"):
        hub.load(str(directory), device="cpu")


# -- options, inputs and results ------------------------------------------------------------------
@pytest.fixture(scope="module")
def faster_rcnn(tmp_path_factory):
    builder, weights = "fasterrcnn_resnet50_fpn_v2", DETECTORS["fasterrcnn_resnet50_fpn_v2"]
    directory = loading.save_directory(direct_detector(builder), tmp_path_factory.mktemp("frcnn") / "frcnn", builder,
                                       weights.meta["categories"], weights=full_name(weights), preprocess=SMALL,
                                       model_args=FEW[builder])
    return hub.load(str(directory), device="cpu", dtype="fp32", cache=False)


def test_score_threshold_and_top_k(faster_rcnn, images):
    every = faster_rcnn(str(images[0]), score_threshold=0.0)
    scores = [b.score for b in every.boxes]
    assert scores == sorted(scores, reverse=True) and min(scores) < 0.5 < max(scores)
    kept = faster_rcnn(str(images[0]), score_threshold=0.5)
    assert [b.score for b in kept.boxes] == [s for s in scores if s >= 0.5]
    assert faster_rcnn(str(images[0]), score_threshold="0.5") == kept  # -o strings are converted
    assert faster_rcnn(str(images[0]), score_threshold=0.0, top_k=2).boxes == every.boxes[:2]


@pytest.mark.parametrize("options, named", [({"score_threshold": 1.5}, "score_threshold"), ({"top_k": 0}, "top_k"),
                                            ({"masks": True}, "masks")])
def test_bad_options_are_refused_before_any_input(faster_rcnn, options, named):
    with pytest.raises(OptionError, match=named):
        faster_rcnn("does-not-exist.jpg", **options)


def test_bad_inputs_name_the_input(faster_rcnn, tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        faster_rcnn(str(tmp_path / "missing.jpg"))
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG not really")
    with pytest.raises(InputError, match="broken.png"):
        faster_rcnn(str(broken))
    assert faster_rcnn([]) == []


def test_results_round_trip_through_json(faster_rcnn, images):
    result = faster_rcnn(str(images[1]), score_threshold=0.0, top_k=3)
    assert Detection.from_dict(json.loads(json.dumps(result.to_dict()))) == result
    assert result.summary().count("[") == 3
    seg = Segmentation([[0, 1], [1, 1]], ["bg", "cat"], [], 2, 2)
    assert Segmentation.from_dict(json.loads(json.dumps(seg.to_dict()))) == seg


def test_bf16_autocast_runs_and_agrees_roughly(segmenter, images):
    directory, _, _ = segmenter
    fp32 = hub.load(str(directory), device="cpu", dtype="fp32", cache=False)(str(images[0]))
    bf16 = hub.load(str(directory), device="cpu", dtype="bf16", cache=False)(str(images[0]))
    same = sum(a == b for ra, rb in zip(fp32.class_map, bf16.class_map) for a, b in zip(ra, rb))
    assert (bf16.width, bf16.height) == (fp32.width, fp32.height)
    assert same / (fp32.width * fp32.height) > 0.5


# -- drawing for --save-dir ---------------------------------------------------------------------------
def test_save_detection_draws_on_a_copy(faster_rcnn, images, tmp_path):
    from PIL import Image

    before = images[0].read_bytes()
    result = faster_rcnn(str(images[0]), score_threshold=0.0, top_k=1)
    written = drawing.save_detection(result, str(images[0]), str(images[0]), tmp_path)
    assert written == [tmp_path / "shapes0.detection.png"] and images[0].read_bytes() == before
    drawn = Image.open(written[0]).convert("RGB")
    x0, y0, x1, y1 = result.boxes[0].box
    colour = drawing.class_colour(result.boxes[0].index)
    coloured = [(x, y) for x in range(drawn.width) for y in range(drawn.height) if drawn.getpixel((x, y)) == colour]
    assert len(coloured) >= 2 * (y1 - y0) and Image.open(images[0]).convert("RGB").getcolors(1 << 16).count(colour) == 0
    assert all(x >= x0 - 2 and y <= y1 + 2 for x, y in coloured)  # the outline, and the label above it
    again = drawing.save_detection(result, str(images[0]), str(images[0]), tmp_path)
    assert again == [tmp_path / "shapes0.detection-2.png"]  # nothing in DIR is replaced


def test_save_segmentation_tints_classes_and_writes_the_map(tmp_path, images):
    from PIL import Image

    source = Image.open(images[2]).convert("RGB")
    w, h = source.size
    class_map = [[3 if x >= w // 2 else 0 for x in range(w)] for _ in range(h)]
    result = Segmentation(class_map, [f"c{i}" for i in range(4)], [], w, h)
    overlay, classes = drawing.save_segmentation(result, "shot.jpg", source, tmp_path)
    assert overlay.name == "shot.segmentation.png" and classes.name == "shot.classes.png"
    drawn = Image.open(overlay).convert("RGB")
    assert drawn.getpixel((1, 1)) == source.getpixel((1, 1))  # background untouched
    assert drawn.getpixel((w - 1, 1)) != source.getpixel((w - 1, 1))
    assert [[Image.open(classes).getpixel((x, y)) for x in range(w)] for y in range(h)] == class_map
    with pytest.raises(InputError, match="class map"):
        drawing.save_segmentation(Segmentation([[0]], ["bg"], [], 1, 1), "shot.jpg", source, tmp_path)


def test_cli_save_dir_writes_copies(faster_rcnn, images, tmp_path):
    out = tmp_path / "drawn"
    before = images[1].read_bytes()
    done = subprocess.run([HUB, "run", str(faster_rcnn.spec.source), str(images[1]),
                           "--device", "cpu", "--dtype", "fp32", "-o", "score_threshold=0.3", "--save-dir", str(out)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (out / "shapes1.detection.png").is_file() and images[1].read_bytes() == before
    assert "saved 1 file" in done.stderr and "(0." in done.stdout  # the table shows the boxes' scores


# -- the catalogue, tasks and cheap imports ---------------------------------------------------------
def test_catalogue_entries_match_the_weights_meta(fresh_hub):
    from mmhub_torchvision.catalog import MODELS

    for model_id, entry in MODELS.items():
        spec = hub.get_spec(model_id)
        weights = loading.get_weights(spec.source.split(":", 1)[1])
        assert spec.plugin == "torchvision" and spec.params == weights.meta["num_params"]
        assert spec.license and torchvision.models.get_model_weights(spec.arch) is type(weights)
        assert spec.task == entry["task"]
    assert {s.id for s in hub.list_models(task="object-detection")} == {
        "fasterrcnn-resnet50-fpn-v2", "retinanet-resnet50-fpn-v2", "fcos-resnet50-fpn"}
    assert {s.id for s in hub.list_models(task="segmentation")} == {"deeplabv3-resnet50", "fcn-resnet50"}


def test_tasks_and_options_show_without_loading(fresh_hub):
    done = subprocess.run([HUB, "tasks"], capture_output=True, text=True)
    assert done.returncode == 0 and "object-detection" in done.stdout and "image-segmentation" in done.stdout
    info = subprocess.run([HUB, "info", "deeplabv3", "--json"], capture_output=True, text=True)
    assert [o["name"] for o in json.loads(info.stdout)["options"]] == ["masks"]


def test_importing_the_plugin_and_listing_never_import_torch():
    code = ("import sys, mmhub_torchvision, mmhub_torchvision.results, mmhub_torchvision.drawing, hub; "
            "hub.list_models(plugin='torchvision'); print(sorted(m for m in ('torch', 'torchvision', 'numpy') "
            "if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_cli_segmentation_json_and_save_dir(tmp_path, images):
    weights = SEGMENTERS["fcn_resnet50"]
    directory = loading.save_directory(direct_segmenter("fcn_resnet50"), tmp_path / "fcn", "fcn_resnet50",
                                       weights.meta["categories"], weights=full_name(weights), preprocess=SEG_SMALL)
    out = tmp_path / "masks"
    done = subprocess.run([HUB, "run", str(directory), str(images[2]), "--device", "cpu", "--dtype", "fp32",
                           "-o", "masks=true", "--json", "--save-dir", str(out)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    result = Segmentation.from_dict(json.loads(done.stdout)[0])
    assert (result.width, result.height) == (64, 80) and len(result.masks) == len(result.classes) >= 1
    assert sorted(p.name for p in out.iterdir()) == ["shapes2.classes.png", "shapes2.segmentation.png"]


def test_bf16_detection_runs_on_the_original_image_size(faster_rcnn, images):
    bf16 = hub.load(faster_rcnn.spec.source, device="cpu", dtype="bf16", cache=False)
    result = bf16(str(images[2]), score_threshold=0.0)
    assert (result.width, result.height) == (64, 80) and result.boxes
    assert all(isinstance(b.score, float) and 0 <= b.box[0] <= b.box[2] <= 64 for b in result.boxes)
