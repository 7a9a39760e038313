"""The files of a batch run: shards, chunks of input lines, the work directory, its manifest, the merge.

Chunk ``c`` holds the input file's physical lines ``c*size+1 .. (c+1)*size``; shard ``K/N`` does
the chunks ``c`` with ``c % N == K``. The work directory ``OUT.parts/`` holds ``manifest.json``
(what the parts were made from: the input file and its fingerprint, the model, task, options and
chunk size) and one ``part-<c>.jsonl`` per finished chunk, each written atomically and carrying a
header that proves it (:mod:`hub.batch.parts`). A run on the same work directory with another input
file, model or options is refused, since mixing their results would be wrong. On ``--resume`` (and
when shards join) every part is verified and a part that does not verify is removed and redone; a
missing or unreadable manifest is written anew, and a changed input redoes every part, each with a
line on stderr saying so. The merge verifies every part again and writes OUT atomically, with one
row per non-blank input line; an input with no inputs at all is refused.
"""
from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from hub.batch.parts import BadPart, check_part, encode_part, fingerprint, job_digest
from hub.errors import HubError, InputError, OutputDirError
from hub.inputs import structured_text
from hub.io import atomic_path, atomic_write_bytes, atomic_write_json, is_temp_name, remove_path
from hub.outputs import check_output_dir, check_output_file

CHUNK = 1000  # input lines per part file
MANIFEST = "manifest.json"
JSONL_SUFFIXES = (".jsonl", ".ndjson")
JOB_KEYS = ("input", "model", "task", "options", "chunk_size")  # a change of any of these is another job


def say(line: str) -> None:
    """One line on stderr about what a run does with the files it found."""
    print(line, file=sys.stderr, flush=True)


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
    inputs: list[int]  # per chunk, its non-blank lines: the rows its part holds
    job: str = ""  # the job's digest, in every part's header
    input_fingerprint: dict | None = None

    @property
    def chunks(self) -> int:
        return len(self.inputs)

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
        atomic_write_bytes(part_path(self.work, chunk), encode_part(chunk, self.job, rows))

    def read_part(self, chunk: int) -> bytes:
        """The rows of chunk's part when it verifies (:func:`hub.batch.parts.check_part`); else BadPart."""
        first = chunk * self.chunk_size + 1
        lines = range(first, first + self.chunk_lines(chunk))
        return check_part(part_path(self.work, chunk), chunk, self.job, lines, self.inputs[chunk])

    def verify(self) -> int:
        """Remove the parts that do not verify, with a line naming them; returns how many."""
        bad = []
        for chunk in range(self.chunks):
            path = part_path(self.work, chunk)
            if not os.path.lexists(path):
                continue
            try:
                self.read_part(chunk)
            except BadPart as exc:
                remove_path(path)
                bad.append(f"{path.name} ({exc})")
            except FileNotFoundError:
                continue  # merged and removed by another shard meanwhile
        if bad:
            more = f"; and {len(bad) - 3} more" if len(bad) > 3 else ""
            say(f"Redoing {len(bad)} part(s) in '{self.work}' that do not verify: {'; '.join(bad[:3])}{more}")
        return len(bad)

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
        """Concatenate the verified parts in order into OUT (atomically), remove the work directory; rows written.

        A part that does not verify now is removed and the merge refused (rerun with --resume to redo
        it); so is a merge whose input changed since the run started."""
        if self.input_fingerprint is not None and fingerprint(self.input) != self.input_fingerprint:
            raise InputError(f"--input '{self.input}' changed while the run was going; rerun with --resume to "
                             "redo the parts made from the old version")
        rows, expected = 0, sum(self.inputs)
        with atomic_path(self.output) as tmp, open(tmp, "wb") as out:
            for chunk in range(self.chunks):
                body = self._verified(chunk)
                rows += body.count(b"\n")
                out.write(body)
            if rows != expected:
                raise HubError(f"the parts in '{self.work}' hold {rows} rows where --input has {expected} inputs; "
                               "rerun with --resume")
        remove_path(self.work)
        return rows

    def _verified(self, chunk: int) -> bytes:
        try:
            return self.read_part(chunk)
        except BadPart as exc:
            path = part_path(self.work, chunk)
            remove_path(path)
            raise HubError(f"part '{path}' does not verify ({exc}); it was removed: rerun with --resume to redo "
                           "it") from None


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
    check_output_file(output, "--output", [("--input", source)])
    work = check_output_dir(work_dir(output), "the work directory of --output", [("--input", source)])
    if work.is_symlink():
        raise OutputDirError(f"'{work}' (the work directory of --output) is a symbolic link; move it away")
    lines, inputs = scan_input(source, chunk_size)
    if not sum(inputs):
        raise InputError(f"--input '{source}' holds no inputs (it is empty or every line is blank); give a file "
                         "with one input per line")
    if output.exists() and not (resume or overwrite):
        raise OutputDirError(f"--output '{output}' exists; pass --overwrite to replace it (when the new one is "
                             "complete) or choose another file")
    if output.exists() and resume and not work.exists():
        _check_complete(output, source, sum(inputs))
        return None
    if work.exists():
        _reuse(work, identity, resume, overwrite, joining)
    work.mkdir(exist_ok=True)
    if not (work / MANIFEST).is_file():
        atomic_write_json(work / MANIFEST, identity)
    return Plan(source, output, work, chunk_size, lines, inputs, job_digest(identity),
                identity.get("input_fingerprint"))


