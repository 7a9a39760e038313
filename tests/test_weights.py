"""hub.weights: safetensors headers checked before loading, pickles only as plain tensors, and every
command the hub suggests (in any message) shell-quoted and runnable from this environment."""
from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from hub import weights
from hub.errors import (ModelUnavailableError, NoLoaderError, PluginNotInstalledError, UnknownModelError,
                        WeightsError, shell_command)

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
FIX = "save it again"


def safetensors_bytes(tensors: dict[str, bytes]) -> bytes:
    """A safetensors file (U8 tensors) written by hand from the format: u64 header length, JSON, data."""
    header, offset = {}, 0
    for name, data in tensors.items():
        header[name] = {"dtype": "U8", "shape": [len(data)], "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
    raw = json.dumps(header).encode()
    return len(raw).to_bytes(8, "little") + raw + b"".join(tensors.values())


@pytest.fixture
def good(tmp_path) -> Path:
    path = tmp_path / "model.safetensors"
    path.write_bytes(safetensors_bytes({"a": bytes(range(40)), "b": bytes(24)}))
    return path


def test_a_whole_file_passes_and_loads(good):
    weights.check_safetensors(good, FIX)
    pytest.importorskip("torch")
    state = weights.load_safetensors(good, FIX)
    assert sorted(state) == ["a", "b"] and state["a"].tolist() == list(range(40))


def _header_length(data: bytes) -> int:
    return int.from_bytes(data[:8], "little")


CORRUPTIONS = {
    "empty": lambda d: b"",
    "4 bytes": lambda d: d[:4],
    "length only": lambda d: d[:8],
    "half the header": lambda d: d[:8 + _header_length(d) // 2],
    "header only": lambda d: d[:8 + _header_length(d)],
    "half the data": lambda d: d[:len(d) - 30],
    "last byte missing": lambda d: d[:-1],
    "trailing bytes": lambda d: d + b"\0" * 5,
    "zeros": lambda d: b"\0" * len(d),
    "random text": lambda d: b"this is not a safetensors file at all" * 3,
    "header length over the file": lambda d: (10 ** 6).to_bytes(8, "little") + d[8:],
    "header length absurd": lambda d: (2 ** 63).to_bytes(8, "little") + d[8:],
    "header not json": lambda d: _with_header(d, b"{not json" + b" " * (_header_length(d) - 9)),
    "header a list": lambda d: _with_header(d, b"[]" + b" " * (_header_length(d) - 2)),
    "header not utf-8": lambda d: _with_header(d, b"\xff\xfe" + d[10:8 + _header_length(d)]),
    "offsets missing": lambda d: _rewrite(d, lambda h: h["a"].pop("data_offsets")),
    "offsets reversed": lambda d: _rewrite(d, lambda h: h["a"].update(data_offsets=[40, 0])),
    "offsets negative": lambda d: _rewrite(d, lambda h: h["a"].update(data_offsets=[-8, 40])),
    "offsets not ints": lambda d: _rewrite(d, lambda h: h["a"].update(data_offsets=["0", 40])),
    "offsets past the end": lambda d: _rewrite(d, lambda h: h["b"].update(data_offsets=[40, 640])),
    "tensor entry not an object": lambda d: _rewrite(d, lambda h: h.update(a=7)),
}


def _with_header(data: bytes, header: bytes) -> bytes:
    return len(header).to_bytes(8, "little") + header + data[8 + _header_length(data):]


def _rewrite(data: bytes, change) -> bytes:
    header = json.loads(data[8:8 + _header_length(data)])
    change(header)
    raw = json.dumps(header).encode()
    return len(raw).to_bytes(8, "little") + raw + data[8 + _header_length(data):]


@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
def test_truncated_or_corrupt_safetensors_are_refused_naming_the_file(good, corruption):
    good.write_bytes(CORRUPTIONS[corruption](good.read_bytes()))
    with pytest.raises(WeightsError) as err:
        weights.check_safetensors(good, FIX)
    message = str(err.value)
    assert str(good) in message and FIX in message and "\n" not in message
    with pytest.raises(WeightsError):
        weights.load_safetensors(good, FIX)


def test_truncation_says_how_much_is_missing(good):
    data = good.read_bytes()
    good.write_bytes(data[:-10])
    with pytest.raises(WeightsError, match=f"truncated: its header describes {len(data)} bytes but the file has "
                                           f"{len(data) - 10}"):
        weights.check_safetensors(good, FIX)


# -- pickles ----------------------------------------------------------------------------------------
class _RunsCode:
    """Unpickling this runs a shell command: the kind of file torch.load must never execute."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {shlex.quote(str(self.marker))}",)


def test_plain_tensor_pickles_load(tmp_path):
    torch = pytest.importorskip("torch")
    path = tmp_path / "pytorch_model.bin"
    torch.save({"w": torch.arange(4.0)}, path)
    assert weights.load_pickled_tensors(path, FIX)["w"].tolist() == [0.0, 1.0, 2.0, 3.0]


@pytest.mark.parametrize("content", ["code", "function", "truncated", "text"])
def test_other_pickles_are_refused_and_never_run(tmp_path, content):
    torch = pytest.importorskip("torch")
    path, marker = tmp_path / "pytorch_model.bin", tmp_path / "ran"
    if content == "code":
        torch.save({"w": _RunsCode(marker)}, path)
    elif content == "function":
        torch.save({"w": print}, path)
    elif content == "truncated":
        torch.save({"w": torch.zeros(100)}, path)
        path.write_bytes(path.read_bytes()[:200])
    else:
        path.write_text("not a pickle")
    with pytest.raises(WeightsError) as err:
        weights.load_pickled_tensors(path, FIX)
    message = str(err.value)
    assert str(path) in message and "weights_only=True" in message and FIX in message and "\n" not in message
    assert not marker.exists()


def test_refetch_hint_downloads_hub_models_again_and_defers_to_the_plugin_otherwise():
    hub_spec = SimpleNamespace(source="hf-hub:org/name", revision="abc123")
    assert weights.refetch_hint(hub_spec, FIX) == (
        "download them again: `hf download org/name --revision abc123 --force-download`")
    assert weights.refetch_hint(SimpleNamespace(source="/some/dir", revision=None), FIX) == FIX


@pytest.mark.parametrize("repo, revision, expected", [
    ("org/name", "0123abcd", "`hf download org/name --revision 0123abcd`"),
    ("org/name", None, "`hf download org/name`"),
    ("org/name", "my branch", "`hf download org/name --revision 'my branch'`"),
    ("org/it's", "v1;rm -rf ~", "`hf download 'org/it'\"'\"'s' --revision 'v1;rm -rf ~'`"),
])
def test_download_command_is_shell_quoted(repo, revision, expected):
    command = weights.download_command(repo, revision)
    assert command == expected
    argv = shlex.split(command.strip("`"))
    assert argv[2] == repo and (revision is None or argv[4] == revision)


def test_offline_missing_weights_name_the_hf_command(tmp_path, monkeypatch):
    pytest.importorskip("huggingface_hub")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(ModelUnavailableError) as err:
        weights.hub_snapshot("tiny", "mmhub-tests/not-cached", "0" * 40)
    message = str(err.value)
    assert "`hf download mmhub-tests/not-cached --revision " + "0" * 40 + "`" in message
    assert "huggingface-cli" not in message


# -- every suggested command exists here and takes its arguments -------------------------------------
def suggested_commands(message: str) -> list[str]:
    """The commands a message suggests: by convention each is shell-quoted between backticks."""
    return re.findall(r"`([^`]+)`", message)


def _messages(tmp_path, monkeypatch) -> dict[str, str]:
    """One message per kind of error that suggests a command."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    out = {"unknown model": str(UnknownModelError("resnet", ["resnet50"])),
           "plugin not installed": str(PluginNotInstalledError("m", "timm")),
           "no loader": str(NoLoaderError("m", "timm")),
           "broken weights from the hub": weights.refetch_hint(SimpleNamespace(source="hf-hub:org/x", revision="v1.0"),
                                                               FIX)}
    with pytest.raises(ModelUnavailableError) as err:
        weights.hub_snapshot("m", "org/model-x", "0123456789abcdef" * 2 + "01234567")
    out["weights not cached"] = str(err.value)
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)
    with pytest.raises(ModelUnavailableError) as err:
        weights.hub_snapshot("m", "org/model-x", None)
    out["huggingface_hub missing"] = str(err.value)
    return out


