"""Reading training data into :class:`hub.train.adapter.Record` rows, and splitting it.

Formats (``kind`` / ``inputs``):

- classification / image or audio: a folder with one subfolder per class (``data/cat/1.jpg``);
- classification / text: CSV, TSV or JSONL with a text and a label column (names configurable);
  token classification: JSONL rows with a ``tokens`` list and a ``tags`` list of the same length;
- classification / image or audio from a table: CSV/JSONL whose text column (or ``image`` /
  ``audio`` / ``path`` / ``file``) holds a path relative to the table's folder;
- contrastive / image: JSONL of ``{"image": path, "caption": text}``, optionally with a ``label``
  (a class name: the adapter then treats captions of one class as positives of each other);
- ctc / audio: JSONL of ``{"audio": path, "text": transcript}``.

Bad rows (missing file, empty text, unparsable line, missing label) become problems such as
``data.csv:17: empty text``; they are skipped (``on_bad="skip"``) or rejected together
(``on_bad="error"``). Files are only checked to exist here; the loop decodes every example once
before it starts (:func:`hub.train.evaluation.screen_records`), so a corrupt file is reported
like a bad row instead of stopping a run halfway through an epoch.

A plugin's own kind of training (:class:`hub.train.adapter.TrainKind`) reads its data with its
own ``read``; :func:`read_kind_records` applies the same bad-row rules to it, and
:func:`table_rows` and :func:`media_path` give it this module's CSV/JSONL parsing and file checks.

Labels in tables are normalised, and columns that look swapped are refused
(:mod:`hub.train.labels`): ``1``, ``1.0`` and ``"1"`` are one class ``"1"`` (with a warning
naming what was merged), ``true`` mixed with numbers is an error.
"""
from __future__ import annotations

import csv
import json
import random
import warnings
from pathlib import Path

from hub.errors import HubError
from hub.inputs import AUDIO_SUFFIXES, IMAGE_SUFFIXES
from hub.train.adapter import KINDS, Record
from hub.train.labels import LabelSpellings, check_media_not_swapped, check_not_swapped

INPUTS = ("text", "image", "audio")
ON_BAD = ("skip", "error")
TABLE_SUFFIXES = (".csv", ".tsv", ".jsonl", ".ndjson", ".json")
PATH_COLUMNS = {"image": ("image", "path", "file", "filename"), "audio": ("audio", "path", "file", "filename")}
MAX_LISTED = 10


def read_records(path, kind: str, inputs: str, text_column: str = "text", label_column: str = "label",
                 on_bad: str = "skip", purpose: str = "training") -> tuple[list[Record], list[str]]:
    """Rows of the data set at ``path`` and the problems found (``file:line: what``).

    ``purpose`` (training, validation, evaluation) names the data in messages; only training
    data is refused for having a different label on every row.
    """
    _check_choice("kind", kind, KINDS)
    _check_choice("inputs", inputs, INPUTS)
    _check_choice("on_bad", on_bad, ON_BAD)
    root = Path(path).expanduser()
    if not root.exists():
        raise HubError(f"training data '{path}' does not exist; give a folder of class subfolders, "
                       "or a CSV/JSONL file")
    if root.is_dir():
        records, problems = _read_folder(root, kind, inputs, text_column, label_column, purpose)
    else:
        records, problems = _read_table(root, kind, inputs, text_column, label_column, purpose)
    return _kept_rows(f"training data '{path}'", records, problems, on_bad)


def read_kind_records(kind, path, on_bad: str = "skip", purpose: str = "training"):
    """(records, problems) of data read by a plugin's TrainKind, with the bad-row rules of the built-in kinds."""
    _check_choice("on_bad", on_bad, ON_BAD)
    root = Path(path).expanduser()
    if not root.exists():
        raise HubError(f"{purpose} data '{path}' does not exist; give the folder or file that "
                       f"{kind.name} training reads")
    result = kind.read(root, purpose)
    if not (isinstance(result, tuple) and len(result) == 2):
        raise HubError(f"the {kind.name} training kind's read() returned {type(result).__name__}, not "
                       "(records, problems); the plugin is at fault")
    records, problems = list(result[0]), sorted(result[1], key=_line_key)
    return _kept_rows(f"{purpose} data '{path}'", records, problems, on_bad)


def _kept_rows(what: str, records: list, problems: list[str], on_bad: str):
    """(records, problems) under the bad-row rule: any problem stops an ``error`` run; no rows left stops any."""
    if problems and on_bad == "error":
        raise HubError(_problem_message(what, problems, "rows"))
    if not records:
        hint = f" ({len(problems)} bad rows, e.g. {problems[0]})" if problems else ""
        raise HubError(f"{what} holds no usable rows{hint}")
    return records, problems


