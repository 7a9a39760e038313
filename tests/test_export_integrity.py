"""An export is what its mmhub.yaml says: paths that escape it, and files deleted, cut or swapped, are one line.

One tiny ONNX export (and one OpenVINO export, shared with other modules) is copied per case and damaged;
``hub run`` on the copy must exit 2 with one line that names the file and says to run ``hub export``
again, never an ONNX Runtime or OpenVINO error.
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
import yaml

from hub.cli import cli

sys.path.insert(0, str(Path(__file__).resolve().parent))
pytestmark = [pytest.mark.usefixtures("one_torch_thread"), pytest.mark.slow]  # slow: exports to ONNX Runtime / OpenVINO


@pytest.fixture(scope="module")
def onnx_export(tmp_path_factory):
    from export_models import hub_export, save_classifier

    root = tmp_path_factory.mktemp("integrity")
    return hub_export(save_classifier(root / "classifier"), "onnx", root / "classifier-onnx")


def _card(export: Path) -> dict:
    return yaml.safe_load((export / "mmhub.yaml").read_text())


def _info(card: dict) -> dict:
    return card["options"]["export"]


def _edit_card(export: Path, edit) -> None:
    card = _card(export)
    edit(_info(card))
    (export / "mmhub.yaml").write_text(yaml.safe_dump(card, sort_keys=False))


def _copy(export: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "export"
    shutil.copytree(export, copy, symlinks=True)
    return copy


def _run(runner, export: Path):
    return runner.invoke(cli, ["run", str(export), "a good day", "--json"], env={"HUB_RUNTIME_THREADS": "1"})


def _one_line(res, *words) -> str:
    assert res.exit_code == 2, res.output
    assert res.output.startswith("Error: ") and res.output.count("\n") == 1, res.output
    assert "hub export" in res.output and "Traceback" not in res.output, res.output
    for word in words:
        assert word in res.output, res.output
    lowered = res.output.lower()
    assert "plugin" not in lowered and "onnxruntime_pybind" not in lowered and "invalidprotobuf" not in lowered
    return res.output


def _other_graph() -> bytes:
    """A valid ONNX graph of another model (an identity of one float input)."""
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "other", [x], [y])
    return helper.make_model(graph).SerializeToString()


def test_the_card_records_the_sha256_of_every_file_and_the_export_runs(onnx_export, cli_runner):
    from hub.export.integrity import sha256_of

    files = _info(_card(onnx_export))["files"]
    on_disk = sorted(p.relative_to(onnx_export).as_posix() for p in onnx_export.rglob("*")
                     if p.is_file() and p.name != "mmhub.yaml")
    assert sorted(files) == on_disk and "model.onnx" in files
    assert all(files[name] == sha256_of(onnx_export / name) for name in files)
    res = _run(cli_runner, onnx_export)
    assert res.exit_code == 0, res.output


ESCAPES = {
    "parent of parent": "../../etc/passwd", "absolute": "/etc/passwd", "sibling directory": "../other/model.onnx",
    "climbs through a subdirectory": "sub/../../model.onnx", "many parents": "../" * 30 + "etc/hostname",
    "empty": "", "backslashes": "..\\..\\etc\\passwd", "NUL byte": "model.onnx\0.txt",
}


@pytest.mark.parametrize("where", ["graph", "files"])
@pytest.mark.parametrize("case", sorted(ESCAPES))
def test_a_path_that_escapes_the_export_is_refused(case, where, onnx_export, tmp_path, cli_runner):
    export = _copy(onnx_export, tmp_path)
    name = ESCAPES[case]

    def edit(info):
        if where == "graph":
            info["graphs"]["model"] = name
            info["files"][name] = info["files"].pop("model.onnx")
        else:
            info["files"][name] = "0" * 64

    _edit_card(export, edit)
    _one_line(_run(cli_runner, export), str(export))


@pytest.mark.parametrize("target", ["graph", "tokenizer file"])
def test_a_link_that_leads_out_of_the_export_is_refused(target, onnx_export, tmp_path, cli_runner):
    """The link's target is a faithful copy, outside: still refused, since the export must hold its own files."""
    export = _copy(onnx_export, tmp_path)
    name = "model.onnx" if target == "graph" else next(n for n in _info(_card(export))["files"] if "token" in n)
    outside = tmp_path / ("outside-" + Path(name).name)
    shutil.move(export / name, outside)
    (export / name).symlink_to(outside)
    _one_line(_run(cli_runner, export), name, "leads out of its directory")


