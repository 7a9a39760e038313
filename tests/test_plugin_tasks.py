"""Tasks from plugins: a third-party plugin's task is a first-class citizen, and its faults stay its own.

The plugins in tests/task_plugins/ are installed as real distributions (a module plus a dist-info
with an ``mmhub`` entry point) on the path. ``tablestats`` brings a task with a new input kind, a
new result type, a text view and files for ``--save-dir``; the others fail in one way each.
"""
from __future__ import annotations

import csv
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

import hub
from hub.errors import HubError, PluginError
from hub.tasks.builtin import core_tasks
from hub.testing.isolation import write_dist_info

PLUGINS = Path(__file__).resolve().parent / "task_plugins"
FAULTY = ["bad_fields", "raising_tasks"]
ALL = sorted(p.stem for p in PLUGINS.glob("*.py"))
MINILM = "all-minilm-l6-v2"


def install_plugin(root: Path, name: str) -> None:
    """Install plugin ``name`` under ``root``: module mmhub_task_NAME, distribution mmhub-task-NAME."""
    module = f"mmhub_task_{name}"
    shutil.copy(PLUGINS / f"{name}.py", root / f"{module}.py")
    write_dist_info(root, f"mmhub-task-{name}", "0.2", name, module)


@pytest.fixture
def with_plugins(tmp_path, monkeypatch, fresh_hub):
    """Install the given task plugins on sys.path for this process."""
    monkeypatch.delenv("HUB_PLUGINS", raising=False)
    root = tmp_path / "site"
    root.mkdir()

    def install(*names):
        for name in names:
            install_plugin(root, name)
        monkeypatch.syspath_prepend(str(root))
        from hub.plugins import reset_plugin_manager

        reset_plugin_manager()

    yield install
    from hub.device import MODEL_CACHE

    MODEL_CACHE.clear()  # pipelines built from this test's copy of the modules
    for name in ALL:
        sys.modules.pop(f"mmhub_task_{name}", None)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """Every task plugin installed in one directory, for fresh processes."""
    root = tmp_path_factory.mktemp("task_site")
    for name in ALL:
        install_plugin(root, name)
    return root


def run_hub(args, pythonpath, stdin=None, **env):
    environ = {**os.environ, "PYTHONPATH": str(pythonpath), **env}
    environ.pop("HUB_PLUGINS", None)
    code = "import sys; from hub.cli import main; sys.argv = ['hub', *sys.argv[1:]]; main()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=environ,
                          input=stdin, timeout=120)


def invoke(cli_runner, args):
    from hub.cli import cli

    return cli_runner.invoke(cli, args)


def write_table(path: Path, seed: int, rows: int = 40) -> list[list[float]]:
    """A CSV of three columns of random numbers; returns its columns."""
    rng = random.Random(seed)
    columns = [[round(rng.gauss(mu, sigma), 6) for _ in range(rows)] for mu, sigma in ((0, 1), (5, 3), (-2, 0.5))]
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["x", "y", "z"])
        writer.writerows(zip(*columns))
    return columns


def expected(columns: list[list[float]], sample: bool = False) -> list[dict]:
    """The statistics of each column, computed with Python's statistics module (not numpy)."""
    spread = statistics.stdev if sample else statistics.pstdev
    return [{"name": name, "count": len(c), "mean": statistics.fmean(c), "std": spread(c), "min": min(c),
             "max": max(c)} for name, c in zip("xyz", columns)]


def assert_stats(got: dict, columns, sample: bool = False) -> None:
    assert got["rows"] == len(columns[0])
    for column, want in zip(got["columns"], expected(columns, sample)):
        assert column["name"] == want["name"] and column["count"] == want["count"]
        for key in ("mean", "std", "min", "max"):
            assert column[key] == pytest.approx(want[key], rel=1e-9, abs=1e-12), (column["name"], key)


