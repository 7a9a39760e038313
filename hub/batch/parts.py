"""What proves a batch run's files: the input's fingerprint, the job's digest, and the part files' headers.

The fingerprint of the input names its content cheaply: its size, modification time and the sha256
of its first and last MiB (of the whole file when it is no bigger than two MiB). The job's digest is
the sha256 of everything its results depend on: the input's path and fingerprint, the model, task,
options and chunk size.

A part file is one header line, then one JSON row per non-blank input line of its chunk::

    {"mmhub_part": 1, "chunk": 3, "job": "<digest>", "rows": 998, "sha256": "<sha256 of the rows' bytes>"}

:func:`check_part` accepts a part only when the header reads, names the part's own chunk and this
job, its rows hash to its checksum, their count is the number of inputs in the chunk and each row is
a UTF-8 JSON object whose ``line`` lies in the chunk, rising. Anything else raises :class:`BadPart`
with the reason, and the part is redone.
"""
from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path

PART_VERSION = 1
EDGE = 1 << 20  # the bytes hashed at each end of a large input


class BadPart(Exception):
    """A part file that cannot be trusted; ``str()`` is the reason."""


def fingerprint(path) -> dict:
    """Size, modification time and the sha256 of the first and last MiB (or the whole file) of ``path``."""
    st = os.stat(path)
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        if st.st_size <= 2 * EDGE:
            for block in iter(lambda: fh.read(EDGE), b""):
                digest.update(block)
        else:
            digest.update(fh.read(EDGE))
            fh.seek(st.st_size - EDGE)
            digest.update(fh.read(EDGE))
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": digest.hexdigest()}


def job_digest(identity: dict) -> str:
    """The sha256 of a job's identity (a JSON-able dict), independent of key order."""
    text = json.dumps(identity, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def encode_part(chunk: int, job: str, rows: list[dict]) -> bytes:
    """A part file's bytes: its header line, then the rows, one JSON object a line."""
    body = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode("utf-8")
    header = {"mmhub_part": PART_VERSION, "chunk": chunk, "job": job, "rows": len(rows),
              "sha256": hashlib.sha256(body).hexdigest()}
    return (json.dumps(header) + "\n").encode("utf-8") + body


def check_part(path: Path, chunk: int, job: str, lines: range, expected: int) -> bytes:
    """The rows of the part at ``path`` (bytes, one JSON line each) when it verifies; else :class:`BadPart`.

    ``lines`` are the input line numbers of the chunk; ``expected`` is how many of them are inputs.
    A missing file raises FileNotFoundError."""
    if not stat.S_ISREG(os.lstat(path).st_mode):
        raise BadPart("it is not a regular file")
    data = Path(path).read_bytes()
    head, newline, body = data.partition(b"\n")
    if not newline:
        raise BadPart("it is empty" if not data else "it has no header line")
    header = _header(head)
    if header.get("chunk") != chunk:
        raise BadPart(f"it holds chunk {header.get('chunk')!r}, not {chunk}")
    if header.get("job") != job:
        raise BadPart("it was made from another version of the input, or for another job")
    if hashlib.sha256(body).hexdigest() != header.get("sha256"):
        raise BadPart("its rows do not match its checksum")
    count = body.count(b"\n")
    if header.get("rows") != count or count != expected or (body and not body.endswith(b"\n")):
        raise BadPart(f"it holds {count} rows where its chunk has {expected} inputs")
    _check_rows(body, lines)
    return body


def _header(head: bytes) -> dict:
    try:
        header = json.loads(head.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise BadPart("its header line is not JSON") from None
    if not isinstance(header, dict) or header.get("mmhub_part") != PART_VERSION:
        raise BadPart("it has no part header")
    return header


def _check_rows(body: bytes, lines: range) -> None:
    """Each row a JSON object whose ``line`` lies in ``lines``, rising."""
    previous = lines.start - 1
    for number, raw in enumerate(body.split(b"\n")[:-1], 1):
        try:
            row = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise BadPart(f"its row {number} is not JSON") from None
        line = row.get("line") if isinstance(row, dict) else None
        if type(line) is not int or not previous < line < lines.stop:
            raise BadPart(f"its row {number} is not for an input line of this chunk, in order")
        previous = line
