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


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_hub_plugins_reports_unknown_names_and_an_empty_switch(third_party):
    named = run_hub(["plugins"], third_party, {"HUB_PLUGINS": "toy,transformerz"})
    assert named.returncode == 0
    assert "HUB_PLUGINS names plugin(s) that are not installed: transformerz" in named.stderr
    assert "disables the installed plugin(s) broken, openclip, timm, torchvision, transformers" in named.stderr
    empty = run_hub(["plugins"], third_party, {"HUB_PLUGINS": ""})
    assert "HUB_PLUGINS is set to an empty value, which disables all 6 installed plugins" in empty.stderr
    listed = run_hub(["list"], third_party, {"HUB_PLUGINS": ""})
    assert listed.returncode == 0 and "HUB_PLUGINS is set to an empty value" in listed.stderr


@pytest.mark.slow
def test_a_model_of_a_plugin_disabled_by_the_switch_says_so(third_party):
    done = run_hub(["info", "all-minilm-l6-v2"], third_party, {"HUB_PLUGINS": "toy"})
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "Plugins installed but disabled by HUB_PLUGINS='toy', whose models are missing: " in done.stderr
    assert "transformers (add them to HUB_PLUGINS, or unset it" in done.stderr


def test_a_model_of_a_plugin_that_failed_to_load_names_the_failure(fresh_hub, tmp_path):
    from hub.errors import PluginError

    pm = get_plugin_manager()
    pm.fail("ghost", "import failed: ImportError: no ghostlib")
    spec = hub.registry.ModelSpec(id="ghost-model", task="text-embedding", plugin="ghost", source="x")
    from hub.api import _load_uncached

    with pytest.raises(PluginError, match="'ghost', which is disabled because it failed: import failed"):
        _load_uncached(spec, None, {})


USER_ENTRY = "  {id}:\n    task: text-embedding\n    plugin: transformers\n    source: hf-hub:x/y\n{extra}"


