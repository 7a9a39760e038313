"""``hub install`` / ``hub uninstall``: pip in the hub's own environment.

A shipped plugin installs by its short name from ``plugins/`` in a source checkout (``hub install
timm`` -> ``plugins/mmhub-timm``), or from the package index as ``mmhub-<name>`` elsewhere.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click

from hub.errors import HubError

SHIPPED = {"transformers": "mmhub-transformers", "timm": "mmhub-timm", "openclip": "mmhub-openclip"}


def plugins_dir() -> Path:
    return Path(__file__).resolve().parent.parent / "plugins"


def install_target(name: str) -> str:
    """What to hand pip for ``name``: a shipped plugin's directory, a path, or a package name."""
    short = name.lower().removeprefix("mmhub-")
    if short in SHIPPED:
        local = plugins_dir() / SHIPPED[short]
        return str(local) if (local / "pyproject.toml").exists() else SHIPPED[short]
    if Path(name).expanduser().exists():
        return str(Path(name).expanduser().resolve())
    if "/" in name or name.startswith("."):
        raise HubError(f"plugin path '{name}' does not exist")
    return name


def install(name: str, editable: bool = False, no_deps: bool = False) -> None:
    target = install_target(name)
    args = ["install"]
    if editable:
        if not Path(target).exists():
            raise HubError(f"--editable needs a local plugin directory; '{name}' is a package name")
        args.append("-e")
    args.append(target)
    if no_deps:
        args.append("--no-deps")
    _pip(args)
    click.echo(f"Installed {target}. Its models now show in 'hub list'.")


def uninstall(name: str) -> None:
    dist = distribution_of(name)
    _pip(["uninstall", "-y", dist])
    click.echo(f"Uninstalled {dist}.")


def distribution_of(name: str) -> str:
    """The distribution that provides plugin ``name`` (entry-point name or distribution name)."""
    from importlib import metadata

    for ep in metadata.entry_points(group="mmhub"):
        dist = getattr(ep, "dist", None)
        if dist is not None and name in (ep.name, dist.name):
            return dist.name
    short = name.lower().removeprefix("mmhub-")
    if short in SHIPPED:
        raise HubError(f"plugin '{name}' is not installed; nothing to uninstall")
    return name


def _pip(args: list[str]) -> None:
    cmd = [sys.executable, "-m", "pip", *args]
    click.echo("$ " + " ".join(cmd), err=True)
    done = subprocess.run(cmd)
    if done.returncode != 0:
        raise HubError(f"pip failed (exit {done.returncode}) running: {' '.join(args)}")
    from hub.plugins import reset_plugin_manager

    reset_plugin_manager()