def _delete(path: Path) -> None:
    path.unlink()


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: max(0, path.stat().st_size // 2)])


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _swap(path: Path) -> None:
    path.write_bytes(_other_graph())


def _flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def _directory(path: Path) -> None:
    path.unlink()
    path.mkdir()


DAMAGE = {"deleted": _delete, "truncated": _truncate, "emptied": _empty, "swapped for another model's graph": _swap,
          "one byte flipped": _flip_a_byte, "replaced by a directory": _directory}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_each_exported_file_damaged_is_one_line_naming_it(damage, onnx_export, tmp_path, cli_runner):
    names = sorted(_info(_card(onnx_export))["files"])
    assert len(names) >= 3
    for name in names:
        export = _copy(onnx_export, tmp_path / name.replace("/", "_"))
        DAMAGE[damage](export / name)
        _one_line(_run(cli_runner, export), str(export / name))


@pytest.mark.parametrize("damage", ["deleted", "truncated", "swapped for another model's graph", "emptied"])
def test_an_export_without_recorded_hashes_still_names_a_damaged_graph(damage, onnx_export, tmp_path, cli_runner):
    """An export made before hashes were recorded: the runtime's own error becomes the one line."""
    export = _copy(onnx_export, tmp_path)
    _edit_card(export, lambda info: info.pop("files"))
    DAMAGE[damage](export / "model.onnx")
    _one_line(_run(cli_runner, export), str(export / "model.onnx"))


@pytest.mark.parametrize("damage", ["deleted", "truncated", "one byte flipped"])
@pytest.mark.parametrize("suffix", [".xml", ".bin"])
def test_a_damaged_openvino_export_is_one_line(suffix, damage, openvino_embedder, tmp_path, cli_runner):
    export = _copy(openvino_embedder[1], tmp_path)
    graph = _info(_card(export))["graphs"]
    name = Path(next(iter(graph.values()))).with_suffix(suffix).as_posix()
    DAMAGE[damage](export / name)
    _one_line(_run(cli_runner, export), str(export / name))


def test_an_openvino_graph_path_that_escapes_is_refused(openvino_embedder, tmp_path, cli_runner):
    export = _copy(openvino_embedder[1], tmp_path)
    _edit_card(export, lambda info: info["graphs"].update({k: "../../etc/passwd" for k in info["graphs"]}))
    _one_line(_run(cli_runner, export), "lies outside its directory")


def test_a_damaged_export_in_the_hub_cache_is_made_again(onnx_export, tmp_path, monkeypatch):
    import hub
    from hub.export.integrity import check

    cache = tmp_path / "cache"
    monkeypatch.setenv("HUB_CACHE_DIR", str(cache))
    monkeypatch.setenv("HUB_ONNX_EXPORTER", "torchscript")
    monkeypatch.setenv("HUB_RUNTIME_THREADS", "1")
    source = str(onnx_export.parent / "classifier")
    with pytest.warns(UserWarning, match="on first use"):
        first = hub.load(source, device="cpu", dtype="fp32", backend="onnx", cache=False)
    (card,) = cache.glob("exports/*/*/mmhub.yaml")
    _truncate(card.parent / "model.onnx")
    with pytest.warns(UserWarning, match="cached export is damaged .*model.onnx.* exporting it again"):
        again = hub.load(source, device="cpu", dtype="fp32", backend="onnx", cache=False)
    check(card.parent, _info(_card(card.parent)))  # whole again
    assert again(["a good day"])[0].to_dict() == first(["a good day"])[0].to_dict()