@pytest.mark.slow
@pytest.mark.parametrize("model_id, extra, words", [
    ("all-minilm-l6-v2", "", ["'all-minilm-l6-v2' from {file} replaces the entry from plugin 'transformers' (",
                              "mmhub_transformers/catalog.yaml)"]),
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


# -- clashes: the first plugin in a stable order keeps a name; only the clashing declaration goes -------------------
RESULT = "hub.tasks.results:Classification"
SHARED = "shared-task"
SHARED_MODEL = "shared-model"


def _plugin_source(tasks: list, models: list) -> str:
    return (f"from hub import hookimpl\n\nTASKS = {tasks!r}\nMODELS = {models!r}\n\n\n@hookimpl\n"
            "def register_tasks(register):\n    for task in TASKS:\n        register(dict(task))\n\n\n@hookimpl\n"
            "def register_models(register):\n    for model in MODELS:\n        register(dict(model))\n")


@pytest.fixture
def install_plugins(tmp_path, monkeypatch, fresh_hub):
    """Install plugins as real distributions on sys.path: ``install((entry point, distribution, tasks, models), ...)``."""
    import importlib

    from hub.testing.isolation import write_dist_info

    monkeypatch.delenv("HUB_PLUGINS", raising=False)
    site, modules = tmp_path / "site", []
    site.mkdir()

    def install(*plugins):
        for entry_point, dist, tasks, models in plugins:
            module = f"mmhub_clash_{entry_point}_{len(modules)}_{os.getpid()}"
            (site / f"{module}.py").write_text(_plugin_source(
                [{"modality": "nlp", "inputs": "text", "result": RESULT, **t} for t in tasks],
                [{"source": "nowhere", **m} for m in models]))
            write_dist_info(site, dist, "1.0", entry_point, module)
            modules.append(module)
        monkeypatch.syspath_prepend(str(site))
        importlib.invalidate_caches()

    yield install
    for module in modules:
        sys.modules.pop(module, None)


def invoke_fresh(cli_runner, args):
    """``hub ARGS`` as a new process would run it: plugins loaded and tables built anew (so warnings show)."""
    from hub.cli import cli
    from hub.plugins import reset_plugin_manager

    reset_plugin_manager()
    done = cli_runner.invoke(cli, args)
    assert done.exit_code == 0, done.output
    return done


def warned_about(stderr: str, *plugins: str) -> bool:
    return any(line.startswith("Warning:") and all(f"'{p}'" in line for p in plugins) for line in stderr.splitlines())


TASK_CLASHES = {  # kind -> (the first plugin's declaration, the second's); {p} is the declaring plugin
    "name-vs-name": ({"name": SHARED}, {"name": SHARED}),
    "alias-vs-name": ({"name": "{p}-task", "aliases": [SHARED]}, {"name": SHARED}),
    "name-vs-alias": ({"name": SHARED}, {"name": "{p}-task", "aliases": [SHARED, "{p}-free"]}),
    "alias-vs-alias": ({"name": "{p}-task", "aliases": [SHARED]}, {"name": "{p}-task", "aliases": [SHARED, "{p}-free"]}),
}


def _declared(template: dict, plugin: str) -> dict:
    return {"name": template["name"].format(p=plugin),
            "aliases": [a.format(p=plugin) for a in template.get("aliases", [])]}


@pytest.mark.parametrize("first", ["alpha", "omega"])  # the entry-point name never decides: the distribution does
@pytest.mark.parametrize("kind", sorted(TASK_CLASHES))
def test_a_task_clash_between_two_plugins_drops_only_the_later_declaration(kind, first, install_plugins, cli_runner):
    from hub.tasks import resolve_task, task_info

    second = "omega" if first == "alpha" else "alpha"
    declared = dict(zip((first, second), TASK_CLASHES[kind]))
    install_plugins(*[
        (p, f"mmhub-{'aaa' if p == first else 'zzz'}-{kind}",
         [{"name": f"{p}-own", "aliases": [f"{p}-own-alias"]}, _declared(declared[p], p)],
         [{"id": f"{p}-own-model", "task": f"{p}-own"}, {"id": f"{p}-clash-model", "task": _declared(declared[p], p)["name"]}])
        for p in ("alpha", "omega")])
    tasks = invoke_fresh(cli_runner, ["tasks", "--json"])
    assert warned_about(tasks.stderr, first, second), tasks.stderr
    rows = {t["name"]: t for t in json.loads(tasks.stdout)}
    for plugin in (first, second):  # every other task of both plugins stays, with its alias
        assert rows[f"{plugin}-own"]["plugin"] == plugin and rows[f"{plugin}-own"]["aliases"] == [f"{plugin}-own-alias"]
    assert task_info(resolve_task(SHARED)).plugin == first
    assert rows[_declared(declared[first], first)["name"]]["aliases"] == _declared(declared[first], first)["aliases"]
    later = _declared(declared[second], second)
    if later["name"] == SHARED:  # its name was taken: that task is left out
        assert all(t["plugin"] != second for t in rows.values() if SHARED in (t["name"], *t["aliases"]))
    else:  # only the alias was taken: the task stays with its other aliases
        assert rows[later["name"]]["plugin"] == second and rows[later["name"]]["aliases"] == [f"{second}-free"]
    listed = invoke_fresh(cli_runner, ["list", "--json"])
    assert warned_about(listed.stderr, first, second), listed.stderr
    ids = {m["id"] for m in json.loads(listed.stdout)}
    assert {f"{p}-{m}" for p in (first, second) for m in ("own-model", "clash-model")} <= ids
    rows = {r["name"]: r for r in json.loads(invoke_fresh(cli_runner, ["plugins", "--json"]).stdout)}
    assert rows[first]["status"] == "ok" and rows[second]["status"] == "partial"
    assert f"'{first}'" in rows[second]["error"] and f"'{second}'" in rows[second]["error"] and SHARED in rows[second]["error"]


CORE_CLASHES = {  # the declaration, who keeps the name
    "name-is-a-core-task": ({"name": "text-classification"}, "core"),
    "alias-is-a-core-task": ({"name": "{p}-task", "aliases": ["text-classification"]}, "core"),
    "name-is-a-core-alias": ({"name": "sentiment-analysis"}, "core"),
    "alias-is-a-core-alias": ({"name": "{p}-task", "aliases": ["sentiment-analysis"]}, "core"),
    "name-is-a-shipped-task": ({"name": "object-detection"}, "torchvision"),
    "alias-is-a-shipped-alias": ({"name": "{p}-task", "aliases": ["detection"]}, "torchvision"),
}


@pytest.mark.parametrize("kind", sorted(CORE_CLASHES))
def test_the_core_and_the_shipped_plugins_come_before_any_distribution_name(kind, install_plugins, cli_runner):
    from hub.tasks import resolve_task, task_info

    template, keeper = CORE_CLASHES[kind]
    clash = _declared(template, "early")
    taken = clash["aliases"][0] if clash["aliases"] else clash["name"]
    install_plugins(("early", "aaa-early", [{"name": "early-own"}, clash],  # sorts before every mmhub-* distribution
                     [{"id": "early-model", "task": "early-own"}]))
    tasks = invoke_fresh(cli_runner, ["tasks", "--json"])
    assert warned_about(tasks.stderr, "early", keeper), tasks.stderr
    rows = {t["name"]: t for t in json.loads(tasks.stdout)}
    assert task_info(resolve_task(taken)).plugin == keeper and rows["early-own"]["plugin"] == "early"
    if clash["aliases"]:
        assert rows[clash["name"]]["plugin"] == "early" and rows[clash["name"]]["aliases"] == []
    ids = {m["id"] for m in json.loads(invoke_fresh(cli_runner, ["list", "--json"]).stdout)}
    assert {"early-model", "all-minilm-l6-v2"} <= ids
    assert len([t for t in rows.values() if t["plugin"] == "core"]) >= 19


MODEL_CLASHES = {  # kind -> (the first plugin's model, the second's)
    "id-vs-id": ({"id": SHARED_MODEL}, {"id": SHARED_MODEL}),
    "alias-vs-id": ({"id": "{p}-m", "aliases": [SHARED_MODEL]}, {"id": SHARED_MODEL}),
    "id-vs-alias": ({"id": SHARED_MODEL}, {"id": "{p}-m", "aliases": [SHARED_MODEL, "{p}-free"]}),
    "alias-vs-alias": ({"id": "{p}-m", "aliases": [SHARED_MODEL]}, {"id": "{p}-m", "aliases": [SHARED_MODEL, "{p}-free"]}),
}


@pytest.mark.parametrize("first", ["alpha", "omega"])
@pytest.mark.parametrize("kind", sorted(MODEL_CLASHES))
def test_a_model_clash_between_two_plugins_drops_only_the_later_registration(kind, first, install_plugins, cli_runner):
    second = "omega" if first == "alpha" else "alpha"
    models = dict(zip((first, second), MODEL_CLASHES[kind]))

    def model(p):
        return {"id": models[p]["id"].format(p=p), "aliases": [a.format(p=p) for a in models[p].get("aliases", [])],
                "task": "text-embedding"}

    install_plugins(*[(p, f"mmhub-{'aaa' if p == first else 'zzz'}-{kind}", [],
                       [{"id": f"{p}-own", "task": "text-embedding", "aliases": [f"{p}-own-alias"]}, model(p)])
                      for p in ("alpha", "omega")])
    listed = invoke_fresh(cli_runner, ["list", "--json"])
    assert warned_about(listed.stderr, first, second), listed.stderr
    served = {m["id"]: m["plugin"] for m in json.loads(listed.stdout)}
    assert served[f"{first}-own"] == first and served[f"{second}-own"] == second
    assert hub.get_spec(SHARED_MODEL).plugin == first
    assert hub.get_spec(f"{second}-own-alias").id == f"{second}-own"
    later = model(second)
    if later["id"] != SHARED_MODEL:
        assert served[later["id"]] == second and hub.get_spec(f"{second}-free").id == later["id"]
    rows = {r["name"]: r for r in json.loads(invoke_fresh(cli_runner, ["plugins", "--json"]).stdout)}
    assert rows[first]["status"] == "ok" and rows[second]["status"] == "partial"
    assert f"'{first}'" in rows[second]["error"] and SHARED_MODEL in rows[second]["error"]


def test_a_plugin_declaring_a_name_twice_keeps_the_first(install_plugins, cli_runner):
    install_plugins(("twice", "mmhub-twice", [{"name": "twice-task", "aliases": ["tw"]}, {"name": "twice-task"},
                                              {"name": "other-task", "aliases": ["tw", "ot"]}],
                     [{"id": "twice-model", "task": "twice-task"}, {"id": "twice-model", "task": "other-task"}]))
    tasks = invoke_fresh(cli_runner, ["tasks", "--json"])
    rows = {t["name"]: t for t in json.loads(tasks.stdout)}
    assert rows["twice-task"]["aliases"] == ["tw"] and rows["other-task"]["aliases"] == ["ot"]
    assert "declares the task 'twice-task' twice" in tasks.stderr
    assert hub.get_spec("twice-model").task == "twice-task"
    error = next(r for r in json.loads(invoke_fresh(cli_runner, ["plugins", "--json"]).stdout)
                 if r["name"] == "twice")["error"]
    assert "registers the model id 'twice-model' twice" in error


# -- a plugin's print() never corrupts the hub's own output --------------------------------------------------------
CHATTY = '''
print("chatty: imported")
from hub import hookimpl
from hub.options import Option
from hub.tasks.base import Pipeline
from hub.tasks.results import Embedding


class Chatty(Pipeline):
    task = "text-embedding"
    call_options = (Option("scale", float, 1.0, "factor"),)

    def preprocess(self, items, **kwargs):
        print("chatty: preprocess")
        return items

    def forward(self, batch, scale=1.0, **kwargs):
        print("chatty: forward")
        return [[scale * len(text)] for text in batch]

    def postprocess(self, outputs, items, **kwargs):
        print("chatty: postprocess")
        return [Embedding(row) for row in outputs]


@hookimpl
def register_tasks(register):
    print("chatty: register_tasks")
    register({"name": "chatty-task", "modality": "nlp", "inputs": "text", "result": "hub.tasks.results:Generation"})


@hookimpl
def register_models(register):
    print("chatty: register_models")
    register({"id": "chatty-model", "task": "text-embedding", "source": "nowhere"})


@hookimpl
def model_options(spec):
    print("chatty: model_options")
    return list(Chatty.call_options) if spec.plugin == "chatty" else None


@hookimpl
def load_model(spec, device_manager, options):
    print("chatty: load_model")
    return Chatty(spec, None, device_manager, **options) if spec.plugin == "chatty" else None
'''


@pytest.fixture(scope="module")
def chatty_site(tmp_path_factory):
    root = tmp_path_factory.mktemp("chatty")
    make_distribution(root, "mmhub_chatty", "mmhub_chatty_mod", CHATTY, "chatty")
    return root


@pytest.mark.slow
@pytest.mark.parametrize("args, printed", [
    (["list", "--json"], ["imported", "register_models", "register_tasks"]),
    (["tasks", "--json"], ["imported", "register_tasks"]),
    (["plugins", "--json"], ["imported", "register_models"]),
    (["info", "chatty-model", "--json"], ["imported", "model_options"]),
    (["run", "chatty-model", "hello", "--json"], ["imported", "load_model", "preprocess", "forward", "postprocess"]),
    (["run", "chatty-model", "hello", "-o", "scale=2", "--json", "--dtype", "fp32"], ["model_options", "forward"]),
])
def test_a_plugins_print_goes_to_stderr_and_json_output_stays_json(args, printed, chatty_site):
    done = run_hub(args, chatty_site, {"HUB_PLUGINS": "chatty"})
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)  # nothing but the JSON on stdout
    assert "chatty:" not in done.stdout and data
    for word in printed:
        assert f"chatty: {word}" in done.stderr, done.stderr
    if args[0] == "run":
        assert data[0]["embedding"] == [5.0 * (2 if "scale=2" in args else 1)]
