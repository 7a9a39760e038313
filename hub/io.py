"""The one way the hub writes files: each file and each model directory appears complete or not at all.

- :func:`atomic_write_bytes`, :func:`atomic_write_text`, :func:`atomic_write_json`: the data goes
  to a temporary file in the target's directory, which is fsynced, renamed over the target
  (``os.replace``), and the directory fsynced.
- :func:`atomic_path`: the same for a library that writes a file itself (safetensors, matplotlib):
  it yields the temporary path to write to.
- :func:`atomic_directory`: a directory built beside the target and renamed into place. An existing
  target is swapped for the new one in one step (``renameat2(RENAME_EXCHANGE)`` on Linux; two
  renames elsewhere); with ``carry_over`` the entries of the old directory that the new one lacks
  are kept (hard links, else copies), so nothing but the replaced entries goes away. Open files
  keep working (same inodes); a process whose working directory was inside the old directory is
  left in the removed copy (this one is moved into the new directory; a shell needs ``cd .``).
- :func:`append_line`: one record of a log such as ``metrics.jsonl``, fsynced; a failed append is
  cut back, so the file never ends in half a line written by this process.

A file is never written over a character or block device, a FIFO or a socket (nor through a link
to one): that is a :class:`hub.errors.WriteError`, and the node is left as it was. Commands check
their output paths before they start (:mod:`hub.outputs`); this is the last guard for every file
written inside them.

Temporary files and directories are named ``.<name>.<8 hex digits>.tmp`` beside the target. A
write that fails because the disk is full, the file system is read-only or permission is denied
raises :class:`hub.errors.WriteError` naming the path, the free space and the space needed; the
previous file or directory is left as it was, and the temporary one is removed.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import secrets
import shutil
import stat
import sys
from pathlib import Path

from hub.errors import WriteError

TEMP_SUFFIX = ".tmp"
DISK_FULL = frozenset({errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)})
NOT_WRITABLE = {errno.EROFS: "the file system is read-only", errno.EACCES: "permission denied",
                errno.EPERM: "the operation is not permitted"}
WRITE_ERRNOS = DISK_FULL | set(NOT_WRITABLE) | {errno.EIO, errno.EFBIG}
_OS_ERROR = re.compile(r"os error (\d+)")  # how Rust libraries (safetensors, tokenizers) report errno
_ALMOST_FULL = 1 << 20


def atomic_write_bytes(target, data: bytes) -> Path:
    """Write ``data`` to ``target`` atomically; returns the target."""
    target = Path(target)
    with atomic_path(target, needed=len(data)) as tmp:
        fd = os.open(tmp, os.O_WRONLY | os.O_TRUNC)
        try:
            _write_all(fd, data)
        finally:
            os.close(fd)
    return target


def atomic_write_text(target, text: str, encoding: str = "utf-8") -> Path:
    return atomic_write_bytes(target, text.encode(encoding))


def atomic_write_json(target, data, indent: int | None = 2) -> Path:
    return atomic_write_text(target, json.dumps(data, indent=indent, ensure_ascii=False) + "\n")


@contextlib.contextmanager
def atomic_path(target, needed: int | None = None):
    """Yield a temporary path beside ``target``; on success it is fsynced and renamed over ``target``."""
    target = Path(target)
    _refuse_special(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = _create_temp_file(target)
    except OSError as exc:
        raise _translated(exc, target, needed) from exc
    try:
        yield tmp
        _commit_file(tmp, target)
    except BaseException as exc:
        size = _size(tmp)
        remove_path(tmp)
        error = write_error(exc, target, needed or size)
        if error is not None:
            raise error from exc
        raise
    fsync_dir(target.parent)


@contextlib.contextmanager
def atomic_directory(target, carry_over: bool = False):
    """Yield a new directory beside ``target``; on success it replaces ``target`` in one rename.

    With ``carry_over`` the entries of an existing ``target`` that the new directory lacks are
    kept in it (hard-linked, or copied where links are not possible).
    """
    target = Path(os.path.realpath(Path(target)))
    if target.exists() and not target.is_dir():
        raise WriteError(f"cannot write the directory '{target}': a file of that name is in the way")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        stage = temp_name(target)
        os.mkdir(stage)
        if target.is_dir():
            os.chmod(stage, stat.S_IMODE(target.stat().st_mode))
    except OSError as exc:
        raise _translated(exc, target, None) from exc
    leftover = stage  # the directory to remove at the end: the new one on failure, the old one on success
    try:
        yield stage
        leftover = _commit_directory(stage, target, carry_over)
    except BaseException as exc:
        size = _tree_size(stage) if leftover == stage else None
        remove_path(leftover)
        error = write_error(exc, target, size)
        if error is not None:
            raise error from exc
        raise
    remove_path(leftover)


def _refuse_special(target: Path) -> None:
    """Never replace a device, FIFO or socket (or a link to one) with a file: the caller named the wrong path."""
    from hub.outputs import special_kind

    try:
        kind = special_kind(os.stat(target).st_mode)
    except (OSError, ValueError):
        return
    if kind is not None:
        raise WriteError(f"cannot write '{target}': it is {kind}, not a regular file, and the hub never writes over "
                         "special files; choose another path")


def append_line(path, line: str) -> None:
    """Append ``line`` (one record) to ``path`` and fsync; a failed append leaves the file as it was."""
    path = Path(path)
    data = (line.rstrip("\n") + "\n").encode("utf-8")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    except OSError as exc:
        raise _translated(exc, path, len(data)) from exc
    try:
        size = os.fstat(fd).st_size
        try:
            _write_all(fd, data)
            os.fsync(fd)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, size)
            raise _translated(exc, path, len(data)) from exc
    finally:
        os.close(fd)


def temp_name(target: Path, suffix: str = TEMP_SUFFIX) -> Path:
    """A fresh hidden name beside ``target``: ``.<name>.<8 hex digits><suffix>``."""
    return target.parent / f".{target.name}.{secrets.token_hex(4)}{suffix}"


def is_temp_name(name: str, of: str | None = None) -> bool:
    """Whether ``name`` is a temporary name made by :func:`temp_name` (for ``of``, when given)."""
    stem = re.escape(of) if of is not None else r".+"
    return re.fullmatch(rf"\.{stem}\.[0-9a-f]{{8}}\.(tmp|old)", name) is not None


# -- durability ---------------------------------------------------------------------------------
def fsync_path(path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path) -> None:
    """Make renames in directory ``path`` durable; a file system that cannot is skipped quietly."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def fsync_tree(root) -> None:
    """fsync every file, then every directory (deepest first), under ``root``."""
    for folder, dirs, files in os.walk(root, topdown=False):
        for name in files:
            if not os.path.islink(os.path.join(folder, name)):
                fsync_path(os.path.join(folder, name))
        fsync_dir(folder)


