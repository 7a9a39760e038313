"""The cached entry points (hub.entry_points): the same as importlib.metadata finds, and never stale."""
import json
import os
import time
from importlib import metadata

import pytest

from hub import entry_points as eps

GROUP = "mmhub-test-group"  # a group of this test's own: the installed plugins are not in it


def aged(*paths, seconds=60):
    then = time.time() - seconds
    for path in paths:
        os.utime(path, (then, then))


def install(site, dist, name, module, version="0.1"):
    """A dist-info declaring ``name = module`` in GROUP, and the module; everything aged (settled)."""
    (site / f"{module}.py").write_text(f"VALUE = {dist!r}\n")
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"  # as pip names it
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[{GROUP}]\n{name} = {module}:VALUE\n")
    aged(info / "entry_points.txt", info, site / f"{module}.py", site)
    return info


@pytest.fixture
def site(tmp_path, monkeypatch):
    where = tmp_path / "site"
    where.mkdir()
    monkeypatch.setenv("HUB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.syspath_prepend(str(where))
    return where


def names(found) -> dict:
    return {ep.name: (ep.value, ep.dist.name, ep.dist.version) for ep in found}


def expected() -> dict:
    return names(eps._scan(GROUP)[0])


def cache_file(tmp_path):
    (path,) = (tmp_path / "cache" / "startup").glob(f"entry-points-{GROUP}-*.json")
    return path


def no_scanning(monkeypatch):
    def refuse(**kw):
        raise AssertionError("the distributions were scanned again")

    monkeypatch.setattr(metadata, "entry_points", refuse)


def test_the_cache_gives_what_importlib_metadata_finds_and_loads_the_same_objects(site, tmp_path, monkeypatch):
    install(site, "mmhub-one", "one", "ep_one_mod")
    install(site, "mmhub-two", "two", "ep_two_mod", version="2.5")
    first = eps.entry_points(GROUP)
    assert names(first) == expected() == {"one": ("ep_one_mod:VALUE", "mmhub-one", "0.1"),
                                          "two": ("ep_two_mod:VALUE", "mmhub-two", "2.5")}
    assert cache_file(tmp_path).exists()
    no_scanning(monkeypatch)
    again = eps.entry_points(GROUP)
    assert names(again) == names(first)
    assert {ep.name: ep.load() for ep in again} == {"one": "mmhub-one", "two": "mmhub-two"}


@pytest.mark.parametrize("change", ["installed", "removed", "upgraded", "declaration edited"])
def test_a_change_to_the_installed_distributions_is_seen(site, change):
    import shutil

    info = install(site, "mmhub-one", "one", "ep_one_mod")
    assert set(names(eps.entry_points(GROUP))) == {"one"}
    if change == "installed":
        install(site, "mmhub-three", "three", "ep_three_mod")
        os.utime(site)  # the directory changed just now, as installing does
    elif change == "removed":
        shutil.rmtree(info)
    elif change == "upgraded":
        shutil.rmtree(info)
        install(site, "mmhub-one", "one", "ep_one_mod", version="0.2")
        os.utime(site)
    else:  # the file rewritten in place: the directory holding the distribution keeps its time
        before = os.stat(site).st_mtime_ns
        (info / "entry_points.txt").write_text(f"[{GROUP}]\nrenamed = ep_one_mod:VALUE\n")
        assert os.stat(site).st_mtime_ns == before
    got = names(eps.entry_points(GROUP))
    assert got == expected()
    assert set(got) == {"installed": {"one", "three"}, "removed": set(), "upgraded": {"one"},
                        "declaration edited": {"renamed"}}[change]
    if change == "upgraded":
        assert got["one"][2] == "0.2"


def test_a_new_search_path_entry_has_its_own_cache(site, tmp_path, monkeypatch):
    install(site, "mmhub-one", "one", "ep_one_mod")
    assert set(names(eps.entry_points(GROUP))) == {"one"}
    other = tmp_path / "other"
    other.mkdir()
    install(other, "mmhub-four", "four", "ep_four_mod")
    monkeypatch.syspath_prepend(str(other))
    assert set(names(eps.entry_points(GROUP))) == {"one", "four"}


@pytest.mark.parametrize("garbage", [b"", b"{", b"\x00\xff", b"null", b"[]", b'{"format": 1, "key": 3}',
                                     b'{"format": 1, "key": KEY, "value": {"files": [], "entry_points": 7}}',
                                     b'{"format": 1, "key": KEY, "value": {"files": "x"}}'])
def test_a_corrupt_cache_file_is_ignored_and_written_anew(site, tmp_path, garbage):
    install(site, "mmhub-one", "one", "ep_one_mod")
    eps.entry_points(GROUP)
    path = cache_file(tmp_path)
    key = json.dumps(json.loads(path.read_text())["key"]).encode()
    path.write_bytes(garbage.replace(b"KEY", key))
    assert set(names(eps.entry_points(GROUP))) == {"one"}
    assert json.loads(path.read_text())["value"]["entry_points"][0][0] == "one"


def test_a_cache_directory_that_cannot_be_written_still_finds_the_entry_points(site, tmp_path, monkeypatch):
    install(site, "mmhub-one", "one", "ep_one_mod")
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("HUB_CACHE_DIR", str(blocker / "cache"))
    for _ in range(2):
        assert set(names(eps.entry_points(GROUP))) == {"one"}


def test_a_freshly_changed_search_path_is_not_cached(site, tmp_path):
    install(site, "mmhub-one", "one", "ep_one_mod")
    os.utime(site)  # changed just now: it could change again within the clock's tick unseen
    assert set(names(eps.entry_points(GROUP))) == {"one"}
    assert not list((tmp_path / "cache").glob("**/entry-points-*.json"))


def test_the_plugin_manager_loads_shipped_plugins_through_the_cache(fresh_hub):
    from hub.plugins import get_plugin_manager, installed_plugin_names, reset_plugin_manager

    found = installed_plugin_names()
    assert {"transformers", "timm", "openclip", "torchvision"} <= set(found)
    reset_plugin_manager()
    assert {"transformers", "timm", "openclip", "torchvision"} <= get_plugin_manager().names()


@pytest.mark.parametrize("value", ["", "not a module", "mod:", ":attr", "mod:attr:more"])
def test_a_malformed_value_fails_when_loaded_naming_the_entry_point(value):
    ep = eps.EntryPoint("broken", value, GROUP, eps.Distribution("d", "1"))
    with pytest.raises((ValueError, ImportError), match="broken|No module|malformed"):
        ep.load()
