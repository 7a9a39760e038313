"""Run every benchmark side by side with its anchors and write BENCHMARKS.md (+ a chart).

    .venv/bin/python -m bench.run            # all benchmarks, full size
    .venv/bin/python -m bench.run --quick    # small sizes, a smoke run
    .venv/bin/python -m bench.run --only core,vision
    .venv/bin/python -m bench.run --chart    # redraw the chart from every row in BENCHMARKS.md
"""
from __future__ import annotations

import argparse
import datetime
import importlib
import math
import os
import traceback
from pathlib import Path

from bench.common import Row, machine

MODULES = ["core", "startup", "vision", "clip", "train", "detection", "serve", "distributed", "seq2seq", "export"]
ROOT = Path(__file__).resolve().parent.parent


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", default=",".join(MODULES))
    parser.add_argument("--out", default=str(ROOT / "BENCHMARKS.md"))
    parser.add_argument("--chart", action="store_true", help="only redraw the chart from the rows in --out")
    args = parser.parse_args(argv)
    if args.chart:
        return 0 if draw_chart(rows_from_report(Path(args.out)), ROOT / "bench" / "benchmarks.png") else 1
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    rows, failures = [], []
    for name in args.only.split(","):
        try:
            module = importlib.import_module(f"bench.bench_{name}")
        except ModuleNotFoundError:
            failures.append(f"{name}: no bench/bench_{name}.py")
            continue
        print(f"== {name}", flush=True)
        try:
            got = module.run(quick=args.quick)
        except Exception:
            failures.append(f"{name}: {traceback.format_exc(limit=3)}")
            continue
        for row in got:
            print(f"  {row.name}: {row.ours:.4g} {row.unit} vs {row.anchor_name} {row.anchor:.4g} -> {row.ratio:.2f}x")
        rows += got
    write_report(rows, failures, Path(args.out), args.quick)
    return 1 if failures else 0


def write_report(rows: list[Row], failures: list[str], out: Path, quick: bool) -> None:
    chart = out.parent / "bench" / "benchmarks.png"
    lines = ["# Benchmarks", "",
             f"Written by `.venv/bin/python -m bench.run{' --quick' if quick else ''}` on "
             f"{datetime.date.today().isoformat()}.", "", f"Machine: {machine()}.", "",
             "Every figure is measured in the same run as its anchor; the ratio says how many times better "
             "the hub is (for times: anchor / ours; for throughputs: ours / anchor).", ""]
    group = None
    for row in rows:
        if row.group != group:
            group = row.group
            lines += ["", f"## {group}", "", "| measured | ours | anchor | anchor figure | ratio | target | met | notes |",
                      "|---|---|---|---|---|---|---|---|"]
        lines.append(f"| {row.name} | {row.ours:.4g} {row.unit} | {row.anchor_name} | {row.anchor:.4g} {row.unit} | "
                     f"{row.ratio:.2f}x | {row.target} | {row.meets_target} | {row.notes} |")
    if failures:
        lines += ["", "## Not measured", ""] + [f"- {f.strip().splitlines()[0]}" for f in failures]
    if rows and draw_chart(rows, chart):
        lines += ["", f"![ratios]({chart.relative_to(out.parent).as_posix()})"]
    tmp = out.with_suffix(".tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.replace(tmp, out)
    print(f"wrote {out}")


def rows_from_report(path: Path) -> list[Row]:
    """The rows of a written BENCHMARKS.md (sections merged from several runs included), for the chart."""
    import re

    rows, group = [], ""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("## ") or line.startswith("### "):
            group = line.lstrip("#").strip()
        cells = [c.strip() for c in line.strip().strip("|").split("|")] if line.startswith("| ") else []
        if len(cells) < 7 or cells[0] == "measured":
            continue
        ours, anchor = re.match(r"([0-9.e+-]+) ?(.*)", cells[1]), re.match(r"([0-9.e+-]+)", cells[3])
        if ours and anchor:
            rows.append(Row(group, cells[0], float(ours.group(1)), cells[2], float(anchor.group(1)),
                            ours.group(2).strip(), cells[5]))
    return rows


def draw_chart(rows: list[Row], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    rows = [r for r in rows if not math.isnan(r.ratio) and r.unit != "%"]  # speed ratios only
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(rows) + 1.2))
    labels = [f"{r.group[:24]}: {r.name[:40]}\nvs {r.anchor_name[:52]}" for r in rows]
    colours = {"yes": "tab:green", "no": "tab:red", "": "tab:gray"}
    ax.barh(range(len(rows)), [r.ratio for r in rows], color=[colours[r.meets_target] for r in rows])
    ax.axvline(1.0, color="black", lw=1)
    ax.set_xscale("log")
    ax.set_yticks(range(len(rows)), labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_title("green: target met, red: missed, grey: no ratio target", fontsize=8)
    ax.set_xlabel("times better than the anchor")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


if __name__ == "__main__":
    raise SystemExit(main())