def table_rows(file) -> tuple[list[tuple[str, dict]], list[str]]:
    """(``file:line``, row) pairs of a CSV, TSV, JSONL or JSON file, and the lines that cannot be parsed."""
    file = Path(file)
    suffix = file.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise HubError(f"data file '{file}' has the unsupported type '{suffix or '(none)'}'; use CSV, TSV or JSONL")
    return _csv_rows(file) if suffix in (".csv", ".tsv") else _json_rows(file)


def media_path(file, value, inputs: str = "image"):
    """(absolute path, None) of an image/audio file named in a row of ``file``, or (None, problem)."""
    return _media_path(Path(file), value, inputs)


def _check_choice(name: str, value, valid) -> None:
    if value not in valid:
        raise HubError(f"unknown {name} '{value}'; valid: {', '.join(valid)}")


def _problem_message(what: str, problems: list[str], rows: str) -> str:
    """One line: the count, the first problems, and the fix."""
    shown = "; ".join(problems[:MAX_LISTED])
    more = f"; ... and {len(problems) - MAX_LISTED} more" if len(problems) > MAX_LISTED else ""
    return (f"{what} has {len(problems)} bad {rows}: {shown}{more}. "
            "Fix them, or pass on_bad='skip' (--on-bad-rows skip) to go on without them.")


# -- folders ---------------------------------------------------------------------------------
def _read_folder(root: Path, kind: str, inputs: str, text_column: str, label_column: str, purpose: str):
    if kind != "classification" or inputs == "text":
        for name in ("metadata.jsonl", "data.jsonl", "captions.jsonl"):
            if (root / name).is_file():
                return _read_table(root / name, kind, inputs, text_column, label_column, purpose)
        want = "a JSONL file" if kind != "classification" else "a CSV or JSONL file"
        raise HubError(f"training data '{root}' is a folder; {kind} training on {inputs} needs {want} "
                       "(or a folder holding metadata.jsonl)")
    suffixes = IMAGE_SUFFIXES if inputs == "image" else AUDIO_SUFFIXES
    classes = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise HubError(f"training folder '{root}' has no class subfolders; put each class's {inputs} "
                       f"files in their own subfolder, e.g. {root}/cat/001{sorted(suffixes)[0]}")
    records, problems = [], []
    for folder in classes:
        for file in sorted(folder.rglob("*")):
            if file.name.startswith(".") or file.is_dir():
                continue
            where = f"{root.name}/{file.relative_to(root)}"
            if file.suffix.lower() not in suffixes:
                problems.append(f"{where}: not an {inputs} file (expected one of {', '.join(sorted(suffixes))})")
            else:
                records.append(Record(input=str(file), label=folder.name, where=where))
    return records, problems


# -- tables ----------------------------------------------------------------------------------
def _read_table(file: Path, kind: str, inputs: str, text_column: str, label_column: str, purpose: str):
    suffix = file.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise HubError(f"training data file '{file}' has the unsupported type '{suffix or '(none)'}'; "
                       "use CSV, TSV or JSONL (or a folder of class subfolders for images/audio)")
    rows, problems = (_csv_rows(file) if suffix in (".csv", ".tsv") else _json_rows(file))
    columns = _columns(file, rows, kind, inputs, text_column, label_column)
    what = f"{purpose} data '{file}'"
    if kind == "classification" and inputs != "text":
        check_media_not_swapped(what, rows, columns["input"], columns["label"],
                                IMAGE_SUFFIXES if inputs == "image" else AUDIO_SUFFIXES)
    spellings, records = LabelSpellings(), []
    for where, row in rows:
        record, problem = _row_record(file, where, row, kind, inputs, columns, spellings)
        if problem:
            problems.append(f"{where}: {problem}")
        else:
            records.append(record)
    merged = spellings.check(what, columns.get("label", label_column))
    if merged:
        warnings.warn(merged, stacklevel=4)
    if kind == "classification" and inputs == "text":
        check_not_swapped(what, records, columns["input"], columns["label"], training=purpose == "training")
    problems.sort(key=_line_key)
    return records, problems


def _line_key(problem: str):
    head = problem.split(": ", 1)[0]
    number = head.rsplit(":", 1)[-1].lstrip("#")
    return int(number) if number.isdigit() else 0


