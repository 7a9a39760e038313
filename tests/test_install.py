"""`hub install` / `hub uninstall` round trip in a fresh virtual environment, and the plugin the docs show."""
import json
import os
import re
import subprocess
import sys
import venv
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # installs distributions with pip

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


WRITING_A_PLUGIN = ROOT / "docs" / "plugins" / "index.md"


def doc_blocks(lang: str, page: Path = WRITING_A_PLUGIN) -> list[str]:
    """The fenced code blocks of one language on a docs page, as written there."""
    return re.findall(rf"```{lang}\n(.*?)```", page.read_text(), flags=re.S)


def test_the_documented_minimal_plugin_works(tmp_path):
    """The plugin shown in docs/plugins/index.md, installed as a distribution, lists and runs."""
    module = next(b for b in doc_blocks("python") if "mmhub_charcount.py" in b)
    pyproject = next(b for b in doc_blocks("toml") if "mmhub-charcount" in b)
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
    smoothed = json.loads(sh([*hub_cmd, "run", "letter-counts", "hello", "-o", "smooth=1", "--json"], env=env).stdout)
    assert smoothed[0]["embedding"][ord("l") - ord("a")] == pytest.approx(3 / 31)
    info = json.loads(sh([*hub_cmd, "info", "letter-counts", "--json"], env=env).stdout)
    assert [o["name"] for o in info["options"]] == ["smooth"]
    code = ("import hub; from hub.errors import OptionError\n"
            "print(hub.load('letter-counts', smooth=1)('hello').embedding[11])\n"
            "try:\n    hub.load('letter-counts', smoth=1)\nexcept OptionError as exc:\n    print(exc)\n")
    lines = sh([sys.executable, "-c", code], env=env).stdout.splitlines()
    assert float(lines[0]) == pytest.approx(3 / 31)  # the load option reached the pipeline
    assert "load option 'smoth'" in lines[1] and "Did you mean: smooth?" in lines[1]