# -- errors -------------------------------------------------------------------------------------
def write_error(exc: BaseException, path, needed: int | None = None) -> WriteError | None:
    """The WriteError for a failed write of ``path``, or None when ``exc`` is not a write failure."""
    if isinstance(exc, WriteError):
        return exc
    if not isinstance(exc, Exception):
        return None  # KeyboardInterrupt, SystemExit: not the disk's fault
    code = _errno_of(exc)
    if code is None and not isinstance(exc, OSError) and _free_bytes(path) < _ALMOST_FULL:
        code = errno.ENOSPC  # a library that hides errno (torch's stream writer) on a full disk
    if code not in WRITE_ERRNOS:
        return None  # e.g. a file the writer reads is missing: not a failure to write
    return _translated(OSError(code, os.strerror(code)), path, needed)


def _translated(exc: OSError, path, needed: int | None) -> WriteError:
    path = Path(path)
    code = exc.errno
    if code in DISK_FULL:
        need = f", about {human_bytes(needed)} needed" if needed else ""
        return WriteError(f"cannot write '{path}': no space left on its disk ({human_bytes(_free_bytes(path))} free"
                          f"{need}). Free some space or write somewhere else")
    if code in NOT_WRITABLE:
        return WriteError(f"cannot write '{path}': {NOT_WRITABLE[code]}. Choose a directory you can write to")
    reason = exc.strerror or str(exc)
    return WriteError(f"cannot write '{path}': {reason} (errno {code}). Check the path and the disk")


