"""The ``hub`` command line: thin click commands over the Python API.

User mistakes (``HubError``) print one line naming the problem and the fix, and exit with
the error's code (2 for bad input) without a traceback. Any other exception prints one line
too and exits 1. ``hub --debug`` or ``HUB_DEBUG=1`` adds the traceback to every error.

A reader that closes stdout early (``hub list | head``) ends every verb quietly with exit 0, as
if the rest had been read: no message, no traceback (see :func:`hub.views.stop_writing`).
"""
from __future__ import annotations

import json
import os
import sys

import click

from hub.batch.command import batch_options, wants_batch
from hub.cli_commands import LAZY_COMMANDS, load_plugin_commands, add_all_commands, lazy_command
from hub.cli_types import LazyChoice
from hub.errors import HubError, capped
from hub.runtimes import BACKENDS


class HubGroup(click.Group):
    """A click group that turns errors into one clean line and an exit code, and warnings into lines."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        """Click's main, with usage errors and undecodable arguments printed as one line (exit 2)."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            check_arguments(sys.argv[1:] if args is None else list(args))
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except BrokenPipeError:
            code = _reader_gone()
        except click.exceptions.NoArgsIsHelpError as exc:
            exc.show()
            code = exc.exit_code
        except (click.UsageError, HubError) as exc:
            click.echo(usage_error_line(exc), err=True)
            code = exc.exit_code
        except click.ClickException as exc:
            exc.show()
            code = exc.exit_code
        except click.Abort:
            click.echo("Aborted!", err=True)
            code = 1
        try:
            sys.stdout.flush()  # output still buffered meets a reader that went away here, not at exit
        except BrokenPipeError:
            _reader_gone()  # the exit code stays the command's own
        sys.exit(code if isinstance(code, int) else 0)

    def list_commands(self, ctx):
        """Every command's name, the plugins' included, without importing the commands defined elsewhere."""
        load_plugin_commands(self)
        return sorted(set(self.commands) | set(LAZY_COMMANDS))

    def get_command(self, ctx, name):
        """The command ``name``: one defined here, one of LAZY_COMMANDS (imported now), else a plugin's."""
        if name in getattr(self, "plugin_commands", {}):
            load_plugin_commands(self)  # its plugin may be gone since
        command = self.commands.get(name)
        if command is None and name in LAZY_COMMANDS:
            command = self.commands[name] = lazy_command(name)
        if command is None:
            load_plugin_commands(self)
            command = self.commands.get(name)
        return command

    def format_commands(self, ctx, formatter):
        """Click's list of commands, a command not imported yet standing in as its help from LAZY_COMMANDS."""
        shown = []
        for name in self.list_commands(ctx):
            command = self.commands.get(name)
            if command is None and name in LAZY_COMMANDS:
                command = click.Command(name, help=LAZY_COMMANDS[name][1])
            if command is not None and not command.hidden:
                shown.append((name, command))
        if shown:
            limit = formatter.width - 6 - max(len(name) for name, _ in shown)
            with formatter.section("Commands"):
                formatter.write_dl([(name, command.get_short_help_str(limit)) for name, command in shown])

    def parse_args(self, ctx, args):
        """Click's parsing, where --help and --version print: a closed stdout ends it quietly."""
        try:
            return super().parse_args(ctx, args)
        except BrokenPipeError:
            raise click.exceptions.Exit(_reader_gone()) from None

    def invoke(self, ctx):
        import warnings

        debug = debug_enabled(ctx)
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            try:
                return super().invoke(ctx)
            except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
                raise
            except BrokenPipeError:  # the reader of stdout went away (e.g. '| head'): stop quietly
                ctx.exit(_reader_gone())
            except HubError as exc:
                _print_traceback(exc, debug)
                click.echo(f"Error: {exc}", err=True)
                ctx.exit(exc.exit_code)
            except Exception as exc:  # a bug, ours or a plugin's: one line unless --debug
                _print_traceback(exc, debug)
                message = capped(" ".join(str(exc).split()))  # a huge repr never makes a huge line
                hint = "" if debug else " (run with --debug for the traceback)"
                click.echo(f"Error: unexpected {type(exc).__name__}: {message}{hint}", err=True)
                ctx.exit(1)


