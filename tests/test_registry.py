import textwrap

import pytest

from hub.errors import CatalogError, UnknownModelError
from hub.registry import Catalog, ModelSpec, read_catalog_file, shipped_catalog_path


def write(tmp_path, text, name="catalog.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_shipped_catalogue_parses():
    specs = read_catalog_file(shipped_catalog_path())
    ids = {s.id for s in specs}
    assert "all-minilm-l6-v2" in ids
    for spec in specs:
        assert spec.task and spec.plugin and spec.source


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
