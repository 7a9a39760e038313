"""`hub pin`: branch revisions become commit hashes, comments and other entries untouched."""
import textwrap
from types import SimpleNamespace

import pytest

from hub.errors import HubError
from hub.cli import cli
from hub.pinning import pin, set_revision, unpinned
from hub.registry import read_catalog_file

CATALOG = textwrap.dedent("""\
    # my catalogue
    models:
      pinned:
        task: text-embedding
        plugin: transformers
        source: hf-hub:org/pinned
        revision: 0123456789abcdef0123456789abcdef01234567
      floating:
        task: image-classification
        plugin: timm
        source: hf-hub:timm/floating  # a comment that must survive
        revision: main  # TODO pin
        params: 10
      norev:
        task: image-classification
        plugin: timm
        source: hf-hub:timm/norev
      local-one:
        task: text-embedding
        plugin: transformers
        source: ./somewhere
""")
SHA = "feedfacefeedfacefeedfacefeedfacefeedface"


@pytest.fixture
def fake_hub(monkeypatch):
    asked = []

    def model_info(self, repo, revision=None):
        asked.append((repo, revision))
        return SimpleNamespace(sha=SHA)

    import huggingface_hub

    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", model_info)
    return asked


def test_unpinned_finds_branch_and_missing_revisions(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(CATALOG)
    assert [s.id for s in unpinned(path)] == ["floating", "norev"]


def test_pin_rewrites_only_unpinned_entries(tmp_path, fake_hub):
    path = tmp_path / "c.yaml"
    path.write_text(CATALOG)
    changes = pin(path)
    assert changes == [("floating", "main", SHA), ("norev", "-", SHA)]
    assert fake_hub == [("timm/floating", "main"), ("timm/norev", "main")]
    text = path.read_text()
    assert "# my catalogue" in text and "# a comment that must survive" in text
    specs = {s.id: s for s in read_catalog_file(path)}
    assert specs["floating"].revision == SHA and specs["norev"].revision == SHA
    assert specs["pinned"].revision.startswith("0123") and specs["floating"].params == 10


def test_dry_run_writes_nothing(tmp_path, fake_hub):
    path = tmp_path / "c.yaml"
    path.write_text(CATALOG)
    assert len(pin(path, dry_run=True)) == 2
    assert path.read_text() == CATALOG


def test_unknown_id_and_offline_are_clear_errors(tmp_path, monkeypatch):
    path = tmp_path / "c.yaml"
    path.write_text(CATALOG)
    with pytest.raises(HubError, match="no hub-sourced entries named nope"):
        pin(path, ["nope"])
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(HubError, match="needs network access"):
        pin(path, ["floating"])
    assert path.read_text() == CATALOG


def test_set_revision_needs_a_block_entry():
    with pytest.raises(HubError, match="pin it by hand"):
        set_revision("models:\n  x: {task: a}\n", "x", SHA)


def test_pin_command(tmp_path, fake_hub, cli_runner):
    from hub.cli import cli

    path = tmp_path / "c.yaml"
    path.write_text(CATALOG)
    result = cli_runner.invoke(cli, ["pin", "floating", "--file", str(path)])
    assert result.exit_code == 0 and f"floating: main -> {SHA}" in result.stdout
    assert [s.id for s in unpinned(path)] == ["norev"]


def shipped_copies(tmp_path, monkeypatch) -> list:
    """Copies of the shipped catalogue files (registry.yaml and each shipped plugin's catalog.yaml), which
    hub.pinning.shipped_files then names instead of the originals."""
    import hub.pinning

    copies = []
    for i, original in enumerate(hub.pinning.shipped_files()):
        copy = tmp_path / f"{i}-{original.parent.name}-{original.name}"
        copy.write_text(original.read_text())
        copies.append(copy)
    monkeypatch.setattr(hub.pinning, "shipped_files", lambda: copies)
    return copies


def test_the_shipped_files_are_the_hub_catalogue_and_each_plugin_catalogue():
    from hub.pinning import shipped_files
    from hub.registry import shipped_catalog_path

    files = shipped_files()
    assert files[0] == shipped_catalog_path()
    assert {(f.parent.name, f.name) for f in files[1:]} >= {
        ("mmhub_transformers", "catalog.yaml"), ("mmhub_timm", "catalog.yaml"), ("mmhub_openclip", "catalog.yaml")}


@pytest.mark.parametrize("ids", [["resnet50.a1_in1k"], ["bert-base-ner", "resnet50.a1_in1k", "clip-vit-b-32-openai"]])
def test_pin_without_a_file_pins_each_entry_in_the_shipped_file_that_declares_it(tmp_path, monkeypatch, fake_hub,
                                                                                  cli_runner, ids):
    copies = shipped_copies(tmp_path, monkeypatch)
    before = {path: path.read_text() for path in copies}
    result = cli_runner.invoke(cli, ["pin", *ids])
    assert result.exit_code == 0, result.output
    for model_id in ids:
        (holder,) = [p for p in copies if model_id in {s.id for s in read_catalog_file(p)}]
        assert {s.id: s.revision for s in read_catalog_file(holder)}[model_id] == SHA
        assert f"{model_id}: main -> {SHA}" in result.stdout and f"in {holder}" in result.stderr
    untouched = [p for p in copies if not set(ids) & {s.id for s in read_catalog_file(p)}]
    assert untouched and all(p.read_text() == before[p] for p in untouched)


@pytest.mark.parametrize("ids", [["no-such-model"], ["resnet50.a1_in1k", "nope"], ["fasterrcnn-resnet50-fpn-v2"]])
def test_pin_without_a_file_refuses_ids_no_shipped_file_holds(tmp_path, monkeypatch, fake_hub, cli_runner, ids):
    copies = shipped_copies(tmp_path, monkeypatch)
    before = {path: path.read_text() for path in copies}
    result = cli_runner.invoke(cli, ["pin", *ids])
    assert result.exit_code == 2 and "no hub-sourced entries named" in result.output and "--file" in result.output
    assert "Traceback" not in result.output
    assert all(p.read_text() == before[p] for p in copies)


def test_every_unpinned_shipped_entry_can_be_pinned(tmp_path, monkeypatch, fake_hub):
    from hub.pinning import pin_shipped

    copies = shipped_copies(tmp_path, monkeypatch)
    before = {s.id: s for path in copies for s in read_catalog_file(path)}
    changed = {model_id for _, changes in pin_shipped() for model_id, _, _ in changes}
    after = {s.id: s for path in copies for s in read_catalog_file(path)}
    assert all(unpinned(path) == [] for path in copies) and set(after) == set(before) and changed
    for model_id, spec in after.items():
        expected = SHA if model_id in changed else before[model_id].revision
        assert spec.revision == expected and spec.source == before[model_id].source


@pytest.mark.parametrize("make", [lambda d: d / "missing.yaml", lambda d: d])
def test_a_missing_file_or_a_directory_is_a_clear_error(tmp_path, make):
    with pytest.raises(HubError, match="does not exist or is not a file; pass an existing file with --file"):
        pin(make(tmp_path))


@pytest.mark.parametrize("text, problem", [
    (CATALOG + "  floating:\n    task: text-embedding\n    plugin: p\n    source: x\n", "is defined twice"),
    (CATALOG.replace("revision: main  # TODO pin", "revision: main branch"), "is not a commit hash"),
])
def test_a_malformed_file_is_refused_before_asking_the_hub(tmp_path, fake_hub, text, problem):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(HubError, match=problem):
        pin(path)
    assert path.read_text() == text