def _reader_gone() -> int:
    """Stdout's reader went away: what is still buffered goes nowhere; the exit code (0, as if all was read)."""
    from hub.views import silence_stdout

    silence_stdout()
    return 0


def debug_enabled(ctx: click.Context | None = None) -> bool:
    """True when ``hub --debug`` was given or HUB_DEBUG is set to a true value."""
    if os.environ.get("HUB_DEBUG", "").strip().lower() not in ("", "0", "false", "no", "off"):
        return True
    return bool(ctx is not None and ctx.find_root().params.get("debug"))


def _print_traceback(exc: BaseException, debug: bool) -> None:
    if debug:
        import traceback

        click.echo("".join(traceback.format_exception(exc)).rstrip(), err=True)


def _show_warning(message, category, filename, lineno, file=None, line=None):
    click.echo(f"Warning: {message}", err=True)


def usage_error_line(exc: Exception) -> str:
    """One line for a usage error: click's message and where to find the command's help."""
    message = " ".join(str(getattr(exc, "format_message", exc.__str__)()).split())
    ctx = getattr(exc, "ctx", None)
    hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
    return f"Error: {message}{hint}"


def check_arguments(args: list[str]) -> None:
    """Refuse an argument that is not valid text (undecodable bytes), unless it names an existing path."""
    try:
        "".join(args).encode("utf-8")
        return  # every argument is valid text (the common case, checked without importing hub.inputs)
    except UnicodeEncodeError:
        pass
    from hub.inputs import printable, undecodable

    for position, arg in enumerate(args, 1):
        if undecodable(arg) and not _exists(arg):
            raise HubError(f"argument {position} ('{printable(arg)}') is not valid UTF-8 text; check the "
                           "terminal's encoding (locale) or convert the text to UTF-8")


def _exists(arg: str) -> bool:
    try:
        return os.path.exists(arg)
    except (OSError, ValueError):
        return False


def _echo_json(data) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def _table(rows: list[list[str]], headers: list[str]) -> None:
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows)]
    line = "  ".join(h.upper().ljust(w) for h, w in zip(headers, widths))
    click.echo(line.rstrip())
    for row in rows:
        click.echo("  ".join(str(x).ljust(w) for x, w in zip(row, widths)).rstrip())


def human_count(n: int | None) -> str:
    if not n:
        return "-"
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return str(n)


@click.group(cls=HubGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="mmhub", prog_name="hub")
@click.option("--debug", is_flag=True, help="Show the traceback of any error (also: HUB_DEBUG=1).")
def cli(debug):
    """mmhub: list, inspect, run and fine-tune models from many libraries through one hub."""


