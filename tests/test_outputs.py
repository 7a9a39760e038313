"""Outputs are regular files or directories the hub makes: never a special file, never an input of the command.

Every command that writes where the user says (``hub run --output`` and ``--save-dir``, ``hub finetune
--out``, ``hub export --out``, ``hub pin --file``) is driven through the CLI at every kind of special
file, a link to one, and the wrong kind of path; then at its own inputs. Each must exit 2 with one line
and leave the node, and everything beside it, exactly as it was.
"""
from __future__ import annotations

import os
import socket
import stat
import sys
from pathlib import Path

import pytest

from hub.cli import cli

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE / "plugins"))

ROOT = os.geteuid() == 0


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    from tiny_models import save_transformers

    return save_transformers(tmp_path_factory.mktemp("outputs") / "bert")


def _char_device(path: Path) -> None:
    os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # a second /dev/null


def _block_device(path: Path) -> None:
    os.mknod(path, stat.S_IFBLK | 0o600, os.makedev(7, 200))  # a loop device number nothing uses


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _socket(path: Path) -> None:
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(path))
    sock.close()


def _link_to(make):
    def link(path: Path) -> None:
        target = path.with_name("target-" + path.name)
        make(target)
        path.symlink_to(target)
    return link


def _link_to_dev_null(path: Path) -> None:
    path.symlink_to("/dev/null")


def _directory(path: Path) -> None:
    path.mkdir()


def _regular_file(path: Path) -> None:
    path.write_text("keep me\n")


def _broken_link(path: Path) -> None:
    path.symlink_to(path.with_name("nowhere"))


SPECIAL = {
    "character device": _char_device, "block device": _block_device, "named pipe": _fifo, "socket": _socket,
    "link to /dev/null": _link_to_dev_null, "link to a named pipe": _link_to(_fifo),
    "link to a socket": _link_to(_socket), "link to a block device": _link_to(_block_device),
    "link to a character device": _link_to(_char_device),
}
NOT_A_FILE = {"directory": _directory, "link to a regular file": _link_to(_regular_file), "broken link": _broken_link}
NOT_A_DIRECTORY = {"regular file": _regular_file, "broken link": _broken_link, "link to a regular file":
                   _link_to(_regular_file)}

# the commands that write a file, and those that write a directory: args with {out} for the path
FILE_COMMANDS = {
    "run --output": ["run", "{model}", "--input", "{input}", "--output", "{out}"],
    "run --output --overwrite": ["run", "{model}", "--input", "{input}", "--output", "{out}", "--overwrite"],
    "run --output --resume": ["run", "{model}", "--input", "{input}", "--output", "{out}", "--resume"],
    "run --output --shard": ["run", "{model}", "--input", "{input}", "--output", "{out}", "--shard", "0/2"],
    "pin --file": ["pin", "--file", "{out}"],
}
DIR_COMMANDS = {
    "run --save-dir": ["run", "mms-tts-eng", "hello", "--save-dir", "{out}"],
    "finetune --out": ["finetune", "{model}", "--data", "{data}", "--out", "{out}"],
    "finetune --out --overwrite": ["finetune", "{model}", "--data", "{data}", "--out", "{out}", "--overwrite"],
    "finetune --out --resume": ["finetune", "{model}", "--data", "{data}", "--out", "{out}", "--resume"],
    "export --out": ["export", "{model}", "--format", "onnx", "--out", "{out}"],
}


def _snapshot(root: Path) -> dict:
    """Every entry under ``root`` (links not followed): its type, inode, device number, size and content."""
    found = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder) / name
            st = os.lstat(path)
            content = path.read_bytes() if stat.S_ISREG(st.st_mode) else None
            found[str(path.relative_to(root))] = (stat.S_IFMT(st.st_mode), st.st_ino, st.st_rdev, content)
    return found


def _refused(runner, args: list[str], out: Path, where: Path, model: Path, **fill) -> str:
    inputs = where / "inputs"
    inputs.mkdir(exist_ok=True)
    (inputs / "in.txt").write_text("a cat\nb dog\n")
    (inputs / "data.csv").write_text("text,label\na cat,yes\nb dog,no\nc eel,yes\nd fox,no\n")
    values = {"model": str(model), "input": str(inputs / "in.txt"), "data": str(inputs / "data.csv"),
              "out": str(out), **fill}
    dev_null = os.stat("/dev/null")
    before = _snapshot(where)
    res = runner.invoke(cli, [a.format(**values) for a in args])
    assert res.exit_code == 2, res.output
    assert res.output.startswith("Error: ") and res.output.count("\n") == 1 and "Traceback" not in res.output, \
        res.output
    assert _snapshot(where) == before  # nothing replaced, moved, made or left behind
    after = os.stat("/dev/null")
    assert stat.S_ISCHR(after.st_mode) and (after.st_ino, after.st_rdev) == (dev_null.st_ino, dev_null.st_rdev)
    return res.output


def _cases(kinds: dict, commands: dict):
    return [pytest.param(kind, command, id=f"{command}-{kind}") for command in sorted(commands)
            for kind in sorted(kinds)]


def _needs_root(kind: str) -> None:
    if ("device" in kind) and not ROOT:
        pytest.skip("making a device node needs root")