def _check_complete(output: Path, source: Path, inputs: int) -> None:
    """An OUT found complete on --resume must hold one row per input."""
    rows = count_lines(output)
    if rows != inputs:
        raise OutputDirError(f"--output '{output}' holds {rows} rows but --input '{source}' has {inputs} inputs: it "
                             "was not made from this input, or is damaged; pass --overwrite to redo it")


def _reuse(work: Path, identity: dict, resume: bool, overwrite: bool, joining: bool) -> None:
    """An existing work directory: removed with --overwrite, else it must be this job's."""
    saved = read_manifest(work)
    if overwrite:
        if saved is None and not _made_by_hub(work):
            raise OutputDirError(f"'{work}' is in the way and was not made by hub run (no {MANIFEST}); move it away")
        remove_path(work)
        return
    if not (resume or joining):
        raise OutputDirError(f"an unfinished run left its parts in '{work}'; pass --resume to finish it or "
                             "--overwrite to start over")
    changed = [f"{key}: {saved[key]!r} -> {identity.get(key)!r}" for key in JOB_KEYS
               if saved is not None and key in saved and saved[key] != identity.get(key)]
    if changed:
        raise OutputDirError(f"the parts in '{work}' were made for another job ({'; '.join(changed)}); pass "
                             "--overwrite to start over")
    if saved is None or any(key not in saved for key in identity):
        say(f"'{work / MANIFEST}' is missing, empty or unreadable: it is written anew, and each part is checked "
            "against this run")
    elif saved.get("input_fingerprint") != identity.get("input_fingerprint"):
        say(f"--input '{identity.get('input')}' changed since the parts in '{work}' were made: they are redone")
    else:
        return
    atomic_write_json(work / MANIFEST, identity)


def _made_by_hub(work: Path) -> bool:
    """Whether ``work`` holds nothing but what a batch run writes (a manifest, parts, temporary files)."""
    return all(name == MANIFEST or (name.startswith("part-") and name.endswith(".jsonl")) or is_temp_name(name)
               for name in os.listdir(work))


def read_manifest(work: Path) -> dict | None:
    """The work directory's manifest; None when it is missing, unreadable or not a JSON object.

    Anything there but a regular file (a directory, a FIFO that would block the read) is removed."""
    path = work / MANIFEST
    if os.path.lexists(path) and not (path.is_file() and not path.is_symlink()):
        remove_path(path)
        return None
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return saved if isinstance(saved, dict) else None


def input_identity(source: Path) -> dict:
    """What names the input file's content: its absolute path and fingerprint."""
    return {"input": str(source.resolve()), "input_fingerprint": fingerprint(source)}


def scan_input(path: Path, chunk_size: int) -> tuple[int, list[int]]:
    """(physical lines, the non-blank lines of each chunk): what the parts must hold."""
    lines, inputs = 0, []
    with open(path, "rb") as fh:
        for lines, raw in enumerate(fh, 1):
            if (lines - 1) % chunk_size == 0:
                inputs.append(0)
            inputs[-1] += not is_blank(lines, raw.rstrip(b"\r\n"))
    return lines, inputs


def is_blank(number: int, raw: bytes) -> bool:
    """Whether line ``number`` holds no input (only spaces, or a byte-order mark on line 1)."""
    try:
        return not _line_text(number, raw).strip()
    except UnicodeDecodeError:
        return False  # a line that is not text is an input: it gets an error row


def _line_text(number: int, raw: bytes) -> str:
    """Line ``number`` as text, without the byte-order mark of line 1; UnicodeDecodeError when it is not UTF-8."""
    text = raw.decode("utf-8")
    return text[1:] if number == 1 and text.startswith("\ufeff") else text


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
        text = _line_text(number, raw)
    except UnicodeDecodeError as exc:
        raise InputError(f"line {number} is not UTF-8 text (byte 0x{raw[exc.start]:02x}); convert the file first, "
                         "e.g. with iconv -f latin1 -t utf-8") from None
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
