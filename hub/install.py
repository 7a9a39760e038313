"""``hub install`` / ``hub uninstall``: pip in the hub's own environment, for plugins only.

A shipped plugin installs by its short name from ``plugins/`` in a source checkout (``hub install
timm`` -> ``plugins/mmhub-timm``), or from the package index as ``mmhub-<name>`` elsewhere. A name
one typo away from a shipped plugin's is answered with "did you mean" instead of going to the
package index. After installing, the distribution must provide an ``mmhub`` entry point; if it
does not, the hub says so and offers to remove it again. ``hub uninstall`` removes only installed
distributions that provide an ``mmhub`` entry point.
"""
from __future__ import annotations

import difflib
import importlib
import re
import shlex
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import click

from hub.errors import HubError, shell_command
from hub.plugins import SHIPPED, canonical

GROUP = "mmhub"
CORE = "mmhub"


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
    _refuse_near_miss(name, short)
    return name


def _refuse_near_miss(name: str, short: str) -> None:
    """A name one typo away from a shipped plugin's is most likely that typo, not another package."""
    close = difflib.get_close_matches(short, list(SHIPPED), n=1, cutoff=0.75)
    if close:
        raise HubError(f"no shipped plugin is called '{name}'. Did you mean: hub install {close[0]}? "
                       f"To install a package of exactly that name anyway, run: "
                       f"{shlex.join([sys.executable, '-m', 'pip', 'install', name])}")


def install(name: str, editable: bool = False, no_deps: bool = False, yes: bool = False) -> None:
    """pip-install the plugin ``name``, then check that what was installed is an mmhub plugin."""
    target = install_target(name)
    dist = expected_distribution(name, target)
    if dist is not None and is_installed(dist) and not plugin_entry_points(dist):
        raise HubError(f"'{dist}' is already installed and is not an mmhub plugin (it declares no entry point "
                       f"in the '{GROUP}' group); 'hub install' only installs plugins.")
    args = ["install"]
    if editable:
        if not Path(target).exists():
            raise HubError(f"--editable needs a local plugin directory; '{name}' is a package name")
        args.append("-e")
    args.append(target)
    if no_deps:
        args.append("--no-deps")
    before = _installed_names()
    _pip(args)
    names = _check_plugin(dist, before, yes)
    _check_loads(target, names)
    click.echo(f"Installed {target} (plugin {', '.join(names)}). Its models now show in 'hub list'.")


def _check_loads(target: str, names: list[str]) -> None:
    """Load the plugins just installed as the hub will: one that fails (it does not import, pluggy refuses its
    hooks, its plugin-API pin does not match) is an error saying why; one that loads but loses a contribution
    (a registration that raises, a name another plugin took first) is a warning naming what was lost."""
    from hub.plugins import get_plugin_manager

    pm = get_plugin_manager()
    failed = [f"plugin '{name}': {pm.failures[name].error}" for name in names if name in pm.failures]
    if failed:
        raise HubError(f"pip installed {target}, but it does not load: {'; '.join(failed)}. It is left installed; "
                       f"see {shell_command('hub', 'plugins', '--verbose')} for the traceback, then update or fix it, "
                       f"or remove it with {shell_command('hub', 'uninstall', names[0])}")
    try:
        import warnings

        from hub.api import catalog

        with warnings.catch_warnings():  # shown below, once, against the plugin
            warnings.simplefilter("ignore")
            catalog()  # builds the task table and the catalogue: what each plugin lost is recorded against it
    except HubError:
        pass  # a broken user catalogue is reported by the commands that read it
    for name in names:
        for message, _ in pm.problems.get(name, []):
            named = message.startswith(f"plugin '{name}'")  # a clash names both plugins itself
            click.echo(f"Warning: {message}" if named else f"Warning: plugin '{name}' loaded, but {message}", err=True)
        if name in pm.disabled:
            click.echo(f"Note: HUB_PLUGINS disables the plugin '{name}'; add it to HUB_PLUGINS to use it", err=True)


def expected_distribution(name: str, target: str) -> str | None:
    """The distribution name ``target`` installs, when it can be told without installing it."""
    path = Path(target)
    if path.exists():
        return _project_name(path)
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", target)
    return match.group(0) if match else None