@pytest.mark.parametrize("kind, command", _cases(SPECIAL, FILE_COMMANDS) + _cases(SPECIAL, DIR_COMMANDS))
def test_a_special_file_is_never_an_output(kind, command, model, tmp_path, cli_runner):
    _needs_root(kind)
    out = tmp_path / "out"
    SPECIAL[kind](out)
    message = _refused(cli_runner, {**FILE_COMMANDS, **DIR_COMMANDS}[command], out, tmp_path, model)
    assert "special files" in message or "symbolic link" in message, message


@pytest.mark.parametrize("kind, command", _cases(NOT_A_FILE, FILE_COMMANDS))
def test_a_file_output_must_be_a_regular_file(kind, command, model, tmp_path, cli_runner):
    out = tmp_path / "out.jsonl"
    NOT_A_FILE[kind](out)
    _refused(cli_runner, FILE_COMMANDS[command], out, tmp_path, model)


@pytest.mark.parametrize("kind, command", _cases(NOT_A_DIRECTORY, DIR_COMMANDS))
def test_a_directory_output_must_be_a_directory(kind, command, model, tmp_path, cli_runner):
    out = tmp_path / "out"
    NOT_A_DIRECTORY[kind](out)
    _refused(cli_runner, DIR_COMMANDS[command], out, tmp_path, model)


def _image_folder(root: Path) -> Path:
    from PIL import Image

    for label in ("cat", "dog"):
        (root / label).mkdir(parents=True)
        for i in range(2):
            Image.new("RGB", (8, 8), (40 * i, 80, 120)).save(root / label / f"{i}.png")
    return root


# an output that is, holds or lies inside an input of the same command: (args, out, set-up, the input named)
def _same_input(where: Path):
    inputs, data = where / "inputs", where / "inputs" / "data.csv"
    folder = where / "images"
    return {
        "run --output is --input": (FILE_COMMANDS["run --output --overwrite"], inputs / "in.txt", None, "--input"),
        "run --output is --input (resume)": (FILE_COMMANDS["run --output --resume"], inputs / "in.txt", None,
                                             "--input"),
        "run --output is a hard link to --input": (FILE_COMMANDS["run --output --overwrite"], where / "link.txt",
                                                   lambda: os.link(inputs / "in.txt", where / "link.txt"), "--input"),
        "finetune --out holds --data": (DIR_COMMANDS["finetune --out --overwrite"], inputs, None, "--data"),
        "finetune --out holds --data (resume)": (DIR_COMMANDS["finetune --out --resume"], inputs, None, "--data"),
        "finetune --out is --data": (["finetune", "{model}", "--data", str(folder), "--out", str(folder),
                                      "--overwrite"], folder, lambda: _image_folder(folder), "--data"),
        "finetune --out inside --data": (["finetune", "{model}", "--data", str(folder), "--out",
                                          str(folder / "cat" / "run"), "--overwrite"], folder / "cat" / "run",
                                         lambda: _image_folder(folder), "--data"),
        "finetune --out is --val": (["finetune", "{model}", "--data", str(data), "--val", str(folder), "--out",
                                     str(folder)], folder, lambda: _image_folder(folder), "--val"),
        "export --out holds --calibration": (["export", "{model}", "--format", "onnx", "--calibration",
                                              str(inputs / "in.txt"), "--out", str(inputs)], inputs, None,
                                             "--calibration"),
        "export --out inside --calibration": (["export", "{model}", "--format", "onnx", "--calibration",
                                               str(folder), "--out", str(folder / "new")], folder / "new",
                                              lambda: _image_folder(folder), "--calibration"),
    }


@pytest.mark.parametrize("case", sorted(_same_input(Path("."))))
def test_an_output_is_never_an_input_of_the_same_command(case, model, tmp_path, cli_runner):
    (tmp_path / "inputs").mkdir()
    (tmp_path / "inputs" / "in.txt").write_text("a cat\nb dog\n")
    args, out, setup, named = _same_input(tmp_path)[case]
    if setup is not None:
        setup()
    message = _refused(cli_runner, args, out, tmp_path, model)
    assert named in message and "input of this command" in message, message


WORK_DIR = {"named pipe": _fifo, "character device": _char_device, "link to /dev/null": _link_to_dev_null,
            "regular file": _regular_file, "link to a directory elsewhere": None}


@pytest.mark.parametrize("flag", ["--resume", "--overwrite", None])
@pytest.mark.parametrize("kind", sorted(WORK_DIR))
def test_the_work_directory_of_a_batch_run_is_never_a_special_file_or_a_link(kind, flag, model, tmp_path, cli_runner):
    _needs_root(kind)
    out = tmp_path / "out.jsonl"
    parts = tmp_path / "out.jsonl.parts"
    if WORK_DIR[kind] is None:
        (tmp_path / "elsewhere").mkdir()
        (tmp_path / "elsewhere" / "keep.txt").write_text("keep me\n")
        parts.symlink_to(tmp_path / "elsewhere")
    else:
        WORK_DIR[kind](parts)
    args = FILE_COMMANDS["run --output"] + ([flag] if flag else [])
    message = _refused(cli_runner, args, out, tmp_path, model)
    assert "work directory of --output" in message, message