@pytest.mark.slow
def test_every_suggested_command_runs_from_this_environment(tmp_path, monkeypatch):
    messages = _messages(tmp_path, monkeypatch)
    commands = {cmd for message in messages.values() for cmd in suggested_commands(message)}
    assert {c.split()[0] for c in commands} == {"hf", "hub", "pip"}
    for command in sorted(commands):
        argv = shlex.split(command)
        exe = VENV_BIN / argv[0]
        assert exe.is_file(), f"{command!r} is suggested but {argv[0]} is not installed in {VENV_BIN}"
        run = subprocess.run([str(exe), *argv[1:], "--help"], capture_output=True, text=True, timeout=120,
                             env={**os.environ, "HF_HUB_OFFLINE": "1"})
        assert run.returncode == 0, f"{command} --help failed: {run.stdout[-500:]} {run.stderr[-500:]}"


@pytest.mark.slow
def test_the_cli_suggests_a_runnable_hub_install(cli_runner, tmp_path, monkeypatch, fresh_hub):
    """A catalogued model whose plugin is not installed: the CLI's one line names a runnable `hub install`."""
    from hub.cli import cli

    catalogue = tmp_path / "c.yaml"
    catalogue.write_text("models:\n  far-model:\n    task: image-classification\n    plugin: timm-extra\n"
                         "    source: x\n")
    monkeypatch.setenv("HUB_CATALOG", str(catalogue))
    result = cli_runner.invoke(cli, ["info", "far-model"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    commands = suggested_commands(result.output)
    assert commands == ["hub install timm-extra"]
    run = subprocess.run([str(VENV_BIN / "hub"), *shlex.split(commands[0])[1:], "--help"], capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr


def test_no_message_in_the_code_suggests_huggingface_cli():
    """The pinned huggingface_hub installs only `hf`; its old `huggingface-cli` is not there to run."""
    sources = list((ROOT / "hub").rglob("*.py")) + list((ROOT / "plugins").rglob("mmhub_*/*.py"))
    offenders = [str(p) for p in sources if "huggingface-cli" in p.read_text(encoding="utf-8")]
    assert not offenders


def test_shell_command_quotes_each_argument():
    assert shell_command("hub", "install", "my plugin") == "`hub install 'my plugin'`"
    assert shlex.split(shell_command("a", "b;c", "$(x)").strip("`")) == ["a", "b;c", "$(x)"]


# -- availability: where the weights are, found without loading or fetching ---------------------
HASH = "0123456789abcdef0123456789abcdef01234567"


def fake_hub_cache(root: Path, repo: str, revision: str | None) -> None:
    """A Hugging Face cache holding one snapshot of ``repo``, laid out as huggingface_hub lays it."""
    folder = root / ("models--" + repo.replace("/", "--"))
    (folder / "snapshots" / HASH).mkdir(parents=True)
    (folder / "snapshots" / HASH / "config.json").write_text("{}")
    (folder / "refs").mkdir()
    (folder / "refs" / "main").write_text(HASH)


AVAILABILITY = {  # case: (source, local, revision, offline, expected)
    "a directory": ("{dir}", None, None, True, "local"),
    "a local copy first": ("hf-hub:org/absent", "{dir}", None, True, "local"),
    "a package's directory": ("package:hub/serve", None, None, True, "local"),
    "a hub id in the cache": ("hf-hub:org/cached", None, None, True, "local"),
    "a hub id pinned in the cache": ("hf-hub:org/cached", None, HASH, True, "local"),
    "a hub id pinned elsewhere": ("hf-hub:org/cached", None, "f" * 40, True, "missing"),
    "a hub id offline": ("hf-hub:org/absent", None, None, True, "missing"),
    "a hub id online": ("hf-hub:org/absent", None, None, False, "download"),
    "a directory gone": ("{dir}/gone", None, None, False, "missing"),
    "a package not installed": ("package:no_such_package_xyz/model", None, None, False, "missing"),
    "a local copy gone, hub id offline": ("hf-hub:org/absent", "{dir}/gone", None, True, "missing"),
    "a plugin's own source": ("torchvision:ResNet18_Weights.DEFAULT", None, None, True, "unknown"),
}


@pytest.mark.parametrize("case", sorted(AVAILABILITY))
def test_availability_says_where_the_weights_are(case, tmp_path, monkeypatch):
    import huggingface_hub.constants

    from hub.registry import ModelSpec

    source, local, revision, is_offline, want = AVAILABILITY[case]
    cache = tmp_path / "hf-cache"
    fake_hub_cache(cache, "org/cached", None)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1" if is_offline else "0")
    (tmp_path / "weights").mkdir()
    fill = {"dir": str(tmp_path / "weights")}
    spec = ModelSpec(id="m", task="text-embedding", plugin="p", source=source.format(**fill),
                     local=local.format(**fill) if local else None, revision=revision)
    assert weights.availability(spec) == want
    assert not (cache / "models--org--absent").exists()  # nothing fetched, not even a folder made