def _errno_of(exc: BaseException) -> int | None:
    """The errno behind ``exc``: its own, a wrapped OSError's, or one named in a library's message."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno:
            return exc.errno
        found = _OS_ERROR.search(str(exc))
        if found:
            return int(found.group(1))
        exc = exc.__cause__ or exc.__context__
    return None


def _free_bytes(path) -> int:
    path = Path(path)
    for candidate in (path, *path.parents):
        with contextlib.suppress(OSError):
            return shutil.disk_usage(candidate).free
    return 0


def free_bytes(path) -> int:
    """Free space on the file system that holds ``path`` (or its nearest existing parent)."""
    return _free_bytes(path)


def human_bytes(n: int | None) -> str:
    value = float(n or 0)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"


# -- helpers ------------------------------------------------------------------------------------
def _commit_file(tmp: Path, target: Path) -> None:
    try:
        fsync_path(tmp)
        os.replace(tmp, target)
    except OSError as exc:
        raise _translated(exc, target, _size(tmp)) from exc


def _commit_directory(stage: Path, target: Path, carry_over: bool) -> Path:
    """fsync ``stage`` and put it at ``target``; returns the path left to remove (the old directory)."""
    try:
        fsync_tree(stage)
        if not target.is_dir():
            os.rename(stage, target)
            fsync_dir(target.parent)
            return stage  # gone: nothing to remove
        if carry_over:
            _carry_over(target, stage)
        inside = _cwd_inside(target)
        old = _swap(stage, target)
        fsync_dir(target.parent)
        if inside is not None:  # this process worked inside the old directory: move it into the new one
            os.chdir(target / inside if (target / inside).is_dir() else target)
        return old
    except OSError as exc:
        raise _translated(exc, target, _tree_size(stage)) from exc


def _create_temp_file(target: Path) -> Path:
    """An empty temporary file beside ``target`` with the target's mode (new files: 0666 less umask)."""
    mode = stat.S_IMODE(target.stat().st_mode) if target.is_file() else None
    while True:
        tmp = temp_name(target)
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        try:
            if mode is not None:
                os.fchmod(fd, mode)
        except OSError:
            remove_path(tmp)
            raise
        finally:
            os.close(fd)
        return tmp


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _cwd_inside(directory: Path) -> str | None:
    """The working directory relative to ``directory`` when it lies inside it, else None."""
    try:
        cwd = os.path.realpath(os.getcwd())
    except OSError:
        return None
    rel = os.path.relpath(cwd, directory)
    return None if rel == ".." or rel.startswith(".." + os.sep) else rel


def _swap(stage: Path, target: Path) -> Path:
    """Put ``stage`` at ``target``; returns the path that now holds the old directory."""
    if _exchange(stage, target):
        return stage
    aside = temp_name(target, ".old")
    os.rename(target, aside)
    try:
        os.rename(stage, target)
    except BaseException:
        os.rename(aside, target)
        raise
    return aside


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux ``renameat2``); False where the system cannot."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, getattr(errno, "ENOTSUP", errno.EINVAL)):
        return False
    raise OSError(code, os.strerror(code), str(b))


def _carry_over(old: Path, new: Path) -> None:
    """Link (else copy) the entries of ``old`` that ``new`` lacks into ``new``."""
    for entry in os.scandir(old):
        if os.path.lexists(new / entry.name) or is_temp_name(entry.name):
            continue
        _link_tree(Path(entry.path), new / entry.name)


def _link_tree(src: Path, dst: Path) -> None:
    if src.is_symlink():
        os.symlink(os.readlink(src), dst)
    elif src.is_dir():
        os.mkdir(dst)
        shutil.copystat(src, dst)
        for entry in os.scandir(src):
            _link_tree(Path(entry.path), dst / entry.name)
    else:
        try:
            os.link(src, dst)
        except OSError as exc:
            if exc.errno in DISK_FULL:
                raise
            shutil.copy2(src, dst)
            fsync_path(dst)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _tree_size(root: Path) -> int:
    total = 0
    for folder, _, files in os.walk(root):
        total += sum(_size(Path(folder) / name) for name in files)
    return total


def remove_path(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            path.unlink()
