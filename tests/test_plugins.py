"""Plugin discovery through real entry points, the HUB_PLUGINS switch, and broken plugins."""
import json
import os
import subprocess
import sys
import textwrap

import pytest

import hub
from hub.plugins import get_plugin_manager

GOOD = '''
from hub import hookimpl

@hookimpl
def register_models(register):
    register({"id": "toy-echo", "task": "text-embedding", "source": "nowhere", "params": 3,
              "description": "a model registered by an installed third-party plugin"})
'''


def make_distribution(root, dist, module, source, entry_name):
    """A real installed distribution on PYTHONPATH: module + dist-info with an mmhub entry point."""
    (root / f"{module}.py").write_text(textwrap.dedent(source))
    info = root / f"{dist}-0.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.3\n")
    (info / "entry_points.txt").write_text(f"[mmhub]\n{entry_name} = {module}\n")


def run_hub(args, pythonpath, extra_env=None):
    env = {**os.environ, "PYTHONPATH": str(pythonpath), **(extra_env or {})}
    code = "import sys; from hub.cli import main; sys.argv = ['hub', *sys.argv[1:]]; main()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=60)


@pytest.fixture
def third_party(tmp_path):
    make_distribution(tmp_path, "toy_plugin", "toy_plugin_mod", GOOD, "toy")
    make_distribution(tmp_path, "broken_plugin", "broken_plugin_mod", "raise RuntimeError('kaboom at import')\n",
                      "broken")
    return tmp_path


def test_installed_plugin_models_appear_and_broken_plugin_is_reported(third_party):
    listed = run_hub(["list", "--json"], third_party)
    assert listed.returncode == 0, listed.stderr
    rows = {r["id"]: r for r in json.loads(listed.stdout)}
    assert rows["toy-echo"]["plugin"] == "toy"
    assert "all-minilm-l6-v2" in rows  # the rest keeps working
    plugins = run_hub(["plugins", "--json"], third_party)
    info = {p["name"]: p for p in json.loads(plugins.stdout)}
    assert "kaboom at import" in info["broken"]["error"]
    assert info["toy"]["error"] is None and info["toy"]["version"] == "0.3"
    assert info["toy"]["hooks"] == ["register_models"]


def test_hub_plugins_env_restricts_loading(third_party):
    listed = run_hub(["list", "--json"], third_party, {"HUB_PLUGINS": "toy"})
    ids = {r["id"] for r in json.loads(listed.stdout)}
    assert ids == {"toy-echo"}
    none = run_hub(["plugins", "--json"], third_party, {"HUB_PLUGINS": ""})
    assert {p["status"] for p in json.loads(none.stdout)} == {"disabled"}


def test_shipped_plugins_load_through_entry_points(fresh_hub):
    pm = get_plugin_manager()
    assert {"transformers", "timm", "openclip"} <= pm.names()
    info = {p.name: p for p in pm.info()}
    assert info["transformers"].distribution == "mmhub-transformers"
    assert "load_model" in info["transformers"].hooks


class RegisterPlugin:
    @hub.hookimpl
    def register_models(self, register):
        register({"id": "test-time-model", "task": "image-classification", "source": "x", "params": 1})


def test_plugin_registered_at_test_time_appears_in_list(fresh_hub, cli_runner):
    from hub.cli import cli

    get_plugin_manager().register(RegisterPlugin(), name="testtime")
    result = cli_runner.invoke(cli, ["list", "--json"])
    assert result.exit_code == 0
    assert {"id": "test-time-model", "plugin": "testtime"}.items() <= \
        {k: v for r in json.loads(result.stdout) if r["id"] == "test-time-model" for k, v in r.items()}.items()


class RaisingRegistration:
    @hub.hookimpl
    def register_models(self, register):
        raise ValueError("registration exploded")


def test_plugin_failing_in_register_models_is_reported(fresh_hub, cli_runner):
    from hub.cli import cli

    get_plugin_manager().register(RaisingRegistration(), name="exploding")
    listed = cli_runner.invoke(cli, ["list", "--json"])
    assert listed.exit_code == 0 and "all-minilm-l6-v2" in listed.output
    plugins = json.loads(cli_runner.invoke(cli, ["plugins", "--json"]).stdout)
    assert any(p["name"] == "exploding" and "registration exploded" in (p["error"] or "") for p in plugins)
