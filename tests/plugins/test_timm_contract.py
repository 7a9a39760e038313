"""The timm plugin's models keep the plugin contract, checked with the test kit (hub.testing).

A tiny timm ResNet saved with timm's own ``save_for_hf`` serves both of the plugin's tasks.
"""
from __future__ import annotations

import pytest

pytest.importorskip("timm")

from hub.testing import check_model_contract  # noqa: E402
from tiny_models import save_timm  # noqa: E402

pytestmark = [pytest.mark.mmhub_plugins("timm"), pytest.mark.slow]  # slow: tiny backbone models


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    import torch

    torch.manual_seed(0)
    return save_timm(tmp_path_factory.mktemp("timm"))


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """Three scikit-learn digits as RGB PNG files of different sizes, and one as an array."""
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    root, digits = tmp_path_factory.mktemp("digits"), load_digits().images
    paths = []
    for i, size in enumerate((40, 64, 33)):
        path = root / f"digit{i}.png"
        Image.fromarray((digits[i] * 16).astype("uint8")).convert("RGB").resize((size, size)).save(path)
        paths.append(str(path))
    return paths + [np.stack([(digits[3] * 16).astype("uint8")] * 3, axis=-1)]


def test_image_classification_keeps_the_contract_and_the_plugin_imports_light(isolated_hub, tiny_dir, images):
    report = check_model_contract(str(tiny_dir), images, task="image-classification")
    assert {"listing-imports", "import-time"} <= set(report.checked) and not report.skipped


def test_image_embedding_keeps_the_contract(isolated_hub, tiny_dir, images):
    check_model_contract(str(tiny_dir), images, task="image-embedding", skip=("listing-imports", "import-time"))