def _read_text(file: Path) -> str:
    try:
        return file.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise HubError(f"training data file '{file}' is not UTF-8 text; save it as UTF-8") from None
    except OSError as exc:
        raise HubError(f"cannot read training data file '{file}': {exc.strerror or exc}") from None


def _csv_rows(file: Path):
    """(where, row dict) for every data row; the header is line 1."""
    import io

    text = _read_text(file)
    delimiter = "\t" if file.suffix.lower() == ".tsv" else ","
    reader = csv.DictReader(io.StringIO(text), delimiter=delimiter)
    if not reader.fieldnames:
        raise HubError(f"training data file '{file}' is empty; it needs a header row naming its columns")
    rows, problems = [], []
    try:
        for row in reader:
            where = f"{file.name}:{reader.line_num}"
            if None in row:
                problems.append(f"{where}: more fields than the header has columns")
            elif all(v in (None, "") for v in row.values()):
                continue  # a blank line
            else:
                rows.append((where, row))
    except csv.Error as exc:
        problems.append(f"{file.name}:{reader.line_num}: unparsable CSV ({exc}); later rows not read")
    return rows, problems


def _json_rows(file: Path):
    text = _read_text(file)
    if file.suffix.lower() == ".json" and text.lstrip().startswith("["):
        return _json_array(file, text)
    rows, problems = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        where = f"{file.name}:{number}"
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            problems.append(f"{where}: unparsable JSON ({exc.args[0] if exc.args else exc})")
            continue
        if not isinstance(row, dict):
            problems.append(f"{where}: expected a JSON object, got {type(row).__name__}")
            continue
        rows.append((where, row))
    return rows, problems


def _json_array(file: Path, text: str):
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise HubError(f"training data file '{file}' is not valid JSON ({exc}); use one object per line (JSONL)")
    rows, problems = [], []
    for index, row in enumerate(data):
        where = f"{file.name}:#{index}"
        if isinstance(row, dict):
            rows.append((where, row))
        else:
            problems.append(f"{where}: expected a JSON object, got {type(row).__name__}")
    return rows, problems


def _columns(file: Path, rows, kind: str, inputs: str, text_column: str, label_column: str) -> dict:
    """Which columns hold the input, the label and the text; missing ones name the columns found."""
    present: set[str] = set()
    for _, row in rows:
        present.update(row)
    if kind == "contrastive":
        wanted = {"input": "image", "text": _first(present, (text_column, "caption", "text"))}
        if label_column in present:  # optional class: captions of one class are positives of each other
            wanted["label"] = label_column
    elif kind == "ctc":
        wanted = {"input": _first(present, PATH_COLUMNS["audio"]), "text": text_column}
    elif inputs == "text":
        wanted = {"input": text_column, "label": label_column}
        if text_column == "text" and label_column == "label" and "text" not in present and "tokens" in present:
            wanted = {"input": "tokens", "label": "tags"}  # token classification
    else:
        default = text_column if text_column != "text" else _first(present, PATH_COLUMNS[inputs])
        wanted = {"input": default, "label": label_column}
    missing = [c for c in wanted.values() if c not in present]
    if rows and missing:
        have = ", ".join(sorted(present)) or "(none)"
        raise HubError(f"training data file '{file}' has no column {' or '.join(repr(c) for c in missing)}; "
                       f"its columns are: {have}. Name the right ones with text_column/label_column "
                       "(--text-column/--label-column).")
    return wanted


def _first(present: set[str], names) -> str:
    for name in names:
        if name in present:
            return name
    return names[0]


def _row_record(file: Path, where: str, row: dict, kind: str, inputs: str, columns: dict, spellings):
    """A Record for one row, or (None, problem); labels go through ``spellings`` (one name per class)."""
    value = row.get(columns["input"])
    if isinstance(value, list):
        return _token_record(where, value, row.get(columns.get("label", "")), spellings)
    if inputs == "text":
        text = _clean(value)
        if not text:
            return None, "empty text"
        label = spellings.add(row.get(columns["label"]), where)
        return (Record(input=text, label=label, where=where), None) if label else (None, "missing label")
    found, problem = _media_path(file, value, "image" if kind == "contrastive" else inputs)
    if problem:
        return None, problem
    if kind == "classification":
        label = spellings.add(row.get(columns["label"]), where)
        return (Record(input=found, label=label, where=where), None) if label else (None, "missing label")
    text = _clean(row.get(columns["text"]))
    if not text:
        return None, "empty caption" if kind == "contrastive" else "empty transcript"
    label = spellings.add(row.get(columns["label"]), where) if "label" in columns else ""
    return Record(input=found, text=text, label=label or None, where=where), None


