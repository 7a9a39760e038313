"""Command-line helpers for plugin tests: run ``hub`` and check that a refusal is one clean line.

``run_hub`` starts ``hub`` as its own process (the way a user meets it, entry points and all);
``invoke_hub`` runs it in this process through click's CliRunner (fast, sees in-process plugins).
``assert_clean_error`` checks what every refusal must look like: its exit code (2 by default),
exactly one ``Error:`` line naming the problem, nothing but ``Error:``/``Warning:`` lines, no traceback.
"""
from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass

_RUN_CLI = "import sys; from hub.cli import main; sys.argv[0] = 'hub'; main()"


@dataclass
class HubResult:
    """What a ``hub`` run gave: exit code, stdout and stderr (both text)."""

    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        """stdout and stderr together."""
        return self.stdout + self.stderr


def run_hub(args: list[str], env: dict | None = None, timeout: float = 300.0,
            input: str | None = None) -> HubResult:
    """Run ``hub ARGS`` in a new Python process of this interpreter; its exit code and output."""
    done = subprocess.run([sys.executable, "-c", _RUN_CLI, *args], env=env, capture_output=True, text=True,
                          timeout=timeout, input=input)
    return HubResult(done.returncode, done.stdout, done.stderr)


def invoke_hub(args: list[str], input: str | None = None) -> HubResult:
    """Run ``hub ARGS`` in this process (click's CliRunner), with the plugins' commands added."""
    from click.testing import CliRunner

    from hub.cli import _add_plugin_commands, cli

    before = dict(cli.commands)
    _add_plugin_commands()
    try:
        runner = _runner(CliRunner)
        result = runner.invoke(cli, args, input=input, catch_exceptions=True)
    finally:
        cli.commands.clear(), cli.commands.update(before)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"'hub {' '.join(args)}' raised {type(result.exception).__name__}: "
                             f"{result.exception}") from result.exception
    return HubResult(result.exit_code, result.stdout, _stderr(result))


def _runner(cls):
    try:
        return cls(mix_stderr=False)
    except TypeError:  # click >= 8.2 keeps stderr apart already
        return cls()


def _stderr(result) -> str:
    try:
        return result.stderr
    except ValueError:
        return ""


def assert_clean_error(result: HubResult, *words: str, exit_code: int = 2) -> str:
    """Assert a refusal: ``exit_code``, one ``Error:`` line containing every word, no traceback.

    Returns the error line.
    """
    shown = result.output
    if result.exit_code != exit_code:
        raise AssertionError(f"expected exit code {exit_code}, got {result.exit_code}; output:\n{shown}")
    if "Traceback" in shown:
        raise AssertionError(f"the refusal printed a traceback; output:\n{shown}")
    lines = [line for line in shown.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("Error: ")]
    if len(errors) != 1:
        raise AssertionError(f"expected exactly one 'Error:' line, got {len(errors)}; output:\n{shown}")
    stray = [line for line in lines if not line.startswith(("Error: ", "Warning: "))]
    if stray:
        raise AssertionError(f"a refusal prints only 'Error:'/'Warning:' lines; also got {stray!r}")
    missing = [w for w in words if w not in errors[0]]
    if missing:
        raise AssertionError(f"the error line does not name {missing!r}: {errors[0]}")
    return errors[0]


def assert_ok(result: HubResult) -> str:
    """Assert ``hub`` succeeded (exit 0, no traceback); returns its stdout."""
    if result.exit_code != 0 or "Traceback" in result.output:
        raise AssertionError(f"hub failed with exit code {result.exit_code}; output:\n{result.output}")
    return result.stdout
