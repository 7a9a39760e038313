"""Shared fixtures: a clean plugin manager and catalogue per test, and offline hub access."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent


@pytest.fixture
def fresh_hub(monkeypatch):
    """Rebuild plugin manager and catalogue before and after the test."""
    from hub.plugins import reset_plugin_manager

    reset_plugin_manager()
    yield
    reset_plugin_manager()


def _torch_on_one_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def one_thread():
    """One torch thread for the test: tiny models train faster than on two oversubscribed cores."""
    yield from _torch_on_one_thread()


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a whole module (``pytestmark = pytest.mark.usefixtures("one_torch_thread")``):
    tiny models are all per-step overhead, and the cores are shared."""
    yield from _torch_on_one_thread()


@pytest.fixture
def cli_runner():
    from click.testing import CliRunner

    return CliRunner()


def hub_exe() -> str:
    return str(VENV_BIN / "hub")


@pytest.fixture(scope="module")
def openvino_embedder(tmp_path_factory):
    """(a tiny sentence-transformers BERT, its fp32 OpenVINO export made by ``hub export``)."""
    from click.testing import CliRunner

    from export_models import save_embedder
    from hub.cli import cli

    root = tmp_path_factory.mktemp("openvino-embedder")
    source = save_embedder(root / "embedder")
    out = root / "embedder-openvino"
    result = CliRunner(env={"HUB_ONNX_EXPORTER": "torchscript", "HUB_RUNTIME_THREADS": "1"}).invoke(
        cli, ["export", str(source), "--format", "openvino", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return source, out