# -- the hook ------------------------------------------------------------------------------------
class InlineTasks:
    @hub.hookimpl
    def register_tasks(self, register):
        from hub.tasks import TaskInfo

        register(TaskInfo("word-count", "nlp", "text", "hub.tasks.results:Generation", "Words in a text.",
                          ("wc",)))


def test_hook_register_tasks(fresh_hub):
    from hub.tasks import TASKS, list_tasks, resolve_task, task_info
    from hub.tasks.results import Generation

    assert "word-count" not in TASKS
    hub.get_plugin_manager().register(InlineTasks(), name="inline")
    assert resolve_task("WC") == "word-count" and task_info("wc").plugin == "inline"
    assert list_tasks("nlp")[-1].name == "word-count" and list_tasks()[0].plugin == "core"
    assert task_info("word-count").result_type() is Generation
    assert len([t for t in TASKS.values() if t.plugin == "core"]) == len(core_tasks())


def test_the_core_declares_its_tasks_through_the_hook(fresh_hub):
    pm = hub.get_plugin_manager()
    assert "core" in pm.names() and "register_tasks" in [h.name for h in pm.get_hookcallers(pm.get_plugin("core"))]
    assert "core" not in {row.name for row in pm.info()}  # the hub itself, not an installed plugin


# -- a working third-party task ------------------------------------------------------------------
def test_a_plugin_task_lists_and_shows_in_hub_tasks(with_plugins, cli_runner):
    with_plugins("tablestats")
    rows = {t["name"]: t for t in json.loads(invoke(cli_runner, ["tasks", "--json"]).stdout)}
    assert rows["table-statistics"] == {
        "name": "table-statistics", "modality": "nlp", "inputs": "csv", "result": "mmhub_task_tablestats:TableStats",
        "description": "Per-column statistics of a CSV table of numbers.", "aliases": ["csv-stats"], "view": "text",
        "saves_files": True, "plugin": "tablestats"}
    assert rows["text-embedding"]["plugin"] == "core" and not rows["text-embedding"]["saves_files"]
    table = invoke(cli_runner, ["tasks"]).stdout.splitlines()
    assert table[0].split() == ["TASK", "MODALITY", "INPUTS", "ALIASES", "PLUGIN"]
    assert next(line for line in table if line.startswith("table-statistics ")).split() == \
        ["table-statistics", "nlp", "csv", "csv-stats", "tablestats"]
    listed = json.loads(invoke(cli_runner, ["list", "--task", "csv-stats", "--json"]).stdout)
    assert [(m["id"], m["task"], m["plugin"]) for m in listed] == [("table-stats", "table-statistics", "tablestats")]
    assert "table-stats" in {m.id for m in hub.list_models(modality="nlp")}
    info = json.loads(invoke(cli_runner, ["info", "table-stats", "--json"]).stdout)
    assert info["modality"] == "nlp" and [o["name"] for o in info["options"]] == ["ddof"]


def test_a_plugin_task_runs_from_the_cli_with_its_loader_and_text_view(with_plugins, cli_runner, tmp_path):
    with_plugins("tablestats")
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    cols_a, cols_b = write_table(a, 1), write_table(b, 2, rows=7)
    ran = invoke(cli_runner, ["run", "table-stats", str(a), str(b), "--json"])
    assert ran.exit_code == 0, ran.output
    got = json.loads(ran.stdout)
    assert_stats(got[0], cols_a) and assert_stats(got[1], cols_b)
    sample = invoke(cli_runner, ["run", "table-stats", str(a), "--task", "csv-stats", "-o", "ddof=1", "--json"])
    assert sample.exit_code == 0, sample.output
    assert_stats(json.loads(sample.stdout)[0], cols_a, sample=True)
    text = invoke(cli_runner, ["run", "table-stats", str(a), str(b)]).stdout.splitlines()
    assert text[0] == f"== {a} ==" and text[1] == "40 rows" and text[2].startswith("x: mean ")
    assert f"== {b} ==" in text and "7 rows" in text and text[text.index(f"== {b} ==") - 1] == ""


