"""`hub install` / `hub uninstall` round trip in a fresh virtual environment, and the README's plugin."""
import json
import os
import re
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def sh(cmd, **kw):
    done = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=600, **kw)
    assert done.returncode == 0, f"{cmd} failed:\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def bare_venv(tmp_path_factory):
    """A new venv with only the core hub (no torch): listing must work there."""
    root = tmp_path_factory.mktemp("venv")
    venv.EnvBuilder(with_pip=True).create(root)
    py = root / "bin" / "python"
    sh([py, "-m", "pip", "install", "-q", "-c", ROOT / "constraints.txt", "click", "pluggy", "pyyaml", "setuptools", "wheel"])
    sh([py, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "-e", ROOT])
    return root / "bin"


def listed(bin_dir) -> set[str]:
    out = sh([bin_dir / "hub", "list", "--json"]).stdout
    return {row["plugin"] for row in json.loads(out)}


@pytest.mark.slow
def test_install_uninstall_round_trip_of_a_shipped_plugin(bare_venv):
    assert listed(bare_venv) == set()
    sh([bare_venv / "hub", "install", "timm", "--no-deps"])
    assert listed(bare_venv) == {"timm"}
    plugins = json.loads(sh([bare_venv / "hub", "plugins", "--json"]).stdout)
    assert [(p["name"], p["distribution"], p["error"]) for p in plugins] == [("timm", "mmhub-timm", None)]
    sh([bare_venv / "hub", "uninstall", "timm"])
    assert listed(bare_venv) == set()


@pytest.mark.slow
def test_uninstalling_a_plugin_that_is_not_installed_is_a_clean_error(bare_venv):
    done = subprocess.run([bare_venv / "hub", "uninstall", "openclip"], capture_output=True, text=True)
    assert done.returncode == 2 and "not installed" in done.stderr and "Traceback" not in done.stderr


def readme_blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)


def test_readme_minimal_plugin_works(tmp_path):
    """The plugin shown in the README, installed as a distribution, lists and runs."""
    module = next(b for b in readme_blocks("python") if "mmhub_charcount.py" in b)
    pyproject = next(b for b in readme_blocks("toml") if "mmhub-charcount" in b)
    assert 'charcount = "mmhub_charcount"' in pyproject
    (tmp_path / "mmhub_charcount.py").write_text(module)
    info = tmp_path / "mmhub_charcount-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mmhub-charcount\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text("[mmhub]\ncharcount = mmhub_charcount\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    hub_cmd = [sys.executable, "-c", "import sys; from hub.cli import main; sys.argv[0] = 'hub'; main()"]
    rows = json.loads(sh([*hub_cmd, "list", "letter-*", "--json"], env=env).stdout)
    assert [r["id"] for r in rows] == ["letter-counts"]
    out = json.loads(sh([*hub_cmd, "run", "letter-counts", "hello", "--json"], env=env).stdout)
    vec = out[0]["embedding"]
    assert vec[ord("l") - ord("a")] == pytest.approx(0.4) and sum(vec) == pytest.approx(1.0)
