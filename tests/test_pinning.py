"""`hub pin`: branch revisions become commit hashes, comments and other entries untouched."""
import textwrap
from types import SimpleNamespace

import pytest

from hub.errors import HubError
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


def test_every_unpinned_shipped_entry_can_be_pinned(tmp_path, fake_hub):
    from hub.registry import shipped_catalog_path

    path = tmp_path / "registry.yaml"
    path.write_text(shipped_catalog_path().read_text())
    before = {s.id: s for s in read_catalog_file(path)}
    changed = {model_id for model_id, _, _ in pin(path)}
    after = {s.id: s for s in read_catalog_file(path)}
    assert unpinned(path) == [] and set(after) == set(before)
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
