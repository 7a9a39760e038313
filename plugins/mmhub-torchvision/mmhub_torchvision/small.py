"""FCN and DeepLabV3 on a ResNet-18 backbone, built from torchvision's own parts: small enough to train on a CPU.

torchvision builds its segmentation models on ResNet-50 and ResNet-101 only. These builders put the
same heads (``FCNHead``, ``DeepLabHead``) and the same model classes (``FCN``, ``DeepLabV3``, which
resize the logits to the input size) on torchvision's ``resnet18``. ResNet-18's basic blocks cannot
be dilated, so ``out_layer`` picks where the backbone is read: ``layer4`` (stride 32, 512 channels),
``layer3`` (stride 16) or ``layer2`` (stride 8, 128 channels; the later stages are dropped). They
take the keywords of torchvision's builders and have no pretrained weights of their own.
"""
from __future__ import annotations

CHANNELS = {"layer2": 128, "layer3": 256, "layer4": 512}


def _backbone(out_layer: str, weights_backbone=None):
    """torchvision's ResNet-18 read at ``out_layer`` (later stages left out)."""
    from torchvision.models import resnet18
    from torchvision.models._utils import IntermediateLayerGetter

    if out_layer not in CHANNELS:
        raise ValueError(f"out_layer must be one of {', '.join(CHANNELS)}, got {out_layer!r}")
    return IntermediateLayerGetter(resnet18(weights=weights_backbone), return_layers={out_layer: "out"})


def _check(weights, aux_loss) -> None:
    if weights is not None:
        raise ValueError("there are no pretrained weights for the ResNet-18 segmentation models; pass weights=None")
    if aux_loss:
        raise ValueError("the ResNet-18 segmentation models have no auxiliary head; pass aux_loss=False")


def fcn_resnet18(*, weights=None, weights_backbone=None, num_classes: int | None = None, aux_loss=None,
                 out_layer: str = "layer4", **kwargs):
    """FCN (torchvision's FCNHead) on ResNet-18 read at ``out_layer``."""
    from torchvision.models.segmentation.fcn import FCN, FCNHead

    _check(weights, aux_loss)
    return FCN(_backbone(out_layer, weights_backbone), FCNHead(CHANNELS[out_layer], num_classes or 21))


def deeplabv3_resnet18(*, weights=None, weights_backbone=None, num_classes: int | None = None, aux_loss=None,
                       out_layer: str = "layer4", **kwargs):
    """DeepLabV3 (torchvision's DeepLabHead, ASPP) on ResNet-18 read at ``out_layer``."""
    from torchvision.models.segmentation.deeplabv3 import DeepLabHead, DeepLabV3

    _check(weights, aux_loss)
    return DeepLabV3(_backbone(out_layer, weights_backbone), DeepLabHead(CHANNELS[out_layer], num_classes or 21))
