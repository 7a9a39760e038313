"""Where a command may write: the one check of every output path the user names.

An output is a regular file or a directory that the hub makes (or fills), never a special file and
never an input of the same command:

- :func:`check_output_file` (``hub run --output``, ``hub pin --file``): the path is new or a regular
  file; a character or block device, a named pipe, a socket, a directory or a symbolic link is
  refused, and so is the path of an input (or another name of the same file);
- :func:`check_output_dir` (``hub finetune --out``, ``hub export --out``, ``hub run --save-dir``, the
  work directory of a batch run): the path is new or a directory (a symbolic link to a directory is
  followed); a special file, a file or a broken link is refused, and so is a directory that is an
  input, holds one or lies inside one.

Both raise :class:`hub.errors.OutputDirError` (exit 2) naming the option, the path, what is there and
what to do; they run before anything is read, moved or written, so a refused command changes nothing.
"""
from __future__ import annotations

import os
import stat
from pathlib import Path

from hub.errors import OutputDirError

_SPECIAL = ((stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
            (stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISSOCK, "a socket"))


def special_kind(mode: int) -> str | None:
    """What a special file of ``mode`` is ("a character device", ...); None for files, directories, links."""
    return next((name for test, name in _SPECIAL if test(mode)), None)


def check_output_file(path, option: str = "--output", inputs=()) -> Path:
    """``path`` when a command may write a regular file there; else OutputDirError.

    ``inputs``: (option, path) pairs of the command's inputs, none of which the output may be."""
    path = Path(path).expanduser()
    _refuse_special(path, option, "a new file name")
    if path.is_symlink():
        raise OutputDirError(f"{option} '{path}' is a symbolic link (to '{os.readlink(path)}'); the hub writes only "
                             "regular files it makes: give the file it points to, or a new file name")
    if path.is_dir():
        raise OutputDirError(f"{option} '{path}' is a directory; give a file name such as {path / 'results.jsonl'}")
    if not path.parent.is_dir():
        raise OutputDirError(f"the directory of {option} '{path}' does not exist; create it first")
    _refuse_inputs(path, option, inputs, directory=False)
    return path


def check_output_dir(path, option: str = "--out", inputs=()) -> Path:
    """``path`` when a command may make or fill a directory there; else OutputDirError.

    ``inputs``: (option, path) pairs of the command's inputs, which the directory may neither be,
    hold, nor lie inside."""
    path = Path(path).expanduser()
    _refuse_special(path, option, "a new directory")
    if path.is_symlink() and not path.exists():
        raise OutputDirError(f"{option} '{path}' is a broken symbolic link (to '{os.readlink(path)}'); remove it "
                             "or give another directory")
    if path.exists() and not path.is_dir():
        raise OutputDirError(f"{option} '{path}' is a file, not a directory; give a new or empty directory")
    _refuse_inputs(path, option, inputs, directory=True)
    return path


def _refuse_special(path: Path, option: str, instead: str) -> None:
    """Refuse a special file at ``path``, or a symbolic link to one."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return  # nothing there (or a broken link, refused by the caller)
    kind = special_kind(mode)
    if kind is None:
        return
    via = f"a symbolic link to {kind} ('{os.path.realpath(path)}')" if path.is_symlink() else kind
    raise OutputDirError(f"{option} '{path}' is {via}, not a regular file or directory; the hub never writes over "
                         f"special files: give {instead}")


def _refuse_inputs(path: Path, option: str, inputs, directory: bool) -> None:
    """Refuse an output that is an input (same path or same file) or, for a directory, holds or lies in one."""
    out = Path(os.path.realpath(path))
    for name, given in inputs:
        if given is None:
            continue
        source = Path(os.path.realpath(Path(given).expanduser()))
        if out == source or _same_file(out, source):
            raise OutputDirError(f"{option} '{path}' is also {name} '{given}', an input of this command; write "
                                 "the output somewhere else")
        if directory and out in source.parents:
            raise OutputDirError(f"{option} '{path}' holds {name} '{given}', an input of this command; choose a "
                                 "directory outside it")
        if directory and source in out.parents:
            raise OutputDirError(f"{option} '{path}' lies inside {name} '{given}', an input of this command; "
                                 "choose a directory outside it")


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False
