"""The open_clip plugin's models keep the plugin contract, checked with the test kit (hub.testing).

A one-layer CLIP saved in open_clip's hub layout serves both tasks; each call takes the labels or
texts that the task needs, passed to every call of the check as options.
"""
from __future__ import annotations

import pytest

pytest.importorskip("open_clip")

from hub.testing import check_model_contract  # noqa: E402
from test_timm_contract import images  # noqa: E402,F401  (the same digit images)
from tiny_models import save_openclip  # noqa: E402

pytestmark = [pytest.mark.mmhub_plugins("openclip"), pytest.mark.slow]  # slow: tiny backbone models
LABELS = ["zero", "one", "two", "three"]


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    import torch

    torch.manual_seed(0)
    return save_openclip(tmp_path_factory.mktemp("openclip"))


def test_zero_shot_keeps_the_contract_and_the_plugin_imports_light(isolated_hub, tiny_dir, images):
    report = check_model_contract(str(tiny_dir), images, task="zero-shot-image-classification",
                                  options={"labels": LABELS})
    assert {"listing-imports", "import-time"} <= set(report.checked) and not report.skipped


def test_image_text_similarity_keeps_the_contract(isolated_hub, tiny_dir, images):
    check_model_contract(str(tiny_dir), images, task="image-text-similarity",
                         options={"texts": ["a digit zero", "a one", "two"]}, skip=("listing-imports", "import-time"))