def test_save_dir_writes_each_results_files(with_plugins, cli_runner, tmp_path):
    with_plugins("tablestats")
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    cols = [write_table(a, 3), write_table(b, 4)]
    out = tmp_path / "out" / "stats"
    ran = invoke(cli_runner, ["run", "table-stats", str(a), str(b), "--json", "--save-dir", str(out)])
    assert ran.exit_code == 0, ran.output
    assert f"saved 2 file(s) under {out}" in ran.stderr
    assert sorted(p.name for p in out.iterdir()) == ["a.stats.csv", "b.stats.csv"]
    for name, columns in zip("ab", cols):
        with (out / f"{name}.stats.csv").open() as f:
            saved = list(csv.DictReader(f))
        assert_stats({"rows": len(columns[0]), "columns": [{k: float(v) if k != "column" else v
                                                           for k, v in row.items()} | {"name": row["column"]}
                                                          for row in saved]}, columns)


def test_save_dir_names_inputs_whose_files_collide(with_plugins, cli_runner, tmp_path):
    with_plugins("tablestats")
    for sub in ("one", "two"):
        (tmp_path / sub).mkdir()
        write_table(tmp_path / sub / "t.csv", len(sub))
    out = tmp_path / "out"
    ran = invoke(cli_runner, ["run", "table-stats", str(tmp_path / "one" / "t.csv"), str(tmp_path / "two" / "t.csv"),
                              "--save-dir", str(out)])
    assert ran.exit_code == 0, ran.output
    assert f"both wrote {out.resolve() / 't.stats.csv'}" in ran.stderr and "saved 1 file(s)" in ran.stderr
    assert [p.name for p in out.iterdir()] == ["t.stats.csv"]


@pytest.mark.parametrize("args, words", [
    (["--save-dir", "{tmp}/x", MINILM, "a cat"], ["task 'text-embedding' writes no files", "drop it"]),
    (["--save-dir", "{tmp}/a.csv", "table-stats", "{tmp}/a.csv"], ["is a file"]),
    (["table-stats", "{tmp}/missing.csv"], ["input file", "missing.csv", "does not exist"]),
    (["table-stats", "{tmp}/bad.csv"], ["input file", "bad.csv", "not a valid input of kind 'csv'", "line 3"]),
    (["table-stats", "{tmp}/a.csv", "-o", "ddof=-1"], ["ddof"]),
    (["table-stats", "{tmp}/a.csv", "--server", "http://127.0.0.1:9", "--save-dir", "{tmp}/x"],
     ["--save-dir cannot be used with --server"]),
])
def test_bad_runs_of_a_plugin_task_are_one_line(with_plugins, cli_runner, tmp_path, args, words):
    with_plugins("tablestats")
    write_table(tmp_path / "a.csv", 5)
    (tmp_path / "bad.csv").write_text("x,y\n1,2\n3,four\n")
    done = invoke(cli_runner, ["run", *[a.replace("{tmp}", str(tmp_path)) for a in args]])
    assert done.exit_code == 2, done.output
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.output
    assert all(w in lines[0] for w in words), lines[0]


def test_a_plugin_task_through_the_python_api(with_plugins, tmp_path):
    from hub.tasks import task_info

    with_plugins("tablestats")
    path = tmp_path / "t.csv"
    columns = write_table(path, 6)
    results = hub.run("table-stats", [str(path), path.read_bytes()])
    cls = task_info("csv-stats").result_type()
    assert cls.__module__ == "mmhub_task_tablestats" and all(type(r) is cls for r in results)
    assert_stats(results[0].to_dict(), columns) and results[0] == results[1]
    assert cls.from_dict(json.loads(json.dumps(results[0].to_dict()))) == results[0]
    single = hub.run("table-stats", str(path), ddof=1)
    assert_stats(single.to_dict(), columns, sample=True)
    assert task_info("table-statistics").load_input(b"a\n1\n3\n", "x").rows == [[1.0], [3.0]]


