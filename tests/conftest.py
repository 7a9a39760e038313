"""Shared fixtures: a clean plugin manager and catalogue per test, and offline hub access."""
from __future__ import annotations

import os
import subprocess
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


PYTHON_PROGRAMS = {sys.executable, str(VENV_BIN / "hub"), str(VENV_BIN / "torchrun"), "python", "python3", "hub",
                   "torchrun"}


def starts_python(args) -> bool:
    """Whether a ``Popen`` argument list runs Python (the interpreter, ``hub`` or ``torchrun``), also through a shell."""
    argv = [args] if isinstance(args, (str, bytes, os.PathLike)) else list(args)
    words = [w for a in argv for w in os.fsdecode(a).split()]
    return any(w in PYTHON_PROGRAMS or os.path.basename(w) in PYTHON_PROGRAMS for w in words)


@pytest.fixture(autouse=True)
def fast_tests_stay_in_process(request, monkeypatch):
    """Under ``-m "not slow"`` (``scripts/test.sh --fast``) a test that starts a Python process fails, naming the
    mark it needs: a new interpreter costs a second or more, and the fast run is for in-process tests."""
    if "not slow" not in (request.config.option.markexpr or "") or request.node.get_closest_marker("slow"):
        return
    real_init = subprocess.Popen.__init__

    def guarded_init(self, args, *rest, **kwargs):
        if starts_python(args):
            pytest.fail(f"{request.node.nodeid} starts a Python process ({args!r:.120}); mark it "
                        "@pytest.mark.slow (docs/development.md, Tests)", pytrace=False)
        real_init(self, args, *rest, **kwargs)

    monkeypatch.setattr(subprocess.Popen, "__init__", guarded_init)


@pytest.fixture(scope="module")
def openvino_embedder(tmp_path_factory):
    """(a tiny sentence-transformers BERT, its fp32 OpenVINO export made by ``hub export``)."""
    from export_models import hub_export, save_embedder

    root = tmp_path_factory.mktemp("openvino-embedder")
    source = save_embedder(root / "embedder")
    return source, hub_export(source, "openvino", root / "embedder-openvino")
