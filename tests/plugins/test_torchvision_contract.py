"""The torchvision plugin's models keep the plugin contract, checked with the test kit (hub.testing).

Each of the five architectures is built offline with random weights at a small input size and saved
as a directory the plugin loads (``torchvision_config.json`` + ``model.safetensors``), as in
test_torchvision.py; results are the plugin's own task result classes, declared through register_tasks.
"""
from __future__ import annotations

import pytest

pytest.importorskip("torchvision")

from hub.testing import check_model_contract  # noqa: E402
from mmhub_torchvision import loading  # noqa: E402
from test_torchvision import (DETECTORS, FEW, SEG_SMALL, SEGMENTERS, SMALL, direct_detector,  # noqa: E402
                              direct_segmenter, full_name, images)  # noqa: F401  (images: a fixture)

pytestmark = [pytest.mark.mmhub_plugins("torchvision"), pytest.mark.slow]
PROCESS_CHECKS = ("listing-imports", "import-time")


def saved(root, builder: str):
    """The directory of a random-weight model of ``builder``, at the small sizes of the parity tests."""
    if builder in DETECTORS:
        weights = DETECTORS[builder]
        return loading.save_directory(direct_detector(builder), root / builder, builder, weights.meta["categories"],
                                      weights=full_name(weights), preprocess=SMALL, model_args=FEW.get(builder))
    weights = SEGMENTERS[builder]
    return loading.save_directory(direct_segmenter(builder), root / builder, builder, weights.meta["categories"],
                                  weights=full_name(weights), preprocess=SEG_SMALL)


def two(images) -> list[str]:
    """Two images of different sizes: batched together they are padded, one at a time they are not."""
    return [str(images[0]), str(images[2])]


def test_the_plugin_lists_without_torch_and_imports_within_budget(isolated_hub, tmp_path, images):
    report = check_model_contract(str(saved(tmp_path, "fcn_resnet50")), two(images), batch_sizes=(1,))
    assert set(PROCESS_CHECKS) <= set(report.checked) and not report.skipped


@pytest.mark.parametrize("builder", [*DETECTORS, "deeplabv3_resnet50"])
def test_every_architecture_keeps_the_contract(isolated_hub, tmp_path, images, builder):
    report = check_model_contract(str(saved(tmp_path, builder)), two(images), batch_sizes=(1,), skip=PROCESS_CHECKS)
    assert len(report.checked) == 8