@pytest.mark.slow
def test_a_plugin_task_in_a_fresh_process_with_stdin_and_without_torch(site, tmp_path):
    path = tmp_path / "s.csv"
    columns = write_table(path, 7)
    ran = run_hub(["run", "table-stats", "-", "--json"], site, stdin=f"{path}\n")
    assert ran.returncode == 0, ran.stderr
    assert_stats(json.loads(ran.stdout)[0], columns)
    code = ("import sys, hub; ids = [m.id for m in hub.list_models()]; from hub.tasks import TASKS; "
            "print('table-stats' in ids, 'table-statistics' in TASKS, 'torch' in sys.modules)")
    listed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(site)})
    assert listed.stdout.split() == ["True", "True", "False"], listed.stderr


# -- faults stay with their plugin ---------------------------------------------------------------
FAULTS = {  # plugin -> words of the error shown against it
    "raising_tasks": ["register_tasks failed, its tasks are left out", "task declaration exploded halfway"],
    "bad_fields": ["unknown modality 'smell'", "the new kind 'midi' need a 'loader'",
                   "field 'result' must name the result class as \"module:Class\""],
}


@pytest.mark.parametrize("fault", FAULTY)
def test_a_faulty_task_declaration_is_reported_and_left_out(fault, with_plugins, cli_runner):
    from hub.tasks import TASKS

    with_plugins(fault, "tablestats")
    rows = {r["name"]: r for r in json.loads(invoke(cli_runner, ["plugins", "--json"]).stdout)}
    assert rows[fault]["status"] == "partial", rows[fault]
    assert all(w in rows[fault]["error"] for w in FAULTS[fault]), rows[fault]["error"]
    assert rows["tablestats"]["status"] == "ok" and "core" not in rows
    ours = {t for t in TASKS if t.startswith(("raising", "odour", "midi", "plain"))}
    assert ours == set() and TASKS["table-statistics"].plugin == "tablestats"
    listed = {m["id"] for m in json.loads(invoke(cli_runner, ["list", "--all", "--json"]).stdout)}
    assert {"table-stats", MINILM} <= listed and "raising-task-model" not in listed


def test_an_alias_of_the_cores_drops_only_that_alias(with_plugins, cli_runner):
    from hub.tasks import ALIASES, TASKS

    with_plugins("conflicting_task", "tablestats")
    tasks = invoke(cli_runner, ["tasks", "--json"])
    assert "plugin 'conflicting_task'" in tasks.stderr and "plugin 'core'" in tasks.stderr
    rows = {t["name"]: t for t in json.loads(tasks.stdout)}
    assert rows["text-sentiment"]["plugin"] == "conflicting_task" and rows["text-sentiment"]["aliases"] == []
    assert rows["conflict-free-task"]["plugin"] == "conflicting_task" and ALIASES["sentiment-analysis"] == \
        "text-classification" and TASKS["text-classification"].plugin == "core"
    row = plugin_row(cli_runner, "conflicting_task")
    assert row["status"] == "partial" and "the alias 'sentiment-analysis' of task 'text-sentiment'" in row["error"]
    listed = {m["id"] for m in json.loads(invoke(cli_runner, ["list", "--json"]).stdout)}
    assert {"conflicting-task-model", "table-stats", MINILM} <= listed


def plugin_row(cli_runner, name: str) -> dict:
    return next(r for r in json.loads(invoke(cli_runner, ["plugins", "--json"]).stdout) if r["name"] == name)


@pytest.mark.slow
def test_every_fault_at_once_in_a_fresh_process(site, tmp_path):
    plugins = {r["name"]: r for r in json.loads(run_hub(["plugins", "--json"], site).stdout)}
    assert {n: plugins[n]["status"] for n in FAULTY + ["conflicting_task"]} == {n: "partial" for n in FAULTY +
                                                                                  ["conflicting_task"]}
    tasks = run_hub(["tasks"], site)
    assert tasks.returncode == 0 and "table-statistics" in tasks.stdout and "broken-result-task" in tasks.stdout
    listed = run_hub(["list"], site)
    assert listed.returncode == 0 and "table-stats" in listed.stdout and MINILM in listed.stdout
    path = tmp_path / "f.csv"
    columns = write_table(path, 8)
    ran = run_hub(["run", "table-stats", str(path), "--json"], site)
    assert ran.returncode == 0, ran.stderr
    assert_stats(json.loads(ran.stdout)[0], columns)
    minilm = run_hub(["run", MINILM, "a cat", "--json", "--dtype", "fp32"], site)
    assert minilm.returncode == 0 and len(json.loads(minilm.stdout)[0]["embedding"]) == 384


