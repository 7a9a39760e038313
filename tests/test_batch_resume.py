"""hub run --resume trusts nothing it finds: hostile part files, corrupt manifests, changed inputs, empty inputs.

Every case goes through the real CLI: the parts of an unfinished run (two shards of three done) are
copied into a fresh work directory, damaged one way, and ``--resume`` must redo what does not verify,
say so in a line, and produce exactly the output of an undamaged run.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import sys
from pathlib import Path

import pytest

from hub.batch.parts import encode_part
from hub.batch.plan import MANIFEST, part_path, work_dir
from hub.cli import cli

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE / "plugins"))
pytestmark = [pytest.mark.usefixtures("one_torch_thread"), pytest.mark.slow]  # slow: trains tiny models

LINES = ["a cat", "bb dd", "", "eee f", "gg hh ii", "jjj", "k l m"]  # chunks of 3: lines 1-3, 4-6, 7
CHUNK = "3"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """(model, input, pristine work directory with chunks 0 and 1 done, rows of an undamaged run)."""
    from click.testing import CliRunner
    from tiny_models import save_transformers

    root = tmp_path_factory.mktemp("resume")
    model = save_transformers(root / "bert")
    src = root / "in.txt"
    src.write_text("\n".join(LINES) + "\n", encoding="utf-8")
    runner = CliRunner()
    whole = root / "whole.jsonl"
    res = runner.invoke(cli, _args(model, src, whole))
    assert res.exit_code == 0, res.output
    unfinished = root / "unfinished.jsonl"
    for shard in ("0/3", "1/3"):
        res = runner.invoke(cli, [*_args(model, src, unfinished), "--shard", shard])
        assert res.exit_code == 0 and "not written yet" in res.output, res.output
    return model, src, work_dir(unfinished), _rows(whole)


def _args(model, src, out):
    return ["run", str(model), "--input", str(src), "--output", str(out), "--chunk-size", CHUNK]


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _header_and_rows(part: Path) -> tuple[dict, list[dict]]:
    head, *rows = part.read_text(encoding="utf-8").splitlines()
    return json.loads(head), [json.loads(r) for r in rows]


def _reencoded(part: Path, edit) -> bytes:
    """The part rebuilt with a valid header around ``edit(header, rows)`` -> (chunk, job, rows)."""
    header, rows = _header_and_rows(part)
    chunk, job, rows = edit(header, rows)
    return encode_part(chunk, job, rows)


def _fifo(path: Path) -> None:
    path.unlink()
    os.mkfifo(path)


def _socket(path: Path) -> None:
    path.unlink()
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(path))
    sock.close()


def _directory(path: Path) -> None:
    path.unlink()
    path.mkdir()
    (path / "x").write_text("x")


def _symlink_to_other(path: Path) -> None:
    path.unlink()
    path.symlink_to(part_path(path.parent, 0).name)


def _swap(path: Path) -> None:
    other = part_path(path.parent, 0)
    a, b = path.read_bytes(), other.read_bytes()
    path.write_bytes(b)
    other.write_bytes(a)


# each damages part 1 (input lines 4-6) of an unfinished run; bytes, or a function of the part's path
HOSTILE = {
    "empty": b"",
    "garbage bytes": bytes(range(256)) * 3,
    "NUL bytes": b"\x00" * 4096,
    "not UTF-8": b"\xff\xfe\xfd\n\xc3\x28\n",
    "one newline": b"\n",
    "rows without a header": lambda p: p.write_bytes(p.read_bytes().partition(b"\n")[2]),
    "truncated last line": lambda p: p.write_bytes(p.read_bytes()[:-7]),
    "last newline cut": lambda p: p.write_bytes(p.read_bytes()[:-1]),
    "bytes appended": lambda p: p.write_bytes(p.read_bytes() + b'{"line": 6, "result": 1}\n'),
    "NUL inside a row": lambda p: p.write_bytes(p.read_bytes()[:-3] + b"\x00\x00\n"),
    "header only": lambda p: p.write_bytes(p.read_bytes().partition(b"\n")[0] + b"\n"),
    "header not JSON": lambda p: p.write_bytes(b"{mmhub_part" + p.read_bytes()),
    "result edited": lambda p: p.write_bytes(p.read_bytes().replace(b'"labels"', b'"labelz"', 1)),
    "valid header, a row short": lambda p: p.write_bytes(_reencoded(p, lambda h, r: (h["chunk"], h["job"], r[:-1]))),
    "valid header, a row extra": lambda p: p.write_bytes(
        _reencoded(p, lambda h, r: (h["chunk"], h["job"], r + [{**r[-1], "line": 6}]))),
    "valid header, lines of another chunk": lambda p: p.write_bytes(
        _reencoded(p, lambda h, r: (h["chunk"], h["job"], [{**row, "line": row["line"] - 3} for row in r]))),
    "valid header, rows out of order": lambda p: p.write_bytes(
        _reencoded(p, lambda h, r: (h["chunk"], h["job"], r[::-1]))),
    "valid header, rows not objects": lambda p: p.write_bytes(
        _reencoded(p, lambda h, r: (h["chunk"], h["job"], [[row["line"]] for row in r]))),
    "header of another chunk": lambda p: p.write_bytes(_reencoded(p, lambda h, r: (0, h["job"], r))),
    "header of another job": lambda p: p.write_bytes(_reencoded(p, lambda h, r: (h["chunk"], "0" * 64, r))),
    "parts swapped": _swap,
    "a directory": _directory,
    "a named pipe": _fifo,
    "a socket": _socket,
    "a symbolic link to another part": _symlink_to_other,
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_part_is_redone_and_the_output_is_exact(case, run, tmp_path, cli_runner):
    model, src, pristine, expected = run
    out = tmp_path / "out.jsonl"
    shutil.copytree(pristine, work_dir(out))
    damage = HOSTILE[case]
    target = part_path(work_dir(out), 1)
    damage(target) if callable(damage) else target.write_bytes(damage)
    res = cli_runner.invoke(cli, [*_args(model, src, out), "--resume"])
    assert res.exit_code == 0, res.output
    assert "do not verify" in res.output and "part-000001.jsonl" in res.output, res.output
    assert _rows(out) == expected
    assert not work_dir(out).exists()


MANIFESTS = {
    "deleted": None, "empty": b"", "empty object": b"{}", "a list": b"[1, 2]", "null": b"null",
    "garbage": b"\x00\xff\x13garbage", "truncated": b'{"input": "/x", "model', "not UTF-8": b'{"input": "\xff"}',
}


MANIFEST_NODES = {"a named pipe": os.mkfifo, "a directory": os.mkdir,
                  "a link to /dev/null": lambda path: os.symlink("/dev/null", path)}


@pytest.mark.parametrize("case", sorted(MANIFESTS) + sorted(MANIFEST_NODES))
def test_a_corrupt_manifest_is_rewritten_and_verified_parts_are_kept(case, run, tmp_path, cli_runner):
    model, src, pristine, expected = run
    out = tmp_path / "out.jsonl"
    shutil.copytree(pristine, work_dir(out))
    manifest = work_dir(out) / MANIFEST
    manifest.unlink()
    if case in MANIFEST_NODES:
        MANIFEST_NODES[case](manifest)
    elif MANIFESTS[case] is not None:
        manifest.write_bytes(MANIFESTS[case])
    res = cli_runner.invoke(cli, [*_args(model, src, out), "--resume"])
    assert res.exit_code == 0, res.output
    assert "written anew" in res.output and "do not verify" not in res.output, res.output  # the parts verified
    assert _rows(out) == expected


def _change_content(src: Path) -> None:
    src.write_text(src.read_text().replace("a cat", "a dog"))


def _append(src: Path) -> None:
    with open(src, "a") as fh:
        fh.write("zz top\n")


def _touch(src: Path) -> None:
    st = src.stat()
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))


def _same_size_and_time(src: Path) -> None:
    st = src.stat()
    src.write_text(src.read_text().replace("bb dd", "bb de"))
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns))


CHANGES = {"content": _change_content, "a line appended": _append, "time only": _touch,
           "same size and time, other bytes": _same_size_and_time}


@pytest.mark.parametrize("manifest", ["kept", "emptied"])
@pytest.mark.parametrize("change", sorted(CHANGES))
def test_a_changed_input_redoes_every_part(change, manifest, run, tmp_path, cli_runner):
    model = run[0]
    src, out = tmp_path / "in.txt", tmp_path / "out.jsonl"
    src.write_text("\n".join(LINES) + "\n", encoding="utf-8")
    for shard in ("0/3", "1/3"):
        assert cli_runner.invoke(cli, [*_args(model, src, out), "--shard", shard]).exit_code == 0
    CHANGES[change](src)
    if manifest == "emptied":
        (work_dir(out) / MANIFEST).write_text("")
    res = cli_runner.invoke(cli, [*_args(model, src, out), "--resume"])
    assert res.exit_code == 0, res.output
    assert "do not verify" in res.output and "part-000000.jsonl" in res.output and "part-000001.jsonl" in res.output
    fresh = tmp_path / "fresh.jsonl"
    assert cli_runner.invoke(cli, _args(model, src, fresh)).exit_code == 0
    assert _rows(out) == _rows(fresh)
    assert [r["input"] for r in _rows(out)] == [line for line in src.read_text().splitlines() if line.strip()]


@pytest.mark.parametrize("content", [b"", b"\n", b"\n\n\n", b"   \n\t\n", b"\xef\xbb\xbf\n", b"\xef\xbb\xbf", b"\r\n\r\n"])
def test_an_input_without_inputs_is_refused(content, run, tmp_path, cli_runner):
    src, out = tmp_path / "in.txt", tmp_path / "out.jsonl"
    src.write_bytes(content)
    res = cli_runner.invoke(cli, _args(run[0], src, out))
    assert res.exit_code == 2, res.output
    assert res.output.startswith("Error: ") and "holds no inputs" in res.output and res.output.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.txt"]  # nothing written


@pytest.mark.parametrize("rows", [0, 1, 5, 7])
def test_a_finished_output_that_does_not_match_the_input_is_refused_on_resume(rows, run, tmp_path, cli_runner):
    model, src, _, expected = run
    out = tmp_path / "out.jsonl"
    out.write_text("".join(json.dumps(r) + "\n" for r in (expected * 2)[:rows]))
    res = cli_runner.invoke(cli, [*_args(model, src, out), "--resume"])
    assert res.exit_code == 2 and "pass --overwrite to redo it" in res.output, res.output
    assert len(out.read_text().splitlines()) == rows  # left as it was


def test_a_finished_output_is_left_alone_on_resume(run, tmp_path, cli_runner):
    model, src, _, expected = run
    out = tmp_path / "out.jsonl"
    out.write_text("".join(json.dumps(r) + "\n" for r in expected))
    res = cli_runner.invoke(cli, [*_args(model, src, out), "--resume"])
    assert res.exit_code == 0 and "already complete" in res.output, res.output


def test_the_merge_verifies_each_part_again(run, tmp_path):
    """A part damaged after the resume checked it (another shard, a disk) stops the merge; OUT is not written."""
    from hub.batch.plan import prepare

    model, src, pristine, _ = run
    out = tmp_path / "out.jsonl"
    shutil.copytree(pristine, work_dir(out))
    identity = json.loads((pristine / MANIFEST).read_text())
    plan = prepare(src, out, identity, chunk_size=int(CHUNK), resume=True)
    assert plan.verify() == 0
    plan.write_part(2, [{"line": 7, "input": "k l m", "result": {}}])
    part_path(plan.work, 1).write_bytes(b"\x00" * 10)
    with pytest.raises(Exception, match="part-000001.jsonl' does not verify.*rerun with --resume"):
        plan.finish()
    assert not out.exists() and not part_path(plan.work, 1).exists() and part_path(plan.work, 0).exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left
