"""Views for the CLI: results as a streamed table or JSON array, similarity views, the environment report."""
from __future__ import annotations

import heapq
import json
import platform
import sys
import textwrap
from importlib import metadata

import click

from hub.inputs import printable
from hub.tasks.results import Embedding, cosine

LIBRARIES = ("mmhub", "torch", "torchvision", "transformers", "timm", "open_clip_torch",
             "sentence-transformers", "huggingface_hub", "safetensors", "pluggy", "click")


SIMILARITY_MATRIX_MAX = 8  # inputs for which the cosine similarity matrix is shown
SIMILAR_PAIRS_MAX = 64  # inputs for which the most similar pairs are listed
PAIRS_SHOWN = 10
NAME_WIDTH = 40


class TableView:
    """One line per input, printed as results arrive; similarity views only for a handful of embeddings."""

    def __init__(self):
        self.width: int | None = None
        self.count = 0
        self.kept: list[tuple[str, list[float]]] = []  # the first embeddings, for the similarity views
        self.all_embeddings = True

    def add(self, names: list[str], results: list) -> None:
        if self.width is None:  # fixed by the first batch, so that lines already printed stay aligned
            self.width = min(NAME_WIDTH, max((len(printable(n)) for n in names), default=0))
        for name, result in zip(names, results):
            click.echo(f"{_short(name, self.width):<{self.width}}  {result.summary()}")
            self.count += 1
            self.all_embeddings = self.all_embeddings and isinstance(result, Embedding)
            if self.all_embeddings and len(self.kept) < SIMILAR_PAIRS_MAX:
                self.kept.append((name, result.embedding))

    def close(self) -> None:
        if self.count < 2 or not self.all_embeddings:
            return
        if self.count > SIMILAR_PAIRS_MAX:
            click.echo(f"(similarities are shown for up to {SIMILAR_PAIRS_MAX} inputs, {self.count} were given; "
                       "use --json for the embeddings)", err=True)
            return
        names = [n for n, _ in self.kept]
        vectors = [v for _, v in self.kept]
        if self.count <= SIMILARITY_MATRIX_MAX:
            show_matrix(names, vectors)
        show_pairs(names, vectors)


class JsonArrayView:
    """One JSON array (as ``json.dumps(results, indent=2)`` would write it), written result by result."""

    def __init__(self):
        self.count = 0

    def add(self, names: list[str], results: list) -> None:
        for result in results:
            text = textwrap.indent(json.dumps(result.to_dict(), indent=2, ensure_ascii=False), "  ")
            click.echo(("[\n" if self.count == 0 else ",\n") + text, nl=False)
            self.count += 1

    def close(self) -> None:
        click.echo("\n]" if self.count else "[]")


class TextView:
    """A block per input, for results that read as text: the input's name, then its summary (any lines)."""

    def __init__(self):
        self.count = 0

    def add(self, names: list[str], results: list) -> None:
        for name, result in zip(names, results):
            click.echo(("\n" if self.count else "") + f"== {printable(name)} ==")
            click.echo(result.summary().rstrip("\n"))
            self.count += 1

    def close(self) -> None:
        pass


def view_for(task, as_json: bool = False):
    """The view of ``hub run`` for a task row: JSON, or the task's declared table or text view."""
    if as_json:
        return JsonArrayView()
    return TextView() if task.view == "text" else TableView()


class ResultFiles:
    """``hub run --save-dir``: each result's files written by its task's ``save``; a count on stderr at the end."""

    def __init__(self, task, out_dir):
        from pathlib import Path

        from hub.errors import HubError

        if task.save is None:
            raise HubError(f"task '{task.name}' writes no files, so --save-dir has nothing to do; drop it "
                           "('hub tasks --json' shows which tasks save files)")
        self.task, self.root, self.written = task, Path(out_dir).expanduser(), []
        self.writers: dict = {}  # file written -> the input it was written for
        from hub.outputs import check_output_dir

        check_output_dir(self.root, "--save-dir")
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise HubError(f"--save-dir '{self.root}' cannot be created: {exc.strerror or exc}") from None

    def save(self, names: list[str], items: list, results: list) -> None:
        for name, item, result in zip(names, items, results):
            for path in self.task.save_files(result, name, item, self.root):
                first = self.writers.setdefault(path.resolve(), name)
                if first != name:
                    click.echo(f"Warning: inputs '{printable(first)}' and '{printable(name)}' both wrote {path}; "
                               "it holds the files of the later one (give the inputs distinct names)", err=True)
                else:
                    self.written.append(path)

    def close(self) -> None:
        if self.written:
            click.echo(f"saved {len(self.written)} file(s) under {self.root}", err=True)


def stop_writing() -> None:
    """Stdout was closed by its reader (``| head``): send what is still buffered nowhere and exit 0 quietly.

    Exit 0, not 141 (a death by SIGPIPE): the reader chose to stop, and a ``set -o pipefail`` script
    that reads the first lines of ``hub list`` should not fail for it.
    """
    silence_stdout()
    raise click.exceptions.Exit(0)


def silence_stdout() -> None:
    """Point stdout's file descriptor at /dev/null, so that what is still buffered can be flushed at exit."""
    import os

    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):  # no file descriptor beneath stdout
        pass


def show_matrix(names: list[str], vectors: list[list[float]]) -> None:
    """The cosine similarity of every pair, as a matrix (meant for a handful of inputs)."""
    names = [_short(n, 18) for n in names]
    width = max(len(n) for n in names)
    click.echo("\ncosine similarity")
    click.echo(" " * width + "  " + "  ".join(f"{n[:8]:>8}" for n in names))
    for i, name in enumerate(names):
        row = "  ".join(f"{cosine(vectors[i], vectors[j]):8.4f}" for j in range(len(names)))
        click.echo(f"{name:<{width}}  {row}")


def show_pairs(names: list[str], vectors: list[list[float]]) -> None:
    """The most similar pairs, best first (at most PAIRS_SHOWN lines)."""
    names = [_short(n, 18) for n in names]
    pairs = heapq.nlargest(PAIRS_SHOWN, ((cosine(vectors[i], vectors[j]), names[i], names[j])
                                         for i in range(len(names)) for j in range(i + 1, len(names))))
    click.echo("\nmost similar pairs")
    for score, a, b in pairs:
        click.echo(f"  {score:.4f}  {a} ~ {b}")


def _short(text: str, width: int) -> str:
    text = printable(text)
    return text if len(text) <= width else text[: width - 1] + "…"


def environment_report(device: str | None = None, dtype: str | None = None) -> dict:
    from hub.device import DeviceManager, cpu_flags

    dm = DeviceManager(device, dtype)
    plan = dm.plan
    flags = sorted(cpu_flags() & {"amx_bf16", "amx_tile", "avx512_bf16", "avx512f", "avx2"})
    report = {
        "device": plan.device,
        "dtype": plan.dtype,
        "dtype policy": plan.policy,
        "reason": plan.reason,
        "cache budget": f"{dm.budget / 1e9:.1f} GB",
        "python": f"{platform.python_version()} ({sys.executable})",
        "platform": platform.platform(),
        "cpu flags": ", ".join(flags) or "-",
    }
    report.update(_accelerators())
    report["libraries"] = {name: _version(name) for name in LIBRARIES}
    return report


def _accelerators() -> dict:
    import torch

    out = {"torch threads": torch.get_num_threads(), "cuda": torch.cuda.is_available()}
    if torch.cuda.is_available():
        out["cuda devices"] = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
    return out


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None