def _clean(value) -> str:
    if value is None or isinstance(value, (dict, list)):
        return ""
    return str(value).strip()


def _token_record(where: str, tokens: list, tags, spellings):
    if not tokens or not all(isinstance(t, str) and t.strip() for t in tokens):
        return None, "empty text (tokens must be a non-empty list of non-empty strings)"
    if not isinstance(tags, list) or not tags:
        return None, "missing label (tags must be a list with one tag per token)"
    if len(tags) != len(tokens):
        return None, f"{len(tokens)} tokens but {len(tags)} tags"
    names = [spellings.add(t, where) for t in tags]
    if not all(names):
        return None, "missing label (an empty tag)"
    return Record(input=[str(t) for t in tokens], label=names, where=where), None


def _media_path(file: Path, value, inputs: str):
    """The absolute path of an image/audio file named in a table row, or (None, problem)."""
    name = _clean(value)
    if not name:
        return None, f"no {inputs} file named"
    path = Path(name).expanduser()
    if not path.is_absolute():
        path = file.parent / path
    suffixes = IMAGE_SUFFIXES if inputs == "image" else AUDIO_SUFFIXES
    if not path.is_file():
        return None, f"{inputs} file '{name}' not found"
    if path.suffix.lower() not in suffixes:
        return None, f"'{name}' is not an {inputs} file (expected one of {', '.join(sorted(suffixes))})"
    return str(path), None


# -- labels and splits -----------------------------------------------------------------------
def _labels_of(record: Record) -> list[str]:
    if record.label is None:
        return []
    return list(record.label) if isinstance(record.label, list) else [record.label]


def label_names(records: list[Record]) -> list[str]:
    """The sorted class names (tags, for token classification) found in ``records``."""
    return sorted({label for r in records for label in _labels_of(r)})


def stratified_split(records: list[Record], val_fraction: float = 0.2, seed: int = 0):
    """(train, val): per class, a seeded share to validation; >= 1 per class that has >= 2 rows."""
    if not 0 <= val_fraction < 1:
        raise HubError(f"val_fraction must be at least 0 and below 1, got {val_fraction}")
    if val_fraction == 0 or len(records) < 2:
        return list(records), []
    groups: dict[str, list[int]] = {}
    for index, record in enumerate(records):
        key = record.label if isinstance(record.label, str) else ""
        groups.setdefault(key, []).append(index)
    rng = random.Random(seed)
    val_idx: set[int] = set()
    for key in sorted(groups):
        members = groups[key]
        if len(members) < 2:
            continue
        take = min(len(members) - 1, max(1, round(len(members) * val_fraction)))
        val_idx.update(rng.sample(members, take))
    train = [r for i, r in enumerate(records) if i not in val_idx]
    val = [r for i, r in enumerate(records) if i in val_idx]
    return train, val


def check_model_labels(records: list[Record], labels: list[str], data, model: str) -> None:
    """Refuse evaluation data with labels the model cannot predict, naming them and the model's labels."""
    known = set(labels or [])
    rows = [r for r in records if set(_labels_of(r)) - known]
    if not rows:
        return
    unknown = sorted({label for r in rows for label in _labels_of(r)} - known)
    names = ", ".join(repr(u) for u in unknown[:10]) + (f" and {len(unknown) - 10} more" if len(unknown) > 10 else "")
    have = ", ".join(labels[:20]) + (f", ... ({len(labels)} in all)" if len(labels) > 20 else "")
    raise HubError(f"evaluation data '{data}' has labels that model '{model}' does not have: {names} "
                   f"({len(rows)} rows, e.g. {rows[0].where}); the model's labels are: {have}. Evaluate on data "
                   "labelled with those, or fine-tune the model on these labels first (hub finetune)")


def check_val_labels(val: list[Record], labels: list[str], on_bad: str = "skip"):
    """(kept, problems): validation rows with a label the training rows lack are reported."""
    _check_choice("on_bad", on_bad, ON_BAD)
    known = set(labels)
    kept, problems = [], []
    for record in val:
        unknown = sorted(set(_labels_of(record)) - known)
        if unknown:
            names = ", ".join(repr(u) for u in unknown)
            problems.append(f"{record.where}: label {names} is not among the training labels "
                            f"({', '.join(sorted(known)[:20])})")
        else:
            kept.append(record)
    if problems and on_bad == "error":
        raise HubError(_problem_message("the validation data", problems, "rows"))
    return kept, problems
