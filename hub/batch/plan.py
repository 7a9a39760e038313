"""The files of a batch run: shards, chunks of input lines, the work directory, its manifest, the merge.

Chunk ``c`` holds the input file's physical lines ``c*size+1 .. (c+1)*size``; shard ``K/N`` does
the chunks ``c`` with ``c % N == K``. The work directory ``OUT.parts/`` holds ``manifest.json``
(what the parts were made from: the input file, its size and time, the model, task, options and
chunk size) and one ``part-<c>.jsonl`` per finished chunk, each written atomically, so a part
that exists is complete. A run on the same work directory with another input, model or options is
refused, since mixing their results would be wrong.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from hub.errors import HubError, InputError, OutputDirError
from hub.inputs import structured_text
from hub.io import atomic_path, atomic_write_json, atomic_write_text, remove_path

CHUNK = 1000  # input lines per part file
MANIFEST = "manifest.json"
JSONL_SUFFIXES = (".jsonl", ".ndjson")


def parse_shard(text: str | None) -> tuple[int, int]:
    """``"K/N"`` as (K, N) with 0 <= K < N; None is the whole input (0, 1)."""
    if text is None:
        return 0, 1
    k, sep, n = str(text).partition("/")
    if not sep or not k.strip().isdigit() or not n.strip().isdigit():
        raise HubError(f"--shard {text!r} must look like K/N (this process does shard K of N, counting from 0), "
                       "e.g. --shard 0/4")
    k, n = int(k), int(n)
    if n < 1 or k >= n:
        raise HubError(f"--shard {text}: K must be from 0 to N-1 and N at least 1 (e.g. --shard 0/{max(n, 2)})")
    return k, n


def work_dir(output: Path) -> Path:
    return output.with_name(output.name + ".parts")


def part_path(work: Path, chunk: int) -> Path:
    return work / f"part-{chunk:06d}.jsonl"


@dataclass
class Plan:
    """One batch run's files and chunks."""

    input: Path
    output: Path
    work: Path
    chunk_size: int
    lines: int  # physical lines in the input

    @property
    def chunks(self) -> int:
        return max(1, -(-self.lines // self.chunk_size))

    def done(self, chunk: int) -> bool:
        return part_path(self.work, chunk).is_file()

    def todo(self, k: int, n: int) -> list[int]:
        """Shard K/N's chunks that have no part yet."""
        return [c for c in range(self.chunks) if c % n == k and not self.done(c)]

    def chunk_lines(self, chunk: int) -> int:
        return max(0, min(self.chunk_size, self.lines - chunk * self.chunk_size))

    def missing(self) -> list[int]:
        return [c for c in range(self.chunks) if not self.done(c)]

    def write_part(self, chunk: int, rows: list[dict]) -> None:
        text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
        atomic_write_text(part_path(self.work, chunk), text)

    def finish(self) -> int | None:
        """Merge once every chunk is written: the rows in OUT, or None while chunks are missing.

        Shards that finish together may both find every chunk written; the first to merge removes the
        work directory under the other, which then finds OUT complete and counts its rows instead.
        """
        if self.merged_elsewhere():
            return count_lines(self.output)
        if self.missing():
            return None
        try:
            return self.merge()
        except FileNotFoundError:
            if self.merged_elsewhere():
                return count_lines(self.output)
            raise

    def merged_elsewhere(self) -> bool:
        """Whether another process merged the parts: the work directory is gone and OUT is there."""
        return not self.work.is_dir() and self.output.is_file()

    def merge(self) -> int:
        """Concatenate the parts in order into OUT (atomically), remove the work directory; rows written."""
        rows = 0
        with atomic_path(self.output) as tmp, open(tmp, "w", encoding="utf-8") as out:
            for chunk in range(self.chunks):
                text = part_path(self.work, chunk).read_text(encoding="utf-8")
                rows += text.count("\n")
                out.write(text)
        remove_path(self.work)
        return rows


def prepare(input_file, output, identity: dict, chunk_size: int = CHUNK, resume: bool = False,
            overwrite: bool = False, joining: bool = False) -> Plan | None:
    """Check the input and the output rules; create or reopen the work directory. None: OUT is already done.

    OUT that exists is refused without ``--resume`` (finish the run) or ``--overwrite`` (start over;
    OUT is replaced only when the new one is complete). An unfinished work directory is continued
    with ``--resume``; shards (``joining``) join a work directory made for the same job.
    """
    source, output = Path(input_file), Path(output)
    if resume and overwrite:
        raise HubError("--resume finishes the run in --output and --overwrite starts it over; pass one of them")
    if not source.is_file():
        raise InputError(f"--input '{source}' is not a file; give a file with one input per line (or JSONL)")
    if output.is_dir():
        raise OutputDirError(f"--output '{output}' is a directory; give a file name such as {output / 'results.jsonl'}")
    if not output.parent.is_dir():
        raise OutputDirError(f"the directory of --output '{output}' does not exist; create it first")
    work = work_dir(output)
    if output.exists() and not (resume or overwrite):
        raise OutputDirError(f"--output '{output}' exists; pass --overwrite to replace it (when the new one is "
                             "complete) or choose another file")
    if output.exists() and resume and not work.exists():
        return None
    if work.exists():
        _reuse(work, identity, resume, overwrite, joining)
    work.mkdir(exist_ok=True)
    if not (work / MANIFEST).is_file():
        atomic_write_json(work / MANIFEST, identity)
    return Plan(source, output, work, chunk_size, count_lines(source))


def _reuse(work: Path, identity: dict, resume: bool, overwrite: bool, joining: bool) -> None:
    """An existing work directory: removed with --overwrite, else it must be this job's."""
    saved = read_manifest(work)
    if overwrite:
        if saved is None and any(work.iterdir()):
            raise OutputDirError(f"'{work}' is in the way and was not made by hub run (no {MANIFEST}); move it away")
        remove_path(work)
        return
    if not (resume or joining):
        raise OutputDirError(f"an unfinished run left its parts in '{work}'; pass --resume to finish it or "
                             "--overwrite to start over")
    if saved is None:
        return
    changed = [f"{key}: {saved.get(key)!r} -> {identity.get(key)!r}" for key in sorted(set(saved) | set(identity))
               if saved.get(key) != identity.get(key)]
    if changed:
        raise OutputDirError(f"the parts in '{work}' were made for another job ({'; '.join(changed)}); pass "
                             "--overwrite to start over")


def read_manifest(work: Path) -> dict | None:
    """The work directory's manifest; None when it is missing or unreadable."""
    try:
        return json.loads((work / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def input_identity(source: Path) -> dict:
    """What names the input file's content: its absolute path, size and modification time."""
    st = source.stat()
    return {"input": str(source.resolve()), "input_size": st.st_size, "input_mtime_ns": st.st_mtime_ns}


def count_lines(path: Path) -> int:
    """Physical lines in ``path``, a last line without a newline included."""
    lines, last = 0, b"\n"
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            lines += block.count(b"\n")
            last = block[-1:]
    return lines + (last != b"\n")


def read_chunks(path: Path, chunk_size: int, wanted: list[int]):
    """(chunk, [(line number, raw bytes without the newline)]) for each wanted chunk, in one pass."""
    wanted_set, rows, current = set(wanted), [], None
    with open(path, "rb") as fh:
        for number, raw in enumerate(fh, 1):
            chunk = (number - 1) // chunk_size
            if chunk != current:
                if current in wanted_set:
                    yield current, rows
                current, rows = chunk, []
            if chunk in wanted_set:
                rows.append((number, raw.rstrip(b"\r\n")))
    if current in wanted_set:
        yield current, rows


def parse_line(number: int, raw: bytes, jsonl: bool) -> str | None:
    """The input on one line (None for a blank line); InputError names the line when it cannot be read."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"line {number} is not UTF-8 text (byte 0x{raw[exc.start]:02x}); convert the file first, "
                         "e.g. with iconv -f latin1 -t utf-8") from None
    if number == 1 and text.startswith("\ufeff"):
        text = text[1:]
    if not text.strip():
        return None
    if not jsonl:
        return text
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise InputError(f"line {number} is not JSON ({exc})") from None
    if isinstance(value, dict):
        value = value.get("input")
    if isinstance(value, dict):  # a structured input (a question-answering pair): its JSON text, read by the task
        return structured_text(value)
    if not isinstance(value, str):
        raise InputError(f"line {number}: expected a JSON string or an object with an 'input' field: a string, or "
                         "the object the task takes, e.g. {\"input\": {\"question\": ..., \"context\": ...}}")
    return value