def _project_name(path: Path) -> str | None:
    try:
        import tomllib
    except ImportError:  # Python 3.10
        return None
    try:
        data = tomllib.loads((path / "pyproject.toml").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    name = data.get("project", {}).get("name")
    return name if isinstance(name, str) else None


def _check_plugin(dist: str | None, before: set[str], yes: bool) -> list[str]:
    """The plugin names ``dist`` provides; if none, say so and offer to remove it (if it is new)."""
    importlib.invalidate_caches()
    if dist is None:
        new = sorted(_installed_names() - before)
        found = [ep for d in new for ep in plugin_entry_points(d)]
        if not found:
            raise HubError(f"pip installed {', '.join(new) or 'nothing new'}, but no new mmhub plugin appeared "
                           f"(no entry point in the '{GROUP}' group); check what you installed.")
        return found
    found = plugin_entry_points(dist)
    if found:
        return found
    problem = f"'{dist}' is not an mmhub plugin: it declares no entry point in the '{GROUP}' group"
    if canonical(dist) in before:
        raise HubError(f"{problem}. It was installed before, so it is left as it was.")
    if yes or _confirm(f"{problem}. Remove it again?"):
        _pip(["uninstall", "-y", dist])
        raise HubError(f"{problem}; it has been removed again.")
    raise HubError(f"{problem}; it is left installed. Remove it with: "
                   f"{shlex.join([sys.executable, '-m', 'pip', 'uninstall', dist])}")


def _confirm(question: str) -> bool:
    try:
        return click.confirm(question, default=True, err=True)
    except click.Abort:  # no answer (end of input): end the prompt's line and keep the package
        click.echo(err=True)
        return False


def uninstall(name: str) -> None:
    """pip-uninstall the distribution that provides plugin ``name``, and check it is gone."""
    dist = distribution_of(name)
    _pip(["uninstall", "-y", dist])
    importlib.invalidate_caches()
    if is_installed(dist):
        raise HubError(f"pip ran but '{dist}' is still installed; check the output above.")
    click.echo(f"Uninstalled {dist}.")


def distribution_of(name: str) -> str:
    """The installed distribution that provides plugin ``name`` (entry-point or distribution name)."""
    wanted = {canonical(name), canonical(f"mmhub-{name}")}
    plugins = {}
    for ep in metadata.entry_points(group=GROUP):
        dist = getattr(ep, "dist", None)
        if dist is not None:
            plugins[ep.name] = dist.name
            if canonical(ep.name) == canonical(name) or canonical(dist.name) in wanted:
                return dist.name
    listing = f"Installed plugins: {', '.join(sorted(plugins)) or 'none'}."
    if canonical(name) == CORE:
        raise HubError(f"'{name}' is the hub itself, not a plugin; 'hub uninstall' removes only plugins. {listing}")
    if is_installed(name):
        raise HubError(f"'{name}' is installed but is not an mmhub plugin (it declares no entry point in the "
                       f"'{GROUP}' group); 'hub uninstall' removes only plugins. {listing}")
    close = difflib.get_close_matches(name, [*plugins, *plugins.values()], n=1, cutoff=0.75)
    hint = f" Did you mean: {close[0]}?" if close else ""
    raise HubError(f"plugin '{name}' is not installed; nothing to uninstall.{hint} {listing}")


def plugin_entry_points(dist: str) -> list[str]:
    """The ``mmhub`` entry-point names that the installed distribution ``dist`` declares."""
    try:
        eps = metadata.distribution(dist).entry_points
    except metadata.PackageNotFoundError:
        return []
    return sorted(ep.name for ep in eps if ep.group == GROUP)


def is_installed(dist: str) -> bool:
    try:
        metadata.distribution(dist)
    except (metadata.PackageNotFoundError, ValueError):
        return False
    return True


def _installed_names() -> set[str]:
    return {canonical(d.metadata["Name"]) for d in metadata.distributions() if d.metadata["Name"]}


def _pip(args: list[str]) -> None:
    cmd = [sys.executable, "-m", "pip", *args]
    click.echo("$ " + shlex.join(cmd), err=True)
    done = subprocess.run(cmd)
    if done.returncode != 0:
        raise HubError(f"pip failed (exit {done.returncode}) running: {shlex.join(args)}")
    from hub.plugins import reset_plugin_manager

    reset_plugin_manager()
