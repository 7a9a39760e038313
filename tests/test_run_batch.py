"""hub run --input FILE --output OUT.jsonl: chunks, bad input, kill -9 and resume, shards, worker processes."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hub.batch.plan import parse_line, parse_shard, read_chunks, work_dir
from hub.cli import cli
from hub.errors import HubError, InputError

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE / "plugins"))


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    from tiny_models import save_transformers

    return save_transformers(tmp_path_factory.mktemp("batch") / "bert")


def _texts(path: Path, n: int, blank_every: int = 0) -> Path:
    letters = "abcdefghijklmnopqrstuvwxyz"
    lines = ["" if blank_every and i % blank_every == blank_every - 1 else
             " ".join(letters[(i * 7 + j) % 26] * (1 + (i + j) % 4) for j in range(1 + i % 5)) for i in range(n)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


# -- pieces ----------------------------------------------------------------------------------
def test_shard_spec():
    assert parse_shard(None) == (0, 1) and parse_shard("2/3") == (2, 3) and parse_shard("0/1") == (0, 1)


def test_chunks_hold_their_physical_lines(tmp_path):
    path = tmp_path / "in.txt"
    path.write_bytes(b"a\nb\n\nc\nd\ne\nf")  # no newline at the end
    got = dict(read_chunks(path, 3, [0, 2]))
    assert got == {0: [(1, b"a"), (2, b"b"), (3, b"")], 2: [(7, b"f")]}


@pytest.mark.parametrize("raw, jsonl, expected", [
    (b"a cat", False, "a cat"), (b"   ", False, None), (b'"a cat"', True, "a cat"),
    (b'{"input": "a cat", "id": 3}', True, "a cat"), (b"", True, None),
    (b'{"input": {"question": "Who?", "context": "Ann \xc3\xa9."}}', True,
     '{"question": "Who?", "context": "Ann \u00e9."}')])
def test_line_parsing(raw, jsonl, expected):
    assert parse_line(5, raw, jsonl) == expected


@pytest.mark.parametrize("raw", [b"{not json", b'{"text": "no input field"}', b"3", b"\xff\xfe", b'{"input": 3}'])
def test_unusable_lines_name_their_line(raw):
    with pytest.raises(InputError, match="line 5"):
        parse_line(5, raw, True)


def _two_shards_done(tmp_path):
    """Two shards' plans over one work directory in which every chunk's part is written."""
    from hub.batch.plan import prepare

    src = _texts(tmp_path / "in.txt", 5)
    identity = {"model": "m"}
    plans = [prepare(src, tmp_path / "out.jsonl", identity, chunk_size=2, joining=True) for _ in range(2)]
    for chunk in range(plans[0].chunks):
        lines = range(2 * chunk + 1, min(2 * chunk + 3, 6))
        plans[0].write_part(chunk, [{"line": line, "result": chunk} for line in lines])
    return plans


def test_the_shard_that_merges_second_finds_the_output_complete(tmp_path):
    first, second = _two_shards_done(tmp_path)
    assert first.finish() == 5 and not first.work.exists()
    assert second.finish() == 5  # the work directory is gone: merged by the first
    assert [r["result"] for r in _rows(first.output)] == [0, 0, 1, 1, 2]


def test_a_merge_whose_parts_vanish_under_it_counts_the_other_shards_output(tmp_path):
    first, second = _two_shards_done(tmp_path)
    all_written = second.missing

    def first_merges_meanwhile():  # both saw every chunk written; the first merges before the second reads
        found = all_written()
        first.merge()
        return found

    second.missing = first_merges_meanwhile
    assert second.finish() == 5
    assert [r["result"] for r in _rows(first.output)] == [0, 0, 1, 1, 2]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.txt", "out.jsonl"]  # no temporary file left


# -- bad input: one line, exit 2 -------------------------------------------------------------
BAD = {
    "shard K >= N": (["--shard", "3/2"], "--shard 3/2"),
    "shard 0/0": (["--shard", "0/0"], "--shard 0/0"),
    "shard words": (["--shard", "half"], "must look like K/N"),
    "nproc 0": (["--nproc", "0"], "--nproc"),
    "chunk 0": (["--chunk-size", "0"], "--chunk-size"),
    "output exists": (["@exists"], "exists; pass --overwrite"),
    "input missing": (["@no-input"], "is not a file"),
    "resume and overwrite": (["--resume", "--overwrite"], "pass one of them"),
    "shard and overwrite": (["--shard", "0/2", "--overwrite"], "cannot be used with --shard"),
    "inputs too": (["@inputs"], "cannot be used with --input"),
    "output is a directory": (["@out-dir"], "is a directory"),
    "output's directory missing": (["@out-nowhere"], "does not exist; create it first"),
    "unfinished parts": (["@parts"], "pass --resume to finish it"),
    "parts of another job": (["@other-job"], "made for another job"),
    "input without output": (["@no-output"], "needs both --input FILE and --output OUT.jsonl"),
    "unknown model option": (["-o", "nosuch=1"], "does not take the option 'nosuch'. Valid options: top_k"),
    "bad model option value": (["-o", "top_k=zero"], "option 'top_k' of bert (text-classification) must be"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_batch_arguments_exit_2(case, model, tmp_path, cli_runner):
    extra, message = BAD[case]
    src, out = _texts(tmp_path / "in.txt", 4), tmp_path / "out.jsonl"
    args = ["run", str(model), "--input", str(src), "--output", str(out)]
    if extra == ["@exists"]:
        out.write_text("old\n")
    elif extra == ["@no-input"]:
        args[3] = str(tmp_path / "missing.txt")
    elif extra == ["@inputs"]:
        args.insert(2, "a cat")
    elif extra == ["@out-dir"]:
        out.mkdir()
    elif extra == ["@out-nowhere"]:
        args[5] = str(tmp_path / "nowhere" / "out.jsonl")
    elif extra == ["@parts"]:
        work_dir(out).mkdir()
        (work_dir(out) / "manifest.json").write_text("{}")
    elif extra == ["@no-output"]:
        args = args[:4] + ["--nproc", "2"]
    elif extra == ["@other-job"]:
        work_dir(out).mkdir()
        (work_dir(out) / "manifest.json").write_text(json.dumps({"model": "another-model"}))
        args.append("--resume")
    else:
        args += extra
    res = cli_runner.invoke(cli, args)
    assert res.exit_code == 2, res.output
    assert res.output.startswith("Error: ") and res.output.count("\n") == 1, res.output  # one line
    assert message in res.output and "Traceback" not in res.output
    assert not out.is_file() or out.read_text() == "old\n"
    assert not work_dir(out).exists() or case in ("unfinished parts", "parts of another job")


def test_shard_errors_are_hub_errors():
    for bad in ("3/2", "0/0", "-1/2", "1/", "a/b"):
        with pytest.raises(HubError):
            parse_shard(bad)


# -- runs ------------------------------------------------------------------------------------
def test_the_progress_bar_counts_the_input_lines_left_to_do(model, tmp_path, monkeypatch):
    import tqdm.auto

    from hub.batch.plan import part_path
    from hub.batch.runner import Job, run_batch

    bars = []

    class Bar:
        def __init__(self, total=None, **kwargs):
            self.total, self.count, self.closed = total, 0, False
            bars.append(self)

        def update(self, n=1):
            self.count += n

        def close(self):
            self.closed = True

    monkeypatch.setattr(tqdm.auto, "tqdm", Bar)
    src, out = _texts(tmp_path / "in.txt", 25, blank_every=6), tmp_path / "out.jsonl"
    run_batch(Job(str(model)), src, out, shard="1/3", chunk_size=10)  # chunk 1 (lines 11-20): not counted again
    assert part_path(work_dir(out), 1).is_file()
    done = run_batch(Job(str(model)), src, out, resume=True, chunk_size=10)
    bar = bars[-1]
    assert bar.total == bar.count == 15 and bar.closed  # lines 1-10 and 21-25, blank ones included
    assert done.done_here == 2 and done.rows == len(_rows(out))


def test_a_corrupt_or_missing_image_is_an_error_row_and_the_others_are_run(tmp_path, cli_runner):
    """The batch call fails on the corrupt image; its lines then run one by one, as hub run would."""
    import hub
    from PIL import Image
    from tiny_models import save_timm

    model = save_timm(tmp_path / "timm")
    good = []
    for i, size in enumerate([(40, 30), (30, 40)]):
        good.append(tmp_path / f"good{i}.png")
        Image.new("RGB", size, (200, 10 + 90 * i, 10)).save(good[-1])
    (tmp_path / "bad.png").write_bytes(b"not an image")
    src, out = tmp_path / "in.txt", tmp_path / "out.jsonl"
    src.write_text(f"{good[0]}\n{tmp_path / 'bad.png'}\n{tmp_path / 'missing.png'}\n{good[1]}\n")
    res = cli_runner.invoke(cli, ["run", str(model), "--input", str(src), "--output", str(out), "--dtype", "fp32"])
    assert res.exit_code == 0, res.output
    rows = _rows(out)
    assert [r["line"] for r in rows] == [1, 2, 3, 4]
    assert "is not an image in a format PIL reads" in rows[1]["error"] and "result" not in rows[1]
    assert "does not exist" in rows[2]["error"]
    alone = hub.load(str(model), device="cpu", dtype="fp32", cache=False)
    for row, path in ((rows[0], good[0]), (rows[3], good[1])):
        assert row["result"] == alone(str(path)).to_dict()



def _hub(*args, env=None):
    full = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.Popen([sys.executable, "-m", "hub.cli", "run", *map(str, args)], env=full,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _check_complete(rows: list[dict], src: Path) -> None:
    """One row per non-blank input line, in order, each with a result."""
    lines = src.read_text(encoding="utf-8").splitlines()
    expected = [(i + 1, text) for i, text in enumerate(lines) if text.strip()]
    assert [(r["line"], r["input"]) for r in rows] == expected
    assert all("result" in r and r["result"]["labels"] for r in rows)


@pytest.mark.slow
def test_killed_run_resumes_with_every_row_once(model, tmp_path):
    src = _texts(tmp_path / "in.txt", 6000, blank_every=97)
    whole = _hub(model, "--input", src, "--output", tmp_path / "whole.jsonl", "--chunk-size", "50")
    out = tmp_path / "killed.jsonl"
    victim = _hub(model, "--input", src, "--output", out, "--chunk-size", "50")
    parts, deadline = work_dir(out), time.time() + 120
    while len(list(parts.glob("part-*.jsonl"))) < 3 and victim.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=30)
    assert victim.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    finished = sorted(parts.glob("part-*.jsonl"))
    assert 3 <= len(finished) < 120 and not out.exists()
    again = _hub(model, "--input", src, "--output", out, "--chunk-size", "50")  # no --resume: refused
    assert again.wait(timeout=120) == 2 and "--resume" in again.stderr.read()
    before = {p.name: p.stat().st_mtime_ns for p in finished}
    resumed = _hub(model, "--input", src, "--output", out, "--chunk-size", "50", "--resume")
    assert resumed.wait(timeout=180) == 0, resumed.stderr.read()
    assert whole.wait(timeout=180) == 0, whole.stderr.read()
    rows = _rows(out)
    _check_complete(rows, src)
    assert rows == _rows(tmp_path / "whole.jsonl")
    assert not parts.exists()  # merged and cleaned up
    assert before  # finished chunks were not redone: their files were kept until the merge


@pytest.mark.slow
def test_shards_and_worker_processes_match_a_single_run(model, tmp_path, cli_runner):
    src = _texts(tmp_path / "in.txt", 230, blank_every=11)
    common = ["run", str(model), "--input", str(src), "--chunk-size", "20"]
    res = cli_runner.invoke(cli, [*common, "--output", str(tmp_path / "one.jsonl")])
    assert res.exit_code == 0, res.output
    single = _rows(tmp_path / "one.jsonl")
    _check_complete(single, src)
    sharded = tmp_path / "sharded.jsonl"
    res = cli_runner.invoke(cli, [*common, "--output", str(sharded), "--shard", "1/3"])
    assert res.exit_code == 0 and "not written yet" in res.output and not sharded.exists()
    for k in (2, 0):  # shards join the work directory in any order; the last one merges
        res = cli_runner.invoke(cli, [*common, "--output", str(sharded), "--shard", f"{k}/3"])
        assert res.exit_code == 0, res.output
    assert _rows(sharded) == single
    procs = _hub(model, "--input", src, "--output", tmp_path / "procs.jsonl", "--chunk-size", "20", "--nproc", "2")
    assert procs.wait(timeout=300) == 0, procs.stderr.read()
    assert _rows(tmp_path / "procs.jsonl") == single
    res = cli_runner.invoke(cli, [*common, "--output", str(tmp_path / "one.jsonl"), "--resume"])
    assert res.exit_code == 0 and "already complete" in res.output
