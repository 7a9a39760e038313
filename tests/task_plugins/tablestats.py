"""A third-party plugin with a task of its own: per-column statistics of CSV tables.

The task takes a kind of input the hub does not know (``csv``), read by this plugin's loader; its
result is a class of this plugin; the CLI shows it as text and ``--save-dir`` writes a summary CSV.
"""
from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path

from hub import hookimpl
from hub.errors import InputError
from hub.options import Option
from hub.tasks.base import Pipeline
from hub.tasks.results import Result

PLUGIN = "tablestats"
MODULE = "mmhub_task_tablestats"


@dataclass
class ColumnStats(Result):
    name: str
    count: int
    mean: float
    std: float
    min: float
    max: float


@dataclass
class TableStats(Result):
    rows: int
    columns: list[ColumnStats]
    nested = {"columns": ColumnStats}

    def summary(self) -> str:
        lines = [f"{self.rows} rows"]
        lines += [f"{c.name}: mean {c.mean:g}, std {c.std:g}, min {c.min:g}, max {c.max:g}" for c in self.columns]
        return "\n".join(lines)


@dataclass
class Table:
    header: list[str]
    rows: list[list[float]]


def read_csv(data: bytes) -> Table:
    """A table of numbers from CSV bytes: a header line, then one row of numbers per line."""
    lines = list(csv.reader(io.StringIO(data.decode("utf-8"))))
    lines = [line for line in lines if any(cell.strip() for cell in line)]
    if len(lines) < 2:
        raise ValueError("a CSV table needs a header line and at least one row")
    header = [h.strip() for h in lines[0]]
    rows = []
    for number, line in enumerate(lines[1:], 2):
        if len(line) != len(header):
            raise ValueError(f"line {number} has {len(line)} cells, the header has {len(header)}")
        try:
            rows.append([float(cell) for cell in line])
        except ValueError:
            raise ValueError(f"line {number} holds a cell that is not a number: {line}") from None
    return Table(header, rows)


def save_stats(result: TableStats, input_name: str, source_input, out_dir: Path) -> list[Path]:
    """One CSV of the statistics per input, written atomically."""
    from hub.io import atomic_write_text

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["column", "count", "mean", "std", "min", "max"])
    for c in result.columns:
        writer.writerow([c.name, c.count, repr(c.mean), repr(c.std), repr(c.min), repr(c.max)])
    return [atomic_write_text(Path(out_dir) / f"{Path(input_name).stem}.stats.csv", out.getvalue())]


class TableStatsPipeline(Pipeline):
    """Mean, standard deviation (population or sample), minimum and maximum of each column."""

    task = "table-statistics"
    call_options = (Option("ddof", int, 0, "Delta degrees of freedom of the standard deviation.", minimum=0),)

    def prepare(self, item):
        if isinstance(item, Table):
            return item
        if isinstance(item, (str, Path)):
            path = Path(item)
            if not path.is_file():
                raise InputError(f"input file '{item}' does not exist")
            item = path.read_bytes()
        if isinstance(item, bytes):
            return read_csv(item)
        raise InputError(f"table-statistics takes CSV files or bytes, got {type(item).__name__}")

    def run_one_batch(self, chunk, **kwargs):
        return self.postprocess(self.forward(self.preprocess(chunk, **kwargs), **kwargs), chunk, **kwargs)

    def preprocess(self, items, **kwargs):
        import numpy as np

        return [np.asarray(t.rows, dtype=np.float64) for t in items]

    def forward(self, batch, ddof=0, **kwargs):
        return [(len(a), a.mean(axis=0), a.std(axis=0, ddof=ddof) if len(a) > ddof else a.mean(axis=0) * math.nan,
                 a.min(axis=0), a.max(axis=0)) for a in batch]

    def postprocess(self, outputs, items, **kwargs):
        return [TableStats(n, [ColumnStats(name, n, float(mean[i]), float(std[i]), float(low[i]), float(high[i]))
                               for i, name in enumerate(t.header)])
                for (n, mean, std, low, high), t in zip(outputs, items)]


@hookimpl
def register_tasks(register):
    register({"name": "table-statistics", "modality": "nlp", "inputs": "csv", "loader": f"{MODULE}:read_csv",
              "result": f"{MODULE}:TableStats", "description": "Per-column statistics of a CSV table of numbers.",
              "aliases": ["csv-stats"], "view": "text", "save": f"{MODULE}:save_stats"})


@hookimpl
def register_models(register):
    register({"id": "table-stats", "task": "table-statistics", "source": "builtin:table-stats", "params": 0,
              "license": "mit", "description": "Column statistics computed with numpy."})


@hookimpl
def load_model(spec, device_manager, options):
    return TableStatsPipeline(spec, None, device_manager, **options) if spec.task == "table-statistics" else None


@hookimpl
def model_options(spec):
    return list(TableStatsPipeline.call_options) if spec.task == "table-statistics" else None
