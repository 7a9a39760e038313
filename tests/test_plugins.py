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


def test_hub_plugins_reports_unknown_names_and_an_empty_switch(third_party):
    named = run_hub(["plugins"], third_party, {"HUB_PLUGINS": "toy,transformerz"})
    assert named.returncode == 0
    assert "HUB_PLUGINS names plugin(s) that are not installed: transformerz" in named.stderr
    assert "disables the installed plugin(s) broken, openclip, timm, torchvision, transformers" in named.stderr
    empty = run_hub(["plugins"], third_party, {"HUB_PLUGINS": ""})
    assert "HUB_PLUGINS is set to an empty value, which disables all 6 installed plugins" in empty.stderr
    listed = run_hub(["list"], third_party, {"HUB_PLUGINS": ""})
    assert listed.returncode == 0 and "HUB_PLUGINS is set to an empty value" in listed.stderr


def test_a_model_of_a_plugin_disabled_by_the_switch_says_so(third_party):
    done = run_hub(["info", "all-minilm-l6-v2"], third_party, {"HUB_PLUGINS": "toy"})
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "'transformers', which is installed but disabled by HUB_PLUGINS='toy'" in done.stderr


def test_a_model_of_a_plugin_that_failed_to_load_names_the_failure(fresh_hub, tmp_path):
    from hub.errors import PluginError

    pm = get_plugin_manager()
    pm.fail("ghost", "import failed: ImportError: no ghostlib")
    spec = hub.registry.ModelSpec(id="ghost-model", task="text-embedding", plugin="ghost", source="x")
    from hub.api import _load_uncached

    with pytest.raises(PluginError, match="'ghost', which is disabled because it failed: import failed"):
        _load_uncached(spec, None, {})


USER_ENTRY = "  {id}:\n    task: text-embedding\n    plugin: transformers\n    source: hf-hub:x/y\n{extra}"


@pytest.mark.parametrize("model_id, extra, words", [
    ("all-minilm-l6-v2", "", ["'all-minilm-l6-v2' from {file} replaces the entry from", "registry.yaml"]),
    ("minilm", "", ["'minilm' from {file} replaces the alias 'minilm' of 'all-minilm-l6-v2' from"]),
    ("my-model", "    aliases: [bge-small-en-v1.5]\n",
     ["alias 'bge-small-en-v1.5' of 'my-model' from {file} is shadowed by the id 'bge-small-en-v1.5'"]),
    ("my-model", "    aliases: [minilm]\n",
     ["alias 'minilm' now means 'my-model' from {file} instead of 'all-minilm-l6-v2'"]),
])
def test_user_catalogue_overrides_warn_naming_both_sides(tmp_path, model_id, extra, words):
    user = tmp_path / "mine.yaml"
    user.write_text("models:\n" + USER_ENTRY.format(id=model_id, extra=extra))
    done = run_hub(["list", "--json"], tmp_path, {"HUB_CATALOG": str(user)})
    assert done.returncode == 0, done.stderr
    warnings = [line for line in done.stderr.splitlines() if line.startswith("Warning: ")]
    assert len(warnings) == 1, done.stderr
    for word in words:
        assert word.format(file=user) in warnings[0]


class OwnOverride:
    @hub.hookimpl
    def register_models(self, register):
        register({"id": "own-model", "task": "text-embedding", "source": "x"})


def test_a_plugin_may_replace_its_own_shipped_entry_with_a_warning(fresh_hub, tmp_path, monkeypatch):
    """Precedence: registry.yaml < plugin registrations (own ids only) < user catalogue files."""
    shipped = tmp_path / "registry.yaml"
    shipped.write_text("models:\n  own-model:\n    task: text-embedding\n    plugin: own\n    source: old\n")
    monkeypatch.setattr(hub.api, "shipped_catalog_path", lambda: shipped)
    get_plugin_manager().register(OwnOverride(), name="own")
    with pytest.warns(UserWarning, match=f"'own-model' from plugin 'own' replaces the entry from {shipped}"):
        assert hub.get_spec("own-model").source == "x"