def test_a_result_class_that_cannot_be_imported_names_the_plugin(with_plugins, cli_runner):
    with_plugins("broken_result")
    assert "broken-result-model" in invoke(cli_runner, ["list"]).stdout
    done = invoke(cli_runner, ["run", "broken-result-model", "hello"])
    assert done.exit_code == 2 and "Traceback" not in done.output
    line = done.stderr.strip()
    assert "\n" not in line and "plugin 'broken_result'" in line and \
        "'mmhub_task_library_that_is_not_installed:Result', which cannot be imported" in line
    with pytest.raises(PluginError, match="broken-result-task"):
        hub.run("broken-result-model", "hello")


class SameName:
    @hub.hookimpl
    def register_tasks(self, register):
        register({"name": "csv-statistics", "modality": "nlp", "inputs": "text",
                  "result": "hub.tasks.results:Generation", "aliases": ["table-statistics"]})


def test_a_name_another_plugin_declared_is_a_conflict_of_the_later_plugin(with_plugins):
    from hub.tasks import TASKS

    with_plugins("tablestats")
    pm = hub.get_plugin_manager()
    with pytest.warns(UserWarning, match="'zz-same'"):
        pm.register(SameName(), name="zz-same")
        assert TASKS["table-statistics"].plugin == "tablestats" and TASKS["csv-statistics"].aliases == ()
    row = next(r for r in pm.info() if r.name == "zz-same")
    assert "the alias 'table-statistics' of task 'csv-statistics', already a task name declared by plugin " \
           "'tablestats'" in row.error


class LooksUp:
    @hub.hookimpl
    def register_tasks(self, register):
        from hub.tasks import resolve_task

        register({"name": "echo-" + resolve_task("asr"), "modality": "speech", "inputs": "audio",
                  "result": "hub.tasks.results:Transcription"})


def test_a_declaration_that_looks_tasks_up_sees_the_cores(fresh_hub):
    from hub.tasks import TASKS

    hub.get_plugin_manager().register(LooksUp(), name="looks-up")
    assert TASKS["echo-speech-recognition"].plugin == "looks-up"


def test_a_catalogue_entry_for_a_task_whose_plugin_is_missing_shows_under_all(fresh_hub, tmp_path, monkeypatch,
                                                                              cli_runner):
    catalog = tmp_path / "extra.yaml"
    catalog.write_text("models:\n  future-detector: {task: point-cloud-labelling, plugin: not-installed-vision, "
                       "source: x}\n")
    monkeypatch.setenv("HUB_CATALOG", str(catalog))
    listed = invoke(cli_runner, ["list", "--json"])
    assert listed.exit_code == 0 and "future-detector" not in listed.stdout
    everything = {m["id"]: m for m in json.loads(invoke(cli_runner, ["list", "--all", "--json"]).stdout)}
    assert everything["future-detector"]["task"] == "point-cloud-labelling"
    assert everything["future-detector"]["modality"] == "unknown"
    with pytest.raises(HubError, match="not-installed-vision"):
        hub.get_spec("future-detector")


