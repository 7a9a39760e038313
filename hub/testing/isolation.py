"""An isolated hub for tests: only the plugins under test, a temporary catalogue, private config dirs.

:class:`IsolatedHub` sets ``HUB_PLUGINS``, ``HUB_CATALOG``, ``XDG_CONFIG_HOME``, ``XDG_CACHE_HOME`` and
``HF_HUB_OFFLINE`` for the test, keeps the Hugging Face and torch weight caches where they were (so
models already cached stay usable), and forgets the loaded plugins, the catalogue and the model cache
on entry and on exit. Nothing here imports torch.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

_KEPT_CACHES = {"HF_HOME": "huggingface", "TORCH_HOME": "torch"}


class IsolatedHub:
    """A hub that loads only ``plugins`` (entry-point names) plus objects given to :meth:`register`."""

    def __init__(self, root, plugins=(), offline: bool = True):
        self.root = Path(root)
        self.plugins = [p for p in plugins]
        self.catalog_path = self.root / "catalog.yaml"
        self.offline = offline
        self._saved: dict[str, str | None] = {}
        self._registered: list[tuple[object, str]] = []
        self._entries: dict[str, dict] = {}
        self._paths: list[str] = []

    # -- entering and leaving -----------------------------------------------------------------
    def __enter__(self) -> IsolatedHub:
        self.root.mkdir(parents=True, exist_ok=True)
        self._write_catalog()
        for name, value in self.env_overrides().items():
            self._set(name, value)
        reset_hub_state()
        return self

    def __exit__(self, *exc) -> None:
        for path in self._paths:
            if path in sys.path:
                sys.path.remove(path)
        reset_hub_state()
        for name, value in self._saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved.clear()

    def env_overrides(self) -> dict[str, str]:
        """The environment variables this hub sets (the caches kept where they were)."""
        env = {"HUB_PLUGINS": ",".join(self.plugins), "HUB_CATALOG": str(self.catalog_path),
               "XDG_CONFIG_HOME": str(self.root / "config"), "XDG_CACHE_HOME": str(self.root / "cache")}
        for name, folder in _KEPT_CACHES.items():
            env[name] = os.environ.get(name) or _default_cache(folder)
        if self.offline:
            env["HF_HUB_OFFLINE"] = "1"
        if self._paths:
            before = self._saved["PYTHONPATH"] if "PYTHONPATH" in self._saved else os.environ.get("PYTHONPATH")
            env["PYTHONPATH"] = os.pathsep.join([*self._paths, *([before] if before else [])])
        return env

    def _set(self, name: str, value: str) -> None:
        self._saved.setdefault(name, os.environ.get(name))
        os.environ[name] = value

    # -- what a test adds -----------------------------------------------------------------------
    def register(self, plugin, name: str) -> None:
        """Load an in-process plugin object (or module) under ``name``, as an entry point would be."""
        from hub.plugins import get_plugin_manager

        pm = get_plugin_manager()
        if not pm.add_plugin(plugin, name):
            failure = pm.failures[name]
            raise AssertionError(f"plugin '{name}' was refused by the hub: {failure.error}")
        self._registered.append((plugin, name))

    def install_entry_point(self, name: str, module: str, search_path=None, version: str = "0.1") -> None:
        """Make module ``module`` (found on ``search_path``) an installed ``mmhub`` plugin called ``name``.

        Writes a small ``*.dist-info`` with the entry point under the hub's root and puts it on
        ``sys.path`` (and on ``PYTHONPATH`` for :meth:`env`), so both this process and subprocesses
        find the plugin exactly as they find a pip-installed one. The plugin is added to those loaded.
        """
        import importlib

        site = self.root / "site"
        write_dist_info(site, f"mmhub-test-{name}", version, name, module)
        for path in (str(site), *([str(search_path)] if search_path else [])):
            if path not in self._paths:
                self._paths.append(path)
                sys.path.insert(0, path)
        importlib.invalidate_caches()
        if name not in self.plugins:
            self.plugins.append(name)
        self._set("HUB_PLUGINS", ",".join(self.plugins))
        self._set("PYTHONPATH", self.env_overrides()["PYTHONPATH"])
        reset_hub_state()

    def add_model(self, model_id: str, **fields) -> None:
        """Add an entry to the temporary catalogue (``HUB_CATALOG``), e.g. a tiny model's directory."""
        self._entries[model_id] = fields
        self._write_catalog()
        reset_hub_state(plugins=False)

    def _write_catalog(self) -> None:
        import yaml

        text = yaml.safe_dump({"models": self._entries}, sort_keys=True) if self._entries else ""
        self.catalog_path.write_text(text, encoding="utf-8")

    # -- running the hub ----------------------------------------------------------------------------
    def env(self, **extra: str) -> dict[str, str]:
        """The whole environment for a subprocess running this hub (``extra`` added)."""
        env = {**os.environ, **self.env_overrides(), **extra}
        env.pop("HUB_DEBUG", None)
        return env

    def python(self, code: str, timeout: float = 120.0):
        """Run ``python -c code`` in this hub's environment; the CompletedProcess."""
        import subprocess

        return subprocess.run([sys.executable, "-c", code], env=self.env(), capture_output=True,
                              text=True, timeout=timeout)

    def plugin_problems(self) -> list[str]:
        """Why each plugin under test did not load (import error and traceback, or not installed); empty if all did."""
        return plugins_not_loaded()

    def run_cli(self, *args: str, timeout: float = 300.0):
        """Run ``hub ARGS`` as a separate process in this hub's environment (see :mod:`hub.testing.cli`)."""
        from hub.testing.cli import run_hub

        return run_hub(list(args), env=self.env(), timeout=timeout)

    def invoke(self, *args: str):
        """Run ``hub ARGS`` in this process with click's CliRunner, plugin commands included."""
        from hub.testing.cli import invoke_hub

        return invoke_hub(list(args))


