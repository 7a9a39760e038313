"""Sequence-to-sequence training data (translation, summarization): source and target text pairs.

The ``seq2seq`` kind of training (:func:`seq2seq_kind`, a :class:`hub.train.adapter.TrainKind`
that any plugin's seq2seq adapter can use) reads a JSONL, CSV or TSV file, or a folder holding
one of :data:`TABLES`, with one pair per row::

    {"source": "twenty-one", "target": "vingt et un"}

The source column may also be named ``src``, ``input``, ``text`` or ``document``, the target
``tgt``, ``output`` or ``summary`` (the first of each list that the file has is used). A pair
becomes a :class:`~hub.train.adapter.Record` with the source as ``input`` and the target as
``text``. A row with an empty or missing source or target, or a value that is not text (a list,
an object), is a bad row (``data.jsonl:7: empty target``), under the bad-row rule of
:func:`hub.train.data.read_kind_records`; a file with no source or no target column at all is
refused as a whole, naming the columns it has. Models are measured by generating from the
source and scoring the generations against the targets (:mod:`hub.train.text_metrics`).
"""
from __future__ import annotations

from pathlib import Path

from hub.errors import HubError

SOURCE_COLUMNS = ("source", "src", "input", "text", "document")
TARGET_COLUMNS = ("target", "tgt", "output", "summary")
TABLES = ("data.jsonl", "metadata.jsonl", "data.csv", "data.tsv")
DEFAULT_LR = 5e-5


def read_pairs(path: Path, purpose: str = "training"):
    """(records, problems) of a source/target file, or of a folder holding one of :data:`TABLES`."""
    from hub.train.data import table_rows

    file = _table(Path(path), purpose)
    rows, problems = table_rows(file)
    source, target = _columns(file, rows)
    records = []
    for where, row in rows:
        record, problem = _pair(where, row, source, target)
        if problem:
            problems.append(f"{where}: {problem}")
        else:
            records.append(record)
    return records, problems


def _table(path: Path, purpose: str) -> Path:
    """``path`` itself, or the first of :data:`TABLES` in the folder ``path``; a HubError when it holds none."""
    if not path.is_dir():
        return path
    for name in TABLES:
        if (path / name).is_file():
            return path / name
    raise HubError(f"{purpose} data '{path}' is a folder without {', '.join(TABLES)}; seq2seq data is a JSONL "
                   "file of {\"source\": ..., \"target\": ...} rows (or a CSV/TSV with source and target columns)")


def _columns(file: Path, rows) -> tuple[str, str]:
    """The names of the source and target columns; a file lacking either is refused, naming its columns."""
    present: set[str] = set()
    for _, row in rows:
        present.update(row)
    source = next((c for c in SOURCE_COLUMNS if c in present), None)
    target = next((c for c in TARGET_COLUMNS if c in present and c != source), None)
    if rows and (source is None or target is None):
        lacking = " and ".join(f"no {what} column ({' / '.join(names)})" for what, names, found in
                               (("source", SOURCE_COLUMNS, source), ("target", TARGET_COLUMNS, target))
                               if found is None)
        raise HubError(f"seq2seq data file '{file}' has {lacking}; its columns are: "
                       f"{', '.join(sorted(present)) or '(none)'}. Name them 'source' and 'target'")
    return source or SOURCE_COLUMNS[0], target or TARGET_COLUMNS[0]


def _pair(where: str, row: dict, source: str, target: str):
    """(Record, None) for a row with a non-empty source and target, else (None, problem)."""
    from hub.train.adapter import Record

    texts = {}
    for what, column in (("source", source), ("target", target)):
        value = row.get(column)
        if isinstance(value, (list, dict, bool)):
            return None, f"the {what} ('{column}') is a {type(value).__name__}, not a text"
        text = "" if value is None else str(value).strip()
        if not text:
            return None, f"empty {what} ('{column}')" if column in row else f"no {what} ('{column}')"
        texts[what] = text
    return Record(input=texts["source"], text=texts["target"], where=where), None


def seq2seq_metrics(adapter, device: str):
    """A fresh accumulator of generated and reference texts for one evaluation."""
    from hub.train.text_metrics import GeneratedTextMetrics

    return GeneratedTextMetrics(adapter, device)


def seq2seq_kind():
    """The TrainKind of sequence-to-sequence training: source/target pairs, chrF / BLEU / ROUGE-L."""
    from hub.train.adapter import TrainKind
    from hub.train.text_metrics import DEFAULT_METRIC, METRIC_NAMES

    return TrainKind(name="seq2seq", read=read_pairs, metrics=seq2seq_metrics, metric_names=METRIC_NAMES,
                     default_metric=DEFAULT_METRIC, default_lr=DEFAULT_LR)
