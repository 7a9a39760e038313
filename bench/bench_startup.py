"""Start-up: ``hub --help``, ``hub list`` and ``hub list --json`` beside ``import click, pluggy, yaml``.

    .venv/bin/python -m bench.bench_startup             # measure, and write the "Start-up" section of BENCHMARKS.md
    .venv/bin/python -m bench.bench_startup --repeat 3  # fewer rounds, printed only (--no-write)

Each command runs as a fresh process, side by side: one warm-up round (which also fills the hub's
start-up caches, and writes the compiled modules as Python does by default), then ``--repeat`` rounds that each run every command once, in turn, so a change in
the machine's load touches all of them alike. The figure is each command's median. The section
records the load average before and after, since other work on the machine moves every figure.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.common import Row

ROOT = Path(__file__).resolve().parent.parent
SECTION = "Start-up"
TARGET = "<= 0.10 s"
ANCHOR = "python -c 'import click, pluggy, yaml'"


def commands() -> dict[str, list[str]]:
    """What is timed: the anchor first, then the hub's commands (the installed ``hub`` script)."""
    python = sys.executable
    hub = str(Path(python).with_name("hub"))
    return {ANCHOR: [python, "-c", "import click, pluggy, yaml"],
            "hub --help": [hub, "--help"], "hub list": [hub, "list"], "hub list --json": [hub, "list", "--json"]}


def measure(repeat: int = 9) -> dict[str, tuple[float, float]]:
    """Each command's median wall time and median CPU time (user + system), over ``repeat`` interleaved rounds
    after one warm-up round. CPU time moves less than wall time when other jobs share the cores."""
    import resource

    cmds = commands()
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as users run it: modules compiled once (the warm-up), not every time
    wall: dict[str, list[float]] = {name: [] for name in cmds}
    cpu_s: dict[str, list[float]] = {name: [] for name in cmds}
    for round_ in range(repeat + 1):
        for name, cmd in cmds.items():
            before, start = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
            subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, env=env)
            elapsed, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN)
            if round_:  # the first round warms the file cache and the hub's start-up caches
                wall[name].append(elapsed)
                cpu_s[name].append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return {name: (statistics.median(wall[name]), statistics.median(cpu_s[name])) for name in cmds}


def run(quick: bool = False) -> list[Row]:
    """The rows for bench.run: each hub command against the bare imports."""
    return rows_from(measure(3 if quick else 9))


def rows_from(medians: dict[str, tuple[float, float]]) -> list[Row]:
    """One row per hub command against the anchor's median wall time; CPU times in the notes."""
    anchor, anchor_cpu = medians[ANCHOR]
    return [Row(SECTION, f"{name} (median wall time)", wall, ANCHOR, anchor, "s", TARGET,
                notes=f"CPU time {cpu:.3f} s against the anchor's {anchor_cpu:.3f} s ({cpu / anchor_cpu:.2f}x)")
            for name, (wall, cpu) in medians.items() if name != ANCHOR]


def section(rows: list[Row], repeat: int, load_before: tuple, load_after: tuple) -> list[str]:
    """The Markdown lines of the "Start-up" section."""
    lines = [f"## {SECTION}", "",
             f"Measured by `.venv/bin/python -m bench.bench_startup` on {time.strftime('%Y-%m-%d')} ({cpu()}): each "
             f"command a fresh process, median of {repeat} interleaved rounds after a warm-up round. Load average "
             f"(1, 5, 15 min) {_load(load_before)} before and {_load(load_after)} after"
             + (" (other jobs were running)." if max(load_before[0], load_after[0]) >= 2 else "."), "",
             "| measured | ours | anchor | anchor figure | ratio | target | met | notes |", "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row.name} | {row.ours:.4g} {row.unit} | {row.anchor_name} | {row.anchor:.4g} {row.unit} | "
                     f"{row.ratio:.2f}x | {row.target} | {row.meets_target} | {row.notes} |")
    return lines + [""]


def write_section(lines: list[str], out: Path) -> None:
    """Replace the "Start-up" section of ``out`` (up to the next '## ' heading), or add it after the header."""
    from hub.io import atomic_write_text

    old = out.read_text(encoding="utf-8").splitlines() if out.exists() else ["# Benchmarks", ""]
    heading = f"## {SECTION}"
    if heading in old:
        start = old.index(heading)
        end = next((i for i in range(start + 1, len(old)) if old[i].startswith("## ")), len(old))
        new = old[:start] + lines + old[end:]
    else:
        first = next((i for i, line in enumerate(old) if line.startswith("## ")), len(old))
        new = old[:first] + lines + [""] + old[first:]
    atomic_write_text(out, "\n".join(new).rstrip("\n") + "\n")


def cpu() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            model = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), "a CPU")
    except OSError:
        model = "a CPU"
    return f"{model}, {os.cpu_count()} cores, Python {sys.version.split()[0]}"


def _load(values: tuple) -> str:
    return ", ".join(f"{v:.2f}" for v in values)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=9, help="interleaved rounds after the warm-up (default 9)")
    parser.add_argument("--out", default=str(ROOT / "BENCHMARKS.md"))
    parser.add_argument("--no-write", action="store_true", help="print the section only")
    args = parser.parse_args(argv)
    load_before = os.getloadavg()
    rows = rows_from(measure(args.repeat))
    lines = section(rows, args.repeat, load_before, os.getloadavg())
    print("\n".join(lines))
    if not args.no_write:
        write_section(lines, Path(args.out))
        print(f"wrote the '{SECTION}' section of {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
