"""The fast run (``scripts/test.sh --fast``, ``-m "not slow"``) stays in-process: the guard in ``conftest.py``."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import ROOT, VENV_BIN, hub_exe, starts_python


@pytest.mark.parametrize("args", [
    [sys.executable, "-c", "pass"], [hub_exe(), "list"], "hub list --json", [str(VENV_BIN / "torchrun"), "x.py"],
    ["bash", "-c", '"$@" | head -n 1', "bash", hub_exe(), "list"], [b"python3", b"-m", b"hub.cli"],
    ["/usr/bin/env", "python", "-c", "pass"],
])
def test_a_python_process_is_recognised(args):
    assert starts_python(args)


@pytest.mark.parametrize("args", [["mount", "-t", "tmpfs"], ["ldconfig", "-p"], "espeak-ng --version",
                                  ["/usr/bin/chromium", "--headless"], ["bash", "-c", "exit 0"]])
def test_other_programs_are_left_alone(args):
    assert not starts_python(args)


SAMPLE = '''
import subprocess, sys

import pytest


def test_starts_python():
    subprocess.run([sys.executable, "-c", "pass"], check=True)


@pytest.mark.slow
def test_marked_slow_starts_python():
    subprocess.run([sys.executable, "-c", "pass"], check=True)


def test_runs_another_program():
    subprocess.run(["true"], check=True)
'''


@pytest.mark.slow
@pytest.mark.parametrize("fast, outcome", [(True, "1 failed, 1 passed, 1 deselected"), (False, "3 passed")])
def test_the_fast_run_fails_an_unmarked_test_that_starts_python(tmp_path, fast, outcome):
    (tmp_path / "test_sample.py").write_text(SAMPLE)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "tests")}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "conftest",
                           *(["-m", "not slow"] if fast else []), str(tmp_path / "test_sample.py")],
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert outcome in done.stdout, done.stdout[-3000:]
    if fast:
        assert "test_starts_python starts a Python process" in done.stdout
        assert "mark it @pytest.mark.slow" in done.stdout
