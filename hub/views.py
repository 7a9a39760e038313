"""Human-readable views for the CLI: result listings, a similarity matrix, the environment report."""
from __future__ import annotations

import platform
import sys
from importlib import metadata

import click

from hub.tasks.results import Embedding, cosine

LIBRARIES = ("mmhub", "torch", "torchvision", "transformers", "timm", "open_clip_torch",
             "sentence-transformers", "huggingface_hub", "safetensors", "pluggy", "click")


def show_results(inputs: list[str], results: list) -> None:
    width = min(40, max((len(x) for x in inputs), default=0))
    for text, result in zip(inputs, results):
        click.echo(f"{_short(text, width):<{width}}  {result.summary()}")
    if len(results) > 1 and all(isinstance(r, Embedding) for r in results):
        show_similarity(inputs, [r.embedding for r in results])


def show_similarity(names: list[str], vectors: list[list[float]]) -> None:
    """Cosine similarity of every pair, as a matrix, then pairs from most to least similar."""
    names = [_short(n, 18) for n in names]
    width = max(len(n) for n in names)
    click.echo("\ncosine similarity")
    click.echo(" " * width + "  " + "  ".join(f"{n[:8]:>8}" for n in names))
    for i, name in enumerate(names):
        row = "  ".join(f"{cosine(vectors[i], vectors[j]):8.4f}" for j in range(len(names)))
        click.echo(f"{name:<{width}}  {row}")
    pairs = sorted(((cosine(vectors[i], vectors[j]), names[i], names[j])
                    for i in range(len(names)) for j in range(i + 1, len(names))), reverse=True)
    click.echo("\nmost similar pairs")
    for score, a, b in pairs[:10]:
        click.echo(f"  {score:.4f}  {a} ~ {b}")


def _short(text: str, width: int) -> str:
    text = text.replace("\n", " ")
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