# -- install and uninstall touch only plugins (pip replaced by a fake that writes dist-info) ----
class FakePip:
    """Stands in for ``hub.install._pip``: installs a package as a dist-info in ``site``, removes it again."""

    def __init__(self, site: Path, entry_points: dict[str, str], keep_on_uninstall: bool = False):
        self.site, self.entry_points, self.keep = site, entry_points, keep_on_uninstall
        self.calls: list[list[str]] = []
        self.modules: dict[str, str] = {}  # distribution -> the source of its plugin module (default: 'os')

    def info_dir(self, dist: str) -> Path:
        return self.site / f"{dist.replace('-', '_')}-1.0.dist-info"

    def __call__(self, args):
        self.calls.append(list(args))
        verb, name = args[0], [a for a in args[1:] if not a.startswith("-")][0]
        if verb == "install":
            info = self.info_dir(name)
            info.mkdir(exist_ok=True)
            (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
            if name in self.entry_points:
                module = "os"
                if name in self.modules:
                    module = f"{name.replace('-', '_')}_{id(self)}_{len(self.calls)}"
                    (self.site / f"{module}.py").write_text(self.modules[name])
                (info / "entry_points.txt").write_text(f"[mmhub]\n{self.entry_points[name]} = {module}\n")
        elif verb == "uninstall" and not self.keep:
            import shutil

            shutil.rmtree(self.info_dir(name))


@pytest.fixture
def fake_pip(tmp_path, monkeypatch):
    import hub.install

    monkeypatch.syspath_prepend(str(tmp_path))
    pip = FakePip(tmp_path, {"mmhub-fakeplug": "fakeplug"})
    monkeypatch.setattr(hub.install, "_pip", pip)
    return pip


def hub_cli(cli_runner, args, input=None):
    from hub.cli import cli

    return cli_runner.invoke(cli, args, input=input)


def one_error_line(result, *words):
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2 and len(lines[-1:]) == 1 and lines[-1].startswith("Error: "), result.output
    assert "Traceback" not in result.output
    for word in words:
        assert word in lines[-1], lines[-1]


def test_install_of_a_plugin_package_succeeds(fake_pip, cli_runner):
    result = hub_cli(cli_runner, ["install", "mmhub-fakeplug"])
    assert result.exit_code == 0 and "plugin fakeplug" in result.output, result.output
    assert fake_pip.calls == [["install", "mmhub-fakeplug"]]


@pytest.mark.parametrize("how, input, removed", [
    (["--yes"], None, True), ([], "y\n", True), ([], "n\n", False), ([], None, False)])
def test_install_of_a_package_that_is_not_a_plugin_offers_to_remove_it(fake_pip, cli_runner, how, input, removed):
    result = hub_cli(cli_runner, ["install", "leftpad-utils", *how], input=input)
    one_error_line(result, "'leftpad-utils' is not an mmhub plugin",
                   "removed again" if removed else "left installed")
    assert fake_pip.info_dir("leftpad-utils").exists() == (not removed)
    assert (["uninstall", "-y", "leftpad-utils"] in fake_pip.calls) == removed


@pytest.mark.parametrize("name", ["click", "pluggy", "PyYAML", "torch"])
def test_install_of_an_installed_non_plugin_is_refused_before_pip(fake_pip, cli_runner, name):
    one_error_line(hub_cli(cli_runner, ["install", name]), "already installed and is not an mmhub plugin")
    assert fake_pip.calls == []


@pytest.mark.parametrize("name, meant", [("transfomers", "transformers"), ("tim", "timm"), ("openclp", "openclip"),
                                         ("mmhub-transformer", "transformers"), ("Timn", "timm")])
def test_near_miss_plugin_names_get_did_you_mean_instead_of_pip(fake_pip, cli_runner, name, meant):
    one_error_line(hub_cli(cli_runner, ["install", name]), f"Did you mean: hub install {meant}?")
    assert fake_pip.calls == []


@pytest.mark.parametrize("name, words", [
    ("torch", "is installed but is not an mmhub plugin"), ("click", "is installed but is not an mmhub plugin"),
    ("pluggy", "is installed but is not an mmhub plugin"), ("mmhub", "is the hub itself"),
    ("never-installed-pkg", "is not installed; nothing to uninstall"),
    ("transformer", "Did you mean: transformers?")])
def test_uninstall_refuses_anything_but_an_installed_plugin(fake_pip, cli_runner, name, words):
    one_error_line(hub_cli(cli_runner, ["uninstall", name]), words)
    assert fake_pip.calls == []


def test_uninstall_removes_an_installed_plugin_and_checks_it_is_gone(fake_pip, cli_runner):
    fake_pip(["install", "mmhub-fakeplug"])
    for name in ("fakeplug", "mmhub-fakeplug", "mmhub_fakeplug"):
        fake_pip.keep = True
        one_error_line(hub_cli(cli_runner, ["uninstall", name]), "still installed")
    fake_pip.keep = False
    result = hub_cli(cli_runner, ["uninstall", "fakeplug"])
    assert result.exit_code == 0 and "Uninstalled mmhub-fakeplug" in result.output
    assert not fake_pip.info_dir("mmhub-fakeplug").exists()
    one_error_line(hub_cli(cli_runner, ["uninstall", "fakeplug"]), "not installed")


BROKEN_PLUGINS = {  # the plugin module's source -> words the error names
    "import mmhub_missing_backbone_lib\n": ["import failed", "ModuleNotFoundError", "mmhub_missing_backbone_lib"],
    "def broken(:\n": ["import failed", "SyntaxError"],
    "raise RuntimeError('no GPU driver found')\n": ["import failed", "RuntimeError: no GPU driver found"],
    "import sys\nsys.exit(3)\n": ["import failed", "SystemExit"],
    "from hub import hookimpl\n\n@hookimpl\ndef register_model(register):\n    pass\n":
        ["unknown hook 'register_model'", "did you mean 'register_models'"],
    "from hub import hookimpl\n\n@hookimpl\ndef register_models(registrar):\n    pass\n":
        ["invalid hook implementation", "registrar"],
    "MMHUB_PLUGIN_API = '9.0'\n": ["incompatible plugin API"],
    "MMHUB_PLUGIN_API = 'one'\n": ["incompatible plugin API"],
}


@pytest.mark.parametrize("source", sorted(BROKEN_PLUGINS))
def test_install_of_a_plugin_that_then_fails_to_load_says_so_and_why(fake_pip, cli_runner, fresh_hub, source):
    fake_pip.modules["mmhub-fakeplug"] = source
    result = hub_cli(cli_runner, ["install", "mmhub-fakeplug"])
    one_error_line(result, "pip installed mmhub-fakeplug, but it does not load", "plugin 'fakeplug'",
                   "hub uninstall fakeplug", *BROKEN_PLUGINS[source])
    assert "Installed" not in result.output and "now show" not in result.output
    assert fake_pip.info_dir("mmhub-fakeplug").exists()  # left installed, as the message says
    listed = hub_cli(cli_runner, ["list", "--json"])
    assert listed.exit_code == 0 and "all-minilm-l6-v2" in listed.stdout


@pytest.mark.parametrize("source, words", [
    ("from hub import hookimpl\n\n@hookimpl\ndef register_models(register):\n    raise ValueError('half')\n",
     "register_models failed"),
    ("from hub import hookimpl\n\n@hookimpl\ndef register_models(register):\n"
     "    register({'id': 'all-minilm-l6-v2', 'task': 'text-embedding', 'source': 'x'})\n",
     "registers the model id 'all-minilm-l6-v2', which plugin 'transformers'"),
])
def test_install_of_a_plugin_that_loses_a_contribution_warns_naming_it(fake_pip, cli_runner, fresh_hub, source, words):
    fake_pip.modules["mmhub-fakeplug"] = source
    result = hub_cli(cli_runner, ["install", "mmhub-fakeplug"])
    assert result.exit_code == 0 and "Installed mmhub-fakeplug (plugin fakeplug)" in result.output, result.output
    warned = [line for line in result.stderr.splitlines() if line.startswith("Warning: plugin 'fakeplug'")]
    assert len(warned) == 1 and words in warned[0], result.stderr