@cli.command("list")
@click.argument("pattern", required=False)
@click.option("--task", help="Only models for this task (aliases accepted).")
@click.option("--modality", help="Only models of this modality: nlp, vision, speech, crossmodal.")
@click.option("--plugin", help="Only models served by this plugin (wildcards accepted).")
@click.option("--all", "show_all", is_flag=True, help="Include models whose plugin is not installed.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
def list_cmd(pattern, task, modality, plugin, show_all, as_json):
    """List catalogued models (PATTERN: fnmatch wildcards, or a substring)."""
    from hub.api import list_models

    specs = list_models(pattern, task=task, modality=modality, plugin=plugin, installed_only=not show_all)
    if as_json:
        _echo_json([{"id": s.id, "task": s.task, "modality": s.modality, "plugin": s.plugin,
                     "params": s.params, "license": s.license, "source": s.source} for s in specs])
        return
    if not specs:
        click.echo("No models match. Try 'hub list --all' or 'hub install <plugin>'.", err=True)
        from hub.plugins import get_plugin_manager, plugin_switch_notes

        for note in plugin_switch_notes(get_plugin_manager()):
            click.echo(f"Note: {note}", err=True)
        return
    _table([[s.id, s.task, s.modality, s.plugin, human_count(s.params), s.license or "-"] for s in specs],
           ["id", "task", "modality", "plugin", "params", "license"])


@cli.command("info")
@click.argument("model_id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def info_cmd(model_id, as_json):
    """Show everything the catalogue knows about MODEL_ID (an id, alias or model directory)."""
    from hub.api import get_spec
    from hub.model_options import model_options
    from hub.options import option_lines

    spec = get_spec(model_id)
    data = spec.to_dict()
    options = model_options(spec)
    if as_json:
        _echo_json({**data, "options": None if options is None else [o.to_dict() for o in options]})
        return
    from hub.export.manifest import export_lines

    exported = export_lines(data)
    for key, value in data.items():
        if value in (None, "", [], {}):
            continue
        if key == "params":
            value = f"{value:,} ({human_count(value)})"
        elif key in ("accuracy", "flops"):
            from hub.published import field_text

            value = field_text(key, value)
        click.echo(f"{key + ':':<13}{value}")
    for line in exported:
        click.echo(line)
    if options is not None:
        click.echo("options:     " + ("(none)" if not options else "run with -o NAME=VALUE"))
        for line in option_lines(options):
            click.echo("  " + line)


@cli.command("tasks")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def tasks_cmd(as_json):
    """List the tasks (the core's, then those plugins declare) with their inputs, aliases and plugin."""
    from hub.tasks import list_tasks

    tasks = list_tasks()
    if as_json:
        _echo_json([t.to_dict() for t in tasks])
        return
    _table([[t.name, t.modality, t.inputs, ", ".join(t.aliases) or "-", t.plugin] for t in tasks],
           ["task", "modality", "inputs", "aliases", "plugin"])


@cli.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("-v", "--verbose", is_flag=True, help="Also show the traceback of each plugin error.")
def plugins_cmd(as_json, verbose):
    """List plugins: name, version, import time, hooks, and any error or warning."""
    from hub.api import catalog
    from hub.plugins import get_plugin_manager, plugin_switch_notes

    pm = get_plugin_manager()
    catalog()  # registration errors are recorded against their plugins too
    load_plugin_commands(cli)  # and so are those of register_commands
    rows = pm.info()
    notes = plugin_switch_notes(pm)
    notes += [f"plugin '{r.name}' {w}" for r in rows for w in r.warnings]
    if as_json:
        _echo_json([r.to_dict(verbose) for r in rows])
    elif rows:
        _table([[r.name, r.version or "-", r.distribution or "-", _ms(r.import_ms), ", ".join(r.hooks) or "-",
                 _status(r)] for r in rows], ["name", "version", "distribution", "import", "hooks", "status"])
    else:
        click.echo("No plugins installed. Try 'hub install transformers'.", err=True)
    for note in notes:
        click.echo(f"Warning: {note}", err=True)
    if verbose and not as_json:
        for r in rows:
            if r.traceback:
                click.echo(f"\n{r.name}: {r.error}\n{r.traceback.rstrip()}", err=True)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} ms" if value >= 1 else "<1 ms"


def _status(row) -> str:
    if row.status == "disabled":
        return "disabled by HUB_PLUGINS"
    return f"{row.status.upper()} {row.error}" if row.error else row.status


@cli.command("run")
@click.argument("model_id")
@click.argument("inputs", nargs=-1)
@click.option("--task", help="Run the model for another task of the same modality.")
@click.option("--device", help="cpu, cuda, cuda:N or mps (default: HUB_DEVICE, else best available).")
@click.option("--dtype", type=click.Choice(["auto", "fp32", "bf16", "fp16"]), help="Precision policy (default auto).")
@click.option("--backend", type=LazyChoice(BACKENDS),
              help="What runs the forward pass (default: HUB_BACKEND, else auto: the fastest 'hub bench' measured).")
@click.option("--batch-size", type=click.IntRange(1), help="Inputs per forward pass.")
@click.option("--label", "labels", multiple=True, help="Candidate label (zero-shot); repeat or comma-separate.")
@click.option("--text", "texts", multiple=True, help="A text to compare images against (image-text-similarity).")
@click.option("--top-k", type=click.IntRange(1), help="How many labels/candidates to return.")
@click.option("-o", "--option", "extra", multiple=True, metavar="KEY=VALUE",
              help="A task option, e.g. -o max_new_tokens=20 -o do_sample=true.")
@click.option("--trust-remote-code", is_flag=True, help="Allow code shipped with the weights to run.")
@click.option("--json", "as_json", is_flag=True, help="Print results as a JSON array, written as they come.")
@click.option("--server", metavar="URL", help="Run on a hub server ('hub serve') instead; API key from HUB_API_KEY.")
@click.option("--save-dir", type=click.Path(file_okay=False), metavar="DIR",
              help="Write each result's files here (tasks that save files, e.g. masks or audio).")
@batch_options
def run_cmd(model_id, inputs, task, device, dtype, backend, batch_size, labels, texts, top_k, extra, trust_remote_code,
            as_json, server, save_dir, **batch):
    """Run MODEL_ID on INPUTS: strings, file paths (image/audio/.txt), or - for one input per stdin line.

    Inputs are read, run and printed a few hundred at a time, so any number of stdin lines streams.
    For millions of inputs: --input FILE --output OUT.jsonl [--nproc N | --shard K/N] [--resume].
    """
    if wants_batch(batch):
        from hub.batch.command import run_batch_cmd

        return run_batch_cmd(model_id, inputs, task, device, dtype, backend, batch_size, labels, texts, top_k, extra,
                             trust_remote_code, server, save_dir, **batch)
    if not inputs:
        raise click.UsageError("Missing argument 'INPUTS...' (or give a file: --input FILE --output OUT.jsonl).")
    if server:
        from hub.client import run_on_server

        local = {"--device": device, "--dtype": dtype, "--backend": backend, "--trust-remote-code": trust_remote_code,
                 "--save-dir": save_dir}
        return run_on_server(server, model_id, inputs, task, batch_size, extra, labels, texts, top_k, as_json, local)

    from itertools import chain

    from hub import api
    from hub.device import requested, requested_backend
    from hub.model_options import check_model_options
    from hub.run_inputs import RUN_CHUNK, call_options, input_chunks, no_input_error
    from hub.tasks import TASKS
    from hub.views import ResultFiles, stop_writing, view_for

    spec = api.get_spec(model_id, task)
    requested(device, dtype), requested_backend(backend)  # a bad HUB_DEVICE / HUB_DTYPE / HUB_BACKEND fails early
    kwargs = call_options(extra, labels, texts, top_k)
    check_model_options(spec, kwargs)  # unknown or mistyped options fail before the weights load
    info = TASKS[spec.task]
    files = ResultFiles(info, save_dir) if save_dir else None  # a task that saves nothing fails here
    chunks = _read_own_kind(info, input_chunks(inputs, info.inputs, spec, max(RUN_CHUNK, batch_size or 0)))
    first = next(chunks, None)
    if first is None:
        raise no_input_error()
    load_options = {"trust_remote_code": True} if trust_remote_code else {}
    pipeline = api.load(model_id, device=device, dtype=dtype, task=task, backend=backend, **load_options)
    view = view_for(info, as_json)
    progress = _run_progress(spec.id)
    try:
        for names, items in chain([first], chunks):
            results = pipeline(items, batch_size=batch_size, **kwargs)
            view.add(names, results)
            if files is not None:
                files.save(names, items, results)
            progress.update(len(items))
        view.close()
    except BrokenPipeError:  # the reader went away (e.g. '| head'): stop quietly, like other tools
        stop_writing()
    finally:
        progress.close()
        if files is not None:
            files.close()


def _read_own_kind(info, chunks):
    """The chunks as they are, or, for a plugin's own kind of input, each file read by the task's loader."""
    from pathlib import Path

    if not info.loader:
        yield from chunks
        return
    for names, paths in chunks:
        yield names, [info.load_input(Path(p).read_bytes(), f"input file '{p}'") for p in paths]


def _run_progress(label: str):
    """A count of inputs done on stderr, when results go to a file or pipe and stderr is a terminal."""
    from tqdm.auto import tqdm

    shown = sys.stderr.isatty() and not sys.stdout.isatty()
    return tqdm(desc=label, unit="input", file=sys.stderr, disable=not shown, leave=False)


@cli.command("pin")
@click.argument("model_ids", nargs=-1)
@click.option("--file", "path", type=click.Path(dir_okay=False),
              help="Catalogue file (default: the shipped ones, registry.yaml and each plugin's catalog.yaml).")
@click.option("--dry-run", is_flag=True, help="Show the commits without writing the file.")
def pin_cmd(model_ids, path, dry_run):
    """Pin catalogue entries whose revision is a branch (e.g. main) to its current commit (needs network)."""
    from hub.pinning import pin, pin_shipped

    ids = list(model_ids) or None
    done = [(path, pin(path, ids, dry_run=dry_run))] if path else pin_shipped(ids, dry_run=dry_run)
    verb = "would pin" if dry_run else "pinned"
    for target, changes in done:
        for model_id, old, commit in changes:
            click.echo(f"{model_id}: {old} -> {commit}")
        click.echo(f"{verb} {len(changes)} entr{'y' if len(changes) == 1 else 'ies'} in {target}", err=True)


@cli.command("env")
@click.option("--device", help="Show the choice for this device instead.")
@click.option("--dtype", type=click.Choice(["auto", "fp32", "bf16", "fp16"]), help="Dtype policy to explain.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def env_cmd(device, dtype, as_json):
    """Show the device, the dtype policy and why, and library versions."""
    from hub.views import environment_report

    report = environment_report(device, dtype)
    if as_json:
        _echo_json(report)
        return
    for line in env_lines(report):
        click.echo(line)


def env_lines(report: dict) -> list[str]:
    """``hub env`` as text: 'name: value' rows, nested rows indented; every value at least 2 spaces after its name."""
    width = max((len(k) + 1 for k, v in report.items() if not isinstance(v, dict)), default=0) + 2
    lines = []
    for key, value in report.items():
        if not isinstance(value, dict):
            lines.append(f"{key + ':':<{width}}{value}")
            continue
        lines.append(f"{key}:")
        inner = max((len(str(k)) for k in value), default=0) + 2
        lines += [f"  {str(k):<{inner}}{v if v is not None else 'not installed'}" for k, v in value.items()]
    return lines


@cli.command("install")
@click.argument("name")
@click.option("-e", "--editable", is_flag=True, help="Install a local plugin in editable mode.")
@click.option("--no-deps", is_flag=True, help="Do not install the plugin's dependencies.")
@click.option("-y", "--yes", is_flag=True, help="Remove without asking what turns out not to be a plugin.")
def install_cmd(name, editable, no_deps, yes):
    """Install a plugin: a shipped plugin's short name (transformers, timm, openclip), a path, or a package."""
    from hub.install import install

    install(name, editable=editable, no_deps=no_deps, yes=yes)


@cli.command("uninstall")
@click.argument("name")
def uninstall_cmd(name):
    """Uninstall a plugin by its short name or distribution name."""
    from hub.install import uninstall

    uninstall(name)


def main():
    cli(prog_name="hub")


def _add_plugin_commands(group: click.Group | None = None) -> None:
    """Every command in ``group.commands`` (default: the hub's group): those imported when needed, the plugins'."""
    add_all_commands(group or cli)


if __name__ == "__main__":  # pragma: no cover
    main()
