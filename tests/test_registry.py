import textwrap

import pytest

from hub.errors import CatalogError, UnknownModelError
from hub.registry import Catalog, ModelSpec, read_catalog_file, shipped_catalog_path


def write(tmp_path, text, name="catalog.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


SHIPPED_PLUGINS = ("transformers", "timm", "openclip")  # the shipped plugins whose models are in their catalog.yaml


def plugin_catalog(plugin: str):
    import importlib
    from pathlib import Path

    return Path(importlib.import_module(f"mmhub_{plugin}").__file__).with_name("catalog.yaml")


def test_the_hub_catalogue_holds_no_plugin_model_and_parses():
    assert read_catalog_file(shipped_catalog_path()) == []


@pytest.mark.parametrize("plugin", SHIPPED_PLUGINS)
def test_each_shipped_plugin_catalogue_parses_and_names_only_its_plugin(plugin):
    specs = read_catalog_file(plugin_catalog(plugin))
    assert specs and {s.plugin for s in specs} == {plugin}
    for spec in specs:
        assert spec.task and spec.source
    assert "all-minilm-l6-v2" in {s.id for s in specs} or plugin != "transformers"


@pytest.mark.parametrize("plugin", SHIPPED_PLUGINS)
def test_each_shipped_plugin_catalogue_is_package_data(plugin):
    """A wheel built from the plugin's pyproject carries catalog.yaml (setuptools package-data)."""
    import tomllib

    pyproject = plugin_catalog(plugin).parent.parent / "pyproject.toml"
    config = tomllib.loads(pyproject.read_text())["tool"]["setuptools"]
    assert "catalog.yaml" in config["package-data"][f"mmhub_{plugin}"]


@pytest.mark.parametrize("plugin", SHIPPED_PLUGINS)
def test_the_catalogue_lists_every_entry_of_each_plugin_file_as_written(plugin):
    from hub.api import catalog

    known = catalog(installed_only=False)
    for spec in read_catalog_file(plugin_catalog(plugin)):
        listed = known.get(spec.id)
        assert listed.to_dict() | {"origin": ""} == spec.to_dict() | {"origin": ""}
        assert listed.origin == f"plugin '{plugin}' ({spec.origin})"


def test_malformed_catalogue_names_file_entry_field(tmp_path):
    path = write(tmp_path, """
        models:
          good: {task: text-embedding, plugin: transformers, source: x}
          broken: {task: text-embedding, plugin: transformers, source: x, params: many}
    """)
    with pytest.raises(CatalogError) as err:
        read_catalog_file(path)
    msg = str(err.value)
    assert str(path) in msg and "'broken'" in msg and "'params'" in msg


@pytest.mark.parametrize("entry, field", [
    ("{plugin: transformers, source: x}", "task"),
    ("{task: nonsense, plugin: transformers, source: x}", "task"),
    ("{task: text-embedding, plugin: transformers, source: x, colour: red}", "colour"),
    ("{task: text-embedding, source: x}", "plugin"),
])
def test_each_bad_field_is_named(tmp_path, entry, field):
    path = write(tmp_path, f"models:\n  m1: {entry}\n")
    with pytest.raises(CatalogError) as err:
        read_catalog_file(path)
    assert err.value.entry == "m1" and err.value.field == field


def test_invalid_yaml_names_file(tmp_path):
    path = write(tmp_path, "models: [unclosed\n")
    with pytest.raises(CatalogError, match="not valid YAML") as err:
        read_catalog_file(path)
    assert str(path) in str(err.value)


def test_missing_user_catalogue_is_reported(tmp_path):
    with pytest.raises(CatalogError, match="file not found"):
        read_catalog_file(tmp_path / "nope.yaml")


def spec(mid, task="text-embedding", plugin="p", aliases=()):
    return ModelSpec(id=mid, task=task, plugin=plugin, source="x", aliases=list(aliases))


def test_lookup_by_alias_and_case():
    cat = Catalog([spec("bert-base", aliases=["bert"])])
    assert cat.get("bert").id == "bert-base"
    assert cat.get("BERT-Base").id == "bert-base"


def test_unknown_id_suggests_closest():
    cat = Catalog([spec("resnet50.a1_in1k"), spec("resnet18.a1_in1k"), spec("gpt2")])
    with pytest.raises(UnknownModelError) as err:
        cat.get("resnet5")
    assert "resnet50.a1_in1k" in err.value.suggestions


def test_filter_wildcards_and_fields():
    cat = Catalog([spec("resnet50", "image-classification", "timm"), spec("minilm", "text-embedding", "tf"),
                   spec("clip", "zero-shot-image-classification", "openclip")])
    assert [s.id for s in cat.filter("res*")] == ["resnet50"]
    assert [s.id for s in cat.filter("net")] == ["resnet50"]
    assert [s.id for s in cat.filter(modality="crossmodal")] == ["clip"]
    assert [s.id for s in cat.filter(task="feature-extraction")] == ["minilm"]
    assert sorted(s.id for s in cat.filter(plugin="t*")) == ["minilm", "resnet50"]


ENTRY = "{task: text-embedding, plugin: transformers, source: x}"


@pytest.mark.parametrize("text, first, second", [
    (f"models:\n  m1: {ENTRY}\n  m2: {ENTRY}\n  m1: {ENTRY}\n", 2, 4),
    (f"models:\n  m1: {ENTRY}\nmodels:\n  m2: {ENTRY}\n", 1, 3),
    ("models:\n  m1:\n    task: text-embedding\n    task: fill-mask\n    plugin: p\n    source: x\n", 3, 4),
])
def test_a_name_written_twice_in_one_file_is_an_error(tmp_path, text, first, second):
    path = write(tmp_path, text)
    with pytest.raises(CatalogError, match=rf"is defined twice, on lines {first} and {second}") as err:
        read_catalog_file(path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize("aliases, clash, owner", [
    ("[m2]", "m2", "m2"),                      # an alias equal to another entry's id
    ("[short, M2x]", "M2x", "m2"),             # an alias equal to another entry's alias
])
def test_an_alias_naming_another_entry_is_an_error_naming_both(tmp_path, aliases, clash, owner):
    path = write(tmp_path, f"""
        models:
          m2: {{task: text-embedding, plugin: p, source: x, aliases: [M2x]}}
          m1: {{task: text-embedding, plugin: p, source: x, aliases: {aliases}}}
    """)
    with pytest.raises(CatalogError) as err:
        read_catalog_file(path)
    assert err.value.entry == "m1" and err.value.field == "aliases"
    assert f"'{clash}'" in str(err.value) and f"entry '{owner}'" in str(err.value)


def test_an_alias_repeating_its_own_id_is_harmless(tmp_path):
    path = write(tmp_path, "models:\n  m1: {task: text-embedding, plugin: p, source: x, aliases: [m1, one, one]}\n")
    assert read_catalog_file(path)[0].id == "m1"


BAD_REVISIONS = ["a b", "main branch", "a..b", "-main", "x.lock", "a~1", "a^2", "a:b", "what?", "a*", "a[0]",
                 "a\\\\b", "a/", "/a", "a//b", ".hidden", "a/.b", "@", "a@{1}", "end.", "tab\\there", "bell\\x07"]


@pytest.mark.parametrize("revision", BAD_REVISIONS)
def test_a_revision_that_is_no_commit_branch_or_tag_is_refused_at_load(tmp_path, revision):
    path = write(tmp_path, f'models:\n  m1: {{task: text-embedding, plugin: p, source: x, revision: "{revision}"}}\n')
    with pytest.raises(CatalogError, match="is not a commit hash") as err:
        read_catalog_file(path)
    assert err.value.entry == "m1" and err.value.field == "revision"


@pytest.mark.parametrize("revision", ["main", "v1.0", "refs/pr/1", "release/2024.01", "v2.0-rc1",
                                      "0123456789abcdef0123456789abcdef01234567"])
def test_commits_branches_and_tags_are_accepted(tmp_path, revision):
    path = write(tmp_path, f'models:\n  m1: {{task: text-embedding, plugin: p, source: x, revision: "{revision}"}}\n')
    assert read_catalog_file(path)[0].revision == revision


def test_a_catalogue_that_is_not_utf8_names_the_file(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("models:\n  caf\xe9: {task: text-embedding, plugin: p, source: x}\n".encode("latin-1"))
    with pytest.raises(CatalogError, match="not UTF-8 text") as err:
        read_catalog_file(path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize("task, wanted", [("image-classification", "text-embedding"),
                                          ("text-embedding", "image-classification"),
                                          ("speech-recognition", "fill-mask"),
                                          ("zero-shot-image-classification", "asr")])
def test_a_task_of_another_modality_is_refused_naming_the_models_tasks(task, wanted):
    from hub.errors import TaskMismatchError
    from hub.tasks import TASKS, resolve_task

    s = spec("m1", task=task)
    with pytest.raises(TaskMismatchError) as err:
        s.with_task(wanted)
    msg = str(err.value)
    assert f"model 'm1' cannot serve the task '{resolve_task(wanted)}': it is a {task} model" in msg
    assert all(t in msg for t, info in TASKS.items() if info.modality == TASKS[task].modality)


def test_a_task_of_the_same_modality_is_accepted():
    assert spec("m1", task="image-classification").with_task("image-embedding").task == "image-embedding"
    assert spec("m1").with_task("sentiment-analysis").task == "text-classification"


# -- hostile YAML: aliases that never end or expand without bound, and messages that quote a huge value --------------
def _levels(depth: int, width: int, mapping: bool) -> str:
    """A 'billion laughs' document: each level repeats the level below ``width`` times through aliases."""
    lines = ["l0: &l0 " + ("{" + ", ".join(f"k{i}: lol" for i in range(width)) + "}" if mapping
                          else "[" + ", ".join(["lol"] * width) + "]")]
    for level in range(1, depth + 1):
        refs = [f"*l{level - 1}"] * width
        body = "{" + ", ".join(f"k{i}: {r}" for i, r in enumerate(refs)) + "}" if mapping else "[" + ", ".join(refs) + "]"
        lines.append(f"l{level}: &l{level} {body}")
    return "\n".join(lines) + "\n"


BOMBS = {
    "lists-9x9": _levels(9, 9, False),
    "mappings-9x9": _levels(9, 9, True),
    "lists-30x2": _levels(30, 2, False),
    "bomb-under-models": "models:\n" + "".join(f"  {line}\n" for line in _levels(8, 10, False).splitlines()),
    "bomb-in-a-field": "x: &x [" + ", ".join(["lol"] * 400) + "]\ny: &y [" + ", ".join(["*x"] * 400) + "]\n"
                       "models:\n  m: {task: text-embedding, plugin: transformers, source: s, aliases: *y}\n",
    "self-list": "models: &a [*a]\n",
    "self-mapping": "models: &a {m: *a}\n",
    "self-deep": "models:\n  m: &a {task: text-embedding, plugin: transformers, source: x, options: {o: [1, {p: *a}]}}\n",
}


@pytest.mark.parametrize("name", sorted(BOMBS))
def test_an_alias_bomb_in_a_catalogue_is_refused_quickly_in_one_short_line(name, tmp_path, monkeypatch, cli_runner,
                                                                        fresh_hub):
    import time

    from hub.cli import cli

    path = tmp_path / "bomb.yaml"
    path.write_text(BOMBS[name])
    monkeypatch.setenv("HUB_CATALOG", str(path))
    started = time.perf_counter()
    done = cli_runner.invoke(cli, ["list", "--json"])
    assert time.perf_counter() - started < 10
    assert done.exit_code == 2 and "Traceback" not in done.output, done.output
    line = done.stderr.strip()
    assert "\n" not in line and str(path) in line and "alias" in line and len(line) < 600, line[:2000]


def test_an_alias_bomb_in_a_model_directorys_card_is_refused(tmp_path, cli_runner, fresh_hub):
    from hub.cli import cli

    (tmp_path / "mmhub.yaml").write_text(BOMBS["mappings-9x9"])
    done = cli_runner.invoke(cli, ["info", str(tmp_path)])
    assert done.exit_code == 2 and "alias" in done.stderr and len(done.stderr) < 600, done.stderr[:2000]


@pytest.mark.parametrize("text", [
    "x: &x 1\nmodels:\n  m: {task: text-embedding, plugin: transformers, source: s, params: *x}\n",
    "d: &d {task: text-embedding, plugin: transformers, source: s}\nmodels:\n  m: *d\n  n: *d\n",
    "models:\n  m: {task: text-embedding, plugin: transformers, source: s, description: 'a * b'}\n",
])
def test_aliases_that_expand_to_little_still_load(text, tmp_path):
    specs = read_catalog_file(write(tmp_path, text))
    assert {s.task for s in specs} == {"text-embedding"}


@pytest.mark.slow
@pytest.mark.parametrize("text", [
    "models:\n  m: {task: text-embedding, plugin: transformers, source: s, params: [" + "1, " * 300_000 + "1]}\n",
    "models:\n  m: {task: text-embedding, plugin: transformers, source: s, aliases: " + "a" * 1_000_000 + "}\n",
    "models:\n  m: {task: text-embedding, plugin: transformers, source: s, description: [" + "x, " * 300_000 + "x]}\n",
    "models:\n  m: {task: " + "t" * 1_000_000 + ", plugin: transformers, source: s}\n",
    "models:\n  m: {task: text-embedding, plugin: [" + "p, " * 300_000 + "p], source: s}\n",
])
def test_a_message_quoting_a_huge_value_is_capped(text, tmp_path, monkeypatch, cli_runner, fresh_hub):
    from hub.cli import cli
    from hub.errors import MAX_MESSAGE

    path = write(tmp_path, text)
    monkeypatch.setenv("HUB_CATALOG", str(path))
    done = cli_runner.invoke(cli, ["list"])
    assert done.exit_code == 2 and "Traceback" not in done.output
    line = done.stderr.strip()
    assert "\n" not in line and len(line) <= MAX_MESSAGE + 100 and str(path) in line, line[:300]
    assert "characters left out" in line


# -- the parsed-catalogue cache (hub.cache): a file parsed once, re-read when it changes ------------------------------
ENTRY = "  {id}: {{task: text-embedding, plugin: transformers, source: 'hf-hub:org/{id}'}}\n"


def aged(path, seconds=60):
    """Make ``path`` look written ``seconds`` ago, so that the cache may keep it (see hub.cache.SETTLE_S)."""
    import os
    import time

    then = time.time() - seconds
    os.utime(path, (then, then))
    return path


def catalog_of(tmp_path, *ids, name="catalog.yaml"):
    path = tmp_path / name
    path.write_text("models:\n" + "".join(ENTRY.format(id=i) for i in ids))
    return aged(path)


def cache_files(cache) -> list:
    return sorted((cache / "startup").glob("catalog-*.json"))


@pytest.fixture
def cache(tmp_path, monkeypatch):
    where = tmp_path / "hub-cache"
    monkeypatch.setenv("HUB_CACHE_DIR", str(where))
    return where


def refuse_parsing(monkeypatch):
    """Parsing YAML now fails: whatever is read must come from the cache."""
    import hub.registry

    def parse(text):
        raise AssertionError("the catalogue was parsed again")

    monkeypatch.setattr(hub.registry, "_yaml_load", parse)


def test_a_catalogue_is_parsed_once_then_read_from_the_cache(tmp_path, cache, monkeypatch):
    path = catalog_of(tmp_path, "a-model", "b-model")
    first = read_catalog_file(path)
    assert len(cache_files(cache)) == 1
    refuse_parsing(monkeypatch)
    assert read_catalog_file(path) == first


@pytest.mark.parametrize("change", ["new entry", "same size", "touched", "replaced by another file"])
def test_a_changed_catalogue_is_parsed_again(tmp_path, cache, change):
    import os
    import time

    path = catalog_of(tmp_path, "a-model")
    assert [s.id for s in read_catalog_file(path)] == ["a-model"]
    if change == "new entry":
        catalog_of(tmp_path, "a-model", "b-model")
    elif change == "same size":  # the same number of bytes: only the time tells
        catalog_of(tmp_path, "z-model")
        aged(path, 30)
    elif change == "touched":  # the same bytes, a new time: parsed again, same result
        os.utime(path, (time.time() - 20, time.time() - 20))
    else:
        other = catalog_of(tmp_path, "c-model", name="other.yaml")
        os.replace(other, path)
    expected = {"new entry": ["a-model", "b-model"], "same size": ["z-model"], "touched": ["a-model"],
                "replaced by another file": ["c-model"]}[change]
    assert [s.id for s in read_catalog_file(path)] == expected


def test_the_shipped_catalogue_is_cached_and_a_change_to_it_is_seen(tmp_path, cache, monkeypatch):
    """registry.yaml, read through the catalogue the hub builds, the way 'hub list' does (with an entry of its
    own: the shipped one holds none, the plugins register theirs)."""
    import hub.registry
    from hub.api import catalog, invalidate_catalog

    shipped = tmp_path / "registry.yaml"
    shipped.write_text(shipped_catalog_path().read_text().replace("models: {}", "models:\n" + ENTRY.format(id="a-model")))
    aged(shipped)
    monkeypatch.setattr(hub.registry, "shipped_catalog_path", lambda: shipped)
    import hub.api

    monkeypatch.setattr(hub.api, "shipped_catalog_path", lambda: shipped)
    invalidate_catalog()
    try:
        before = set(catalog(installed_only=False).specs)
        assert {"a-model", "all-minilm-l6-v2"} <= before and cache_files(cache)
        text = shipped.read_text().replace("a-model:", "a-model-renamed:", 1)
        shipped.write_text(text)
        invalidate_catalog()
        after = set(catalog(installed_only=False).specs)
        assert after == before - {"a-model"} | {"a-model-renamed"}
    finally:
        invalidate_catalog()


@pytest.mark.parametrize("garbage", [b"", b"{not json", b"\xff\xfe\x00", b"[1, 2, 3]", b'{"format": 1}',
                                     b'{"format": 1, "key": null, "value": null}', b'"just a string"',
                                     b'{"format": 999, "key": [], "value": {"data": {}}}'])
def test_a_corrupt_cache_file_is_ignored_and_written_anew(tmp_path, cache, garbage):
    import json

    path = catalog_of(tmp_path, "a-model")
    expected = read_catalog_file(path)
    (cached,) = cache_files(cache)
    cached.write_bytes(garbage)
    assert read_catalog_file(path) == expected
    assert json.loads(cached.read_text())["value"]["data"]["models"]["a-model"]["task"] == "text-embedding"


def test_a_cache_file_for_another_catalogue_under_the_same_name_is_not_used(tmp_path, cache):
    """The key holds the path, size and time: a cache file copied from another catalogue's is refused."""
    first, second = catalog_of(tmp_path, "a-model", name="one.yaml"), catalog_of(tmp_path, "b-model", name="two.yaml")
    read_catalog_file(first)
    (one,) = cache_files(cache)
    read_catalog_file(second)
    (two,) = [p for p in cache_files(cache) if p != one]
    two.write_bytes(one.read_bytes())
    assert [s.id for s in read_catalog_file(second)] == ["b-model"]


@pytest.mark.parametrize("blocker", ["a file", "a file above it", "a directory in place of the cache file",
                                     "a FIFO in place of the cache file", "a read-only directory"])
def test_a_cache_that_cannot_be_written_or_read_still_reads_the_catalogue(tmp_path, monkeypatch, blocker):
    import os

    path = catalog_of(tmp_path, "a-model")
    where = tmp_path / "cache"
    if blocker == "a file":
        where.write_text("not a directory")
    elif blocker == "a file above it":
        where.write_text("not a directory")
        where = where / "below"
    else:
        from hub.cache import short_name

        slot = where / "startup" / f"catalog-{short_name(str(path))}.json"
        slot.parent.mkdir(parents=True)
        if blocker == "a directory in place of the cache file":
            slot.mkdir()
        elif blocker == "a FIFO in place of the cache file":
            os.mkfifo(slot)
        else:
            slot.parent.chmod(0o555)
    monkeypatch.setenv("HUB_CACHE_DIR", str(where))
    try:
        for _ in range(2):
            assert [s.id for s in read_catalog_file(path)] == ["a-model"]
    finally:
        if blocker == "a read-only directory":
            (where / "startup").chmod(0o755)


def test_a_recently_changed_catalogue_is_not_cached(tmp_path, cache):
    """A file changed within the file system's clock tick could change again unseen: it is parsed each time."""
    path = tmp_path / "fresh.yaml"
    path.write_text("models:\n" + ENTRY.format(id="a-model"))
    assert [s.id for s in read_catalog_file(path)] == ["a-model"]
    assert cache_files(cache) == []


def test_cached_entries_are_still_validated(tmp_path, cache, monkeypatch):
    """The cache keeps the parsed YAML; whether its task is known is decided on every read."""
    path = tmp_path / "catalog.yaml"
    path.write_text("models:\n  odd-model: {task: no-such-task, plugin: transformers, source: x}\n")
    aged(path)
    for _ in range(2):
        with pytest.raises(CatalogError, match="no-such-task"):
            read_catalog_file(path)


@pytest.mark.parametrize("text, words", [
    ("a: &x [1]\nb: *x\nmodels: {}\n", None),
    ("models:\n  m: {task: text-embedding, plugin: p, source: x}\n  m: {task: text-embedding, plugin: p, source: y}\n",
     "defined twice"),
    ("models: [unclosed\n", "not valid YAML"),
])
def test_what_the_parser_refuses_is_refused_again_and_never_cached(tmp_path, cache, text, words):
    path = tmp_path / "catalog.yaml"
    path.write_text(text)
    aged(path)
    for _ in range(2):
        if words is None:
            assert read_catalog_file(path) == []
        else:
            with pytest.raises(CatalogError, match=words):
                read_catalog_file(path)
    assert len(cache_files(cache)) == (1 if words is None else 0)


def test_yaml_that_json_cannot_hold_is_not_cached(tmp_path, cache):
    """A date or a number key would come back from JSON changed: such a file is parsed every time."""
    path = tmp_path / "catalog.yaml"
    path.write_text("models:\n  m: {task: text-embedding, plugin: transformers, source: x, "
                    "options: {released: 2024-01-02, 7: seven}}\n")
    aged(path)
    for _ in range(2):
        (spec,) = read_catalog_file(path)
        assert spec.options == {"released": __import__("datetime").date(2024, 1, 2), 7: "seven"}
    assert cache_files(cache) == []


def test_an_override_warning_about_a_huge_id_is_capped(tmp_path, monkeypatch, cli_runner, fresh_hub):
    import os

    from hub.cli import cli
    from hub.errors import MAX_MESSAGE

    huge = "m" * 1_000_000
    paths = []
    for name in ("a.yaml", "b.yaml"):
        paths.append(write(tmp_path, f"models:\n  ? {huge}\n  : {{task: text-embedding, plugin: transformers, "
                                     "source: s}\n", name))
    monkeypatch.setenv("HUB_CATALOG", os.pathsep.join(map(str, paths)))
    done = cli_runner.invoke(cli, ["list", "--all", "--json"])
    assert done.exit_code == 0
    warned = [line for line in done.stderr.splitlines() if line.startswith("Warning:")]
    assert warned and all(len(line) <= MAX_MESSAGE + 60 for line in warned)
    assert any("characters left out" in line and str(paths[0]) in line for line in warned), done.stderr[:500]


def test_a_relative_catalogue_path_is_cached_per_directory(tmp_path, cache, monkeypatch):
    """The same relative name in two directories is two files: each directory's own entries are read."""
    import os

    for sub, model in (("one", "a-model"), ("two", "b-model")):
        (tmp_path / sub).mkdir()
        catalog_of(tmp_path / sub, model)
        os.utime(tmp_path / sub / "catalog.yaml", (1_000_000_000, 1_000_000_000))  # the same time and size
    for _ in range(2):
        for sub, model in (("one", "a-model"), ("two", "b-model")):
            monkeypatch.chdir(tmp_path / sub)
            assert [s.id for s in read_catalog_file(__import__("pathlib").Path("catalog.yaml"))] == [model]
