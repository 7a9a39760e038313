"""The inputs and call options of ``hub run``: arguments and stdin lines, read lazily, checked one by one.

Stdin (``-``) is read line by line as strict UTF-8, blank lines skipped; inputs are handed on in
chunks so that results can be printed while the rest of stdin is still coming. For text tasks a
stdin line is always the text itself; an argument is read as a file when it looks like a path
(see :func:`hub.inputs.looks_like_path`). For image and audio tasks every input is a file path.
"""
from __future__ import annotations

import sys

from hub.errors import HubError, InputError
from hub.inputs import check_text, cli_input

RUN_CHUNK = 256  # inputs read, run and printed at a time
_FLAGS = {"labels": "--label", "texts": "--text", "top_k": "--top-k"}


def input_chunks(inputs, kind: str, spec, size: int):
    """Lists of (display names, inputs ready for the pipeline), ``size`` at a time."""
    names, items = [], []
    for raw, line in expand_stdin(inputs):
        if line is not None and kind == "text":
            item = raw
        else:
            item = _from_line(line, lambda: cli_input(raw, kind, model=spec.id, task=spec.task))
        names.append(raw)
        items.append(item)
        if len(items) >= size:
            yield names, items
            names, items = [], []
    if items:
        yield names, items


def no_input_error() -> InputError:
    return InputError("no input: stdin ('-') was empty (blank lines are skipped); give inputs as arguments "
                      "or pipe one per line, e.g. printf 'a cat\\na dog\\n' | hub run MODEL -")


def _from_line(line: int | None, read):
    """``read()``; an input error from a stdin line gets 'stdin line N: ' before its message."""
    try:
        return read()
    except InputError as exc:
        if line is None:
            raise
        raise InputError(f"stdin line {line}: {exc}") from None


def expand_stdin(inputs):
    """Each input as (text, None), and for '-' each non-blank stdin line as (text, line number)."""
    for x in inputs:
        if x == "-":
            yield from ((text, n) for n, text in stdin_lines() if text.strip())
        else:
            yield x, None


def stdin_lines():
    """(line number, text) for each line of stdin, read lazily and decoded as strict UTF-8."""
    stream = getattr(sys.stdin, "buffer", None)
    if stream is None:  # a text stream with no bytes beneath
        yield from ((n, line.rstrip("\r\n")) for n, line in enumerate(sys.stdin, 1))
        return
    for n, raw in enumerate(stream, 1):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(f"stdin line {n} is not UTF-8 text (byte 0x{raw[exc.start]:02x} at position "
                             f"{exc.start + 1}); convert it first, e.g. with iconv -f latin1 -t utf-8") from None
        yield n, (text[1:] if n == 1 and text.startswith("\ufeff") else text).rstrip("\r\n")


def call_options(extra, labels, texts, top_k) -> dict:
    """-o KEY=VALUE pairs plus --label, --text and --top-k, as keyword arguments for the pipeline."""
    kwargs = parse_options(extra)
    flags = {"labels": [check_text(l.strip(), "--label") for chunk in labels for l in chunk.split(",") if l.strip()],
             "texts": [check_text(t, "--text") for t in texts], "top_k": top_k}
    for key, value in flags.items():
        if not value:
            continue
        if key in kwargs:
            raise HubError(f"'{key}' is given twice, with -o {key}=... and {_FLAGS[key]}; give it once")
        kwargs[key] = value
    return kwargs


def parse_options(pairs) -> dict:
    """``-o KEY=VALUE`` pairs as {key: value string}; the model's option contract converts the values."""
    out = {}
    for pair in pairs:
        check_text(pair, "-o")
        key, sep, value = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key.isidentifier():
            raise HubError(f"option {pair!r} must look like KEY=VALUE with a name for KEY, e.g. -o max_new_tokens=20")
        if key in out:
            raise HubError(f"option '{key}' is given twice with -o; give it once")
        out[key] = value
    return out