def plugins_not_loaded() -> list[str]:
    """Why each plugin under test (named in ``HUB_PLUGINS``) did not load: its import error (with the traceback)
    or the fact that no such plugin is installed. Empty when all of them loaded."""
    from hub.plugins import get_plugin_manager, installed_plugin_names

    pm = get_plugin_manager()
    wanted = [p.strip() for p in os.environ.get("HUB_PLUGINS", "").split(",") if p.strip()]
    problems = []
    for name in wanted:
        failed = pm.failures.get(name)
        if failed is not None:
            problems.append(f"the plugin under test '{name}' failed to load: {failed.error}"
                            + (f"\n{failed.traceback.rstrip()}" if failed.traceback else ""))
        elif name in pm.unknown_requested:
            problems.append(f"the plugin under test '{name}' is not installed: no entry point of that name in the "
                            f"'mmhub' group (installed: {', '.join(installed_plugin_names()) or 'none'}); install it "
                            "(pip install -e .) or fix the name in mmhub_plugins")
    return problems


class PluginNotLoadedError(AssertionError):
    """The plugin under test did not load, so nothing about its models can be checked; says why."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


def write_dist_info(site: Path, distribution: str, version: str, name: str, module: str) -> Path:
    """A ``*.dist-info`` under ``site`` declaring ``module`` as the ``mmhub`` entry point ``name``, as pip writes it."""
    info = Path(site) / f"{distribution.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {distribution}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[mmhub]\n{name} = {module}\n")
    return info


def reset_hub_state(plugins: bool = True) -> None:
    """Forget loaded plugins, the built catalogue, cached task tables and loaded models."""
    import importlib

    if plugins:
        from hub.plugins import reset_plugin_manager

        reset_plugin_manager()
    from hub.api import invalidate_catalog

    invalidate_catalog()
    table = importlib.import_module("hub.tasks.table")
    table.invalidate()  # the task table, built from the plugins' register_tasks
    device = sys.modules.get("hub.device")
    if device is not None:
        device.MODEL_CACHE.clear()


def _default_cache(folder: str) -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, folder)
