"""This plugin's catalogue and tasks, as plain data: nothing here imports torch or torchvision.

Each model names torchvision's builder function and its weights enum member; the parameter counts
are the weights' own ``meta["num_params"]``. torchvision's weights carry no licence in their meta:
the library and its model weights are distributed under BSD-3-Clause, and the models were trained
on COCO (whose annotations are CC-BY-4.0), as the descriptions say.
"""
from __future__ import annotations

PLUGIN = "torchvision"
SOURCE_PREFIX = "torchvision:"
DETECTION = "object-detection"
SEGMENTATION = "image-segmentation"

# builder name -> (module holding the builder and its weights enum, task)
BUILDERS: dict[str, tuple[str, str]] = {
    "fasterrcnn_resnet50_fpn_v2": ("torchvision.models.detection", DETECTION),
    "retinanet_resnet50_fpn_v2": ("torchvision.models.detection", DETECTION),
    "fcos_resnet50_fpn": ("torchvision.models.detection", DETECTION),
    "deeplabv3_resnet50": ("torchvision.models.segmentation", SEGMENTATION),
    "fcn_resnet50": ("torchvision.models.segmentation", SEGMENTATION),
    # this plugin's own small builders (ResNet-18 backbone, no pretrained weights): mmhub_torchvision.small
    "fcn_resnet18": ("mmhub_torchvision.small", SEGMENTATION),
    "deeplabv3_resnet18": ("mmhub_torchvision.small", SEGMENTATION),
}

_COCO = "COCO train2017"
_VOC = "a COCO train2017 subset with the 20 Pascal VOC categories"
MODELS: dict[str, dict] = {
    "fasterrcnn-resnet50-fpn-v2": {
        "task": DETECTION, "arch": "fasterrcnn_resnet50_fpn_v2",
        "source": SOURCE_PREFIX + "FasterRCNN_ResNet50_FPN_V2_Weights.COCO_V1",
        "aliases": ["fasterrcnn_resnet50_fpn_v2", "faster-rcnn"], "params": 43712278,
        "description": ("Faster R-CNN ResNet-50 FPN v2: boxes for the 91 COCO categories (box mAP 46.7)"
                        f", trained on {_COCO}."),
    },
    "retinanet-resnet50-fpn-v2": {
        "task": DETECTION, "arch": "retinanet_resnet50_fpn_v2",
        "source": SOURCE_PREFIX + "RetinaNet_ResNet50_FPN_V2_Weights.COCO_V1",
        "aliases": ["retinanet_resnet50_fpn_v2", "retinanet"], "params": 38198935,
        "description": ("RetinaNet ResNet-50 FPN v2: one-stage detector, 91 COCO categories (box mAP 41.5)"
                        f", trained on {_COCO}."),
    },
    "fcos-resnet50-fpn": {
        "task": DETECTION, "arch": "fcos_resnet50_fpn",
        "source": SOURCE_PREFIX + "FCOS_ResNet50_FPN_Weights.COCO_V1",
        "aliases": ["fcos_resnet50_fpn", "fcos"], "params": 32269600,
        "description": ("FCOS ResNet-50 FPN: anchor-free detector, 91 COCO categories (box mAP 39.2)"
                        f", trained on {_COCO}."),
    },
    "deeplabv3-resnet50": {
        "task": SEGMENTATION, "arch": "deeplabv3_resnet50",
        "source": SOURCE_PREFIX + "DeepLabV3_ResNet50_Weights.COCO_WITH_VOC_LABELS_V1",
        "aliases": ["deeplabv3_resnet50", "deeplabv3"], "params": 42004074,
        "description": f"DeepLabV3 ResNet-50: a class per pixel, 21 classes (mIoU 66.4), trained on {_VOC}.",
    },
    "fcn-resnet50": {
        "task": SEGMENTATION, "arch": "fcn_resnet50",
        "source": SOURCE_PREFIX + "FCN_ResNet50_Weights.COCO_WITH_VOC_LABELS_V1",
        "aliases": ["fcn_resnet50"], "params": 35322218,
        "description": f"FCN ResNet-50: a class per pixel, 21 classes (mIoU 60.5), trained on {_VOC}.",
    },
}
LICENSE = "bsd-3-clause"


def model_entries() -> list[dict]:
    """The catalogue entries this plugin registers (dicts in the catalogue's own fields)."""
    return [{"id": model_id, "plugin": PLUGIN, "license": LICENSE, **fields} for model_id, fields in MODELS.items()]


TASK_DECLARATIONS: list[dict] = [
    {"name": DETECTION, "modality": "vision", "inputs": "image",
     "result": "mmhub_torchvision.results:Detection",
     "description": "Boxes in the image's own pixel coordinates, with labels and scores.",
     "aliases": ["detection", "object-detector"], "view": "table",
     "save": "mmhub_torchvision.drawing:save_detection"},
    {"name": SEGMENTATION, "modality": "vision", "inputs": "image",
     "result": "mmhub_torchvision.results:Segmentation",
     "description": "A class per pixel at the image's own size, plus per-class masks on request.",
     "aliases": ["semantic-segmentation", "segmentation"], "view": "table",
     "save": "mmhub_torchvision.drawing:save_segmentation"},
]
