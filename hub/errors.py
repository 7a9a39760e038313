"""Errors a user can act on. Each message names the thing at fault and the fix."""
from __future__ import annotations


def shell_command(*argv) -> str:
    """A command to suggest in a message: arguments shell-quoted, the whole between backticks."""
    import shlex  # here and difflib below: imported by the error that needs it, not by every start

    return "`" + shlex.join(str(a) for a in argv) + "`"


MAX_MESSAGE = 4000  # characters of an error message kept: its start and its end (the fix), the middle left out


def capped(text: str, limit: int = MAX_MESSAGE) -> str:
    """``text`` cut to at most about ``limit`` characters, keeping its start and its end."""
    if len(text) <= limit:
        return text
    tail = limit // 5
    head = limit - tail
    return f"{text[:head]} ... [{len(text) - head - tail} characters left out] ... {text[-tail:]}"


class HubError(Exception):
    """A mistake the user can fix; the CLI prints it without a traceback.

    Its message is capped (:func:`capped`): a value quoted from a huge input never makes a huge message."""

    exit_code = 2

    def __init__(self, *args):
        if args and isinstance(args[0], str):
            args = (capped(args[0]), *args[1:])
        super().__init__(*args)


class UnknownModelError(HubError, KeyError):
    def __init__(self, model_id: str, known: list[str]):
        import difflib

        self.model_id = model_id
        self.suggestions = difflib.get_close_matches(model_id, known, n=5, cutoff=0.4)
        if not self.suggestions:
            lowered = model_id.lower()
            self.suggestions = [k for k in known if lowered in k.lower()][:5]
        hint = f" Did you mean: {', '.join(self.suggestions)}?" if self.suggestions else ""
        super().__init__(f"unknown model id '{model_id}'.{hint} Run {shell_command('hub', 'list')} to see all models.")

    def __str__(self) -> str:  # KeyError would add quotes
        return self.args[0]


class UnknownTaskError(HubError, KeyError):
    def __init__(self, task: str, valid: list[str]):
        import difflib

        self.task = task
        close = difflib.get_close_matches(task, valid, n=3, cutoff=0.5)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        super().__init__(f"unknown task '{task}'.{hint} Valid tasks: {', '.join(valid)}.")

    def __str__(self) -> str:
        return self.args[0]


class TaskMismatchError(HubError):
    """A model asked for a task it cannot serve; names the model's own task and those it can run for."""

    def __init__(self, model_id: str, task: str, wanted: str, servable: list[str]):
        self.model_id, self.task, self.wanted, self.servable = model_id, task, wanted, servable
        super().__init__(
            f"model '{model_id}' cannot serve the task '{wanted}': it is a {task} model. Tasks it can run: "
            f"{', '.join(servable)}. For {wanted}, pick another model: {shell_command('hub', 'list', '--task', wanted)}"
        )


class CatalogError(HubError):
    """A catalogue file (registry.yaml or a user catalogue) is malformed."""

    def __init__(self, path, entry: str | None, field: str | None, problem: str):
        self.path, self.entry, self.field = str(path), entry, field
        where = str(path)
        if entry is not None:
            where += f", entry '{entry}'"
        if field is not None:
            where += f", field '{field}'"
        super().__init__(f"malformed catalogue {where}: {problem}")


class PluginClashWarning(UserWarning):
    """A plugin declared a name (task, alias or model id) that an earlier plugin had taken; the first keeps it."""


class PluginNotInstalledError(HubError):
    def __init__(self, model_id: str, plugin: str):
        self.model_id, self.plugin = model_id, plugin
        super().__init__(
            f"model '{model_id}' is served by the plugin '{plugin}', which is not installed "
            f"(or is disabled by HUB_PLUGINS). Install it with: {shell_command('hub', 'install', plugin)}"
        )


class NoLoaderError(HubError):
    def __init__(self, model_id: str, plugin: str):
        super().__init__(
            f"no plugin could load model '{model_id}': plugin '{plugin}' returned nothing for it. "
            f"Check the catalogue entry's task and source, or run {shell_command('hub', 'plugins')} to see load errors."
        )


class PluginError(HubError):
    """A plugin failed (raised, or returned something unusable); names the plugin and what failed.

    ``original`` keeps the plugin's own exception; ``hub --debug`` shows its traceback.
    """

    def __init__(self, plugin: str, message: str, original: BaseException | None = None):
        self.plugin, self.original = plugin, original
        super().__init__(message)


class ModelUnavailableError(HubError):
    """The weights are neither local nor cached, and cannot be downloaded now."""

    exit_code = 1


class WeightsError(HubError):
    """Model files on disk that are missing, truncated, corrupt or unsafe to load; names the path and the fix."""


class InputError(HubError):
    """An input (file, text, array) the task cannot use."""


class OptionError(InputError):
    """A call option (keyword or ``-o KEY=VALUE``) that is unknown, of the wrong type or out of range."""


class DependencyMissingError(HubError):
    exit_code = 1


class WriteError(HubError):
    """A file or directory the hub writes could not be written (disk full, read-only, no permission).

    The previous file or directory at that path is left as it was (see :mod:`hub.io`).
    """


class OutputDirError(HubError):
    """An output directory (``--out``) that the hub must not or cannot use."""


class IncompleteModelError(HubError):
    """A model directory whose ``hub finetune`` run has not finished (weights without ``mmhub.yaml``)."""