# -- the server ------------------------------------------------------------------------------------
def test_a_plugin_task_through_the_servers_native_route(with_plugins, tmp_path):
    import base64

    import httpx

    from serve_server import hub_app, running

    with_plugins("tablestats")
    path = tmp_path / "srv.csv"
    columns = write_table(path, 9)
    uri = "data:text/csv;base64," + base64.b64encode(path.read_bytes()).decode()
    with running(hub_app(preload=("table-stats",))) as url:
        tasks = {t["name"]: t for t in httpx.get(f"{url}/v1/tasks").json()}
        assert tasks["table-statistics"]["inputs"] == "csv" and tasks["table-statistics"]["plugin"] == "tablestats"
        model = httpx.get(f"{url}/v1/models/table-stats").json()
        assert model["inputs"] == "csv" and [o["name"] for o in model["options"]] == ["ddof"]
        ran = httpx.post(f"{url}/v1/run/table-stats", json={"inputs": [uri], "options": {"ddof": 1}})
        assert ran.status_code == 200, ran.text
        assert ran.json()["task"] == "table-statistics"
        assert_stats(ran.json()["results"][0], columns, sample=True)
        form = httpx.post(f"{url}/v1/run/table-stats", files=[("file", ("srv.csv", path.read_bytes(), "text/csv"))])
        assert_stats(form.json()["results"][0], columns)
        bad = httpx.post(f"{url}/v1/run/table-stats", json={"inputs": [base64.b64encode(b"x\nnope\n").decode()]})
        assert bad.status_code == 400 and "input 0" in bad.json()["error"]["message"]
        check_sdk_and_cli_through_server(url, path, columns)


def check_sdk_and_cli_through_server(url, path, columns):
    """The SDK sends a plugin kind's file as its bytes and reads the plugin's result class back; so does --server."""
    from click.testing import CliRunner

    from hub.cli import cli
    from hub.client import Client

    with Client(url) as client:
        result = client.run("table-stats", str(path), ddof=1)
        assert type(result) is hub.tasks.task_info("table-statistics").result_type()
        assert_stats(result.to_dict(), columns, sample=True)
        assert_stats(client.run("table-stats", [path.read_bytes()])[0].to_dict(), columns)
    res = CliRunner().invoke(cli, ["run", "--server", url, "table-stats", str(path), "--json"])
    assert res.exit_code == 0, res.output
    assert_stats(json.loads(res.output)[0], columns)


class Slow:
    def __init__(self):
        import threading

        self.started = threading.Event()

    @hub.hookimpl
    def register_tasks(self, register):
        import time

        self.started.set()
        time.sleep(0.3)  # another thread looks a task up meanwhile
        register({"name": "slow-task", "modality": "nlp", "inputs": "text", "result": "hub.tasks.results:Generation"})


def test_a_thread_that_looks_up_while_another_builds_the_table_waits_for_it(fresh_hub):
    import threading

    from hub.tasks import TASKS

    slow = Slow()
    hub.get_plugin_manager().register(slow, name="slow")
    seen = {}
    builder = threading.Thread(target=lambda: seen.setdefault("builder", "slow-task" in TASKS))
    builder.start()
    assert slow.started.wait(30)
    seen["reader"] = "slow-task" in TASKS
    builder.join(30)
    assert seen == {"builder": True, "reader": True}


def test_an_entry_point_named_core_is_refused(fresh_hub, tmp_path, monkeypatch, cli_runner):
    from hub.plugins import reset_plugin_manager
    from hub.tasks import TASKS

    (tmp_path / "mmhub_fake_core.py").write_text("from hub import hookimpl\n\n@hookimpl\ndef register_tasks(register):\n"
                                                 "    raise RuntimeError('never called')\n")
    info = tmp_path / "mmhub_fake_core-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mmhub-fake-core\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[mmhub]\ncore = mmhub_fake_core\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("HUB_PLUGINS", raising=False)
    reset_plugin_manager()
    rows = {r["name"]: r for r in json.loads(invoke(cli_runner, ["plugins", "--json"]).stdout)}
    assert rows["core"]["status"] == "failed" and rows["core"]["distribution"] == "mmhub-fake-core"
    assert "belongs to the hub's built-in plugin" in rows["core"]["error"]
    assert len([t for t in TASKS.values() if t.plugin == "core"]) == len(core_tasks())
    sys.modules.pop("mmhub_fake_core", None)
