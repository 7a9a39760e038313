"""Every hook a plugin can implement. Plugins mark implementations with ``hub.hookimpl``.

A plugin is a module (or object) registered under the entry-point group ``mmhub``.
Hooks *register*; they do not work: registration returns cheap data, and the heavy
work (importing torch or a backbone library, reading weights) happens only inside
``load_model`` and ``trainable``.

How the hub calls hooks (see :mod:`hub.plugins`):

- *Routed* hooks, about one model (``load_model``, ``trainable``, ``model_options``), go only to
  the plugin named in ``spec.plugin``, through :func:`hub.plugins.call_plugin`; no other plugin
  sees them, so an implementation that forgets to check ``spec.plugin`` cannot take over
  another plugin's models.
- *Broadcast* hooks (``register_models``, ``register_tasks``, ``register_backends``, ``register_commands``,
  ``spec_for_path``) are called plugin by plugin, each call isolated: a plugin that raises
  loses that contribution only. The order is stable: the core, the shipped plugins, then the
  rest by distribution name; a task name, alias or model id declared twice stays with the
  first, and only the later declaration is dropped (with a warning naming both plugins).
- Every call (and the plugin's import) runs with ``sys.stdout`` sent to stderr.
- An exception other than :class:`hub.errors.HubError` raised by an implementation becomes a
  :class:`hub.errors.PluginError` naming the plugin and what failed (``hub --debug`` shows the
  original traceback). A ``HubError`` passes through to the user unchanged.
- Implementations are validated when the plugin loads: a misspelled hook name or argument
  disables that plugin (shown by ``hub plugins``), never the hub.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import pluggy

if TYPE_CHECKING:  # the types are named for readers and checkers; importing them here would import torch
    # DeviceManager is hub.device.DeviceManager: not imported even here, since the device manager reads the backend
    # table, which the plugin manager (and so these hookspecs) builds, and the contract imports no table
    import click

    from hub.options import Option
    from hub.spec import ModelSpec
    from hub.tasks.info import TaskInfo
    from hub.tasks.base import Pipeline
    from hub.train.adapter import TrainAdapter

hookspec = pluggy.HookspecMarker("mmhub")


@hookspec
def register_models(register: Callable[[ModelSpec | dict], None]) -> None:
    """Declare the models this plugin serves.

    When called: each time the catalogue is built (every ``hub list``/``hub info``/``hub.load``),
    so it must be cheap: no torch, no backbone import, no file or network I/O beyond small reads.

    Arguments: ``register(spec)`` where ``spec`` is a :class:`hub.spec.ModelSpec` or a dict
    with the catalogue fields (``id``, ``task``, ``source``, ...). ``plugin`` defaults to this
    plugin's name. A plugin that keeps its models in a catalogue file (the format of ``registry.yaml``)
    ships it as package data and calls ``hub.plugin_kit.register_catalog(register, __file__)``, which
    registers every entry of the ``catalog.yaml`` beside the module (read through the hub's cached loader).

    Every entry is validated (a ModelSpec object too). All or nothing per plugin: if the hook
    raises, or any entry is invalid (unknown task or field, registered twice, or an id or alias
    that another plugin serves), none of this plugin's entries are kept and ``hub plugins``
    shows why. A plugin may replace the ``registry.yaml`` entries that name it (with a warning).

    Returns: nothing (the return value is ignored). Every plugin's implementation is called.
    """


@hookspec
def register_tasks(register: Callable[[TaskInfo | dict], None]) -> None:
    """Declare the tasks this plugin brings (the core declares its own 11 through this hook too).

    When called: each time the task table is built (the first task lookup of a process, and again
    after plugins change), so it must be cheap: no torch, no backbone import, no I/O. The core's
    built-in plugin (``core``) declares first, then the shipped plugins, then every other plugin by
    distribution name.

    Arguments: ``register(task)`` where ``task`` is a :class:`hub.tasks.TaskInfo` or a dict with its
    fields: ``name``, ``modality`` (nlp, vision, speech or crossmodal), ``inputs`` (text, image,
    audio, image+text, or a kind of the plugin's own, which needs ``loader``), ``result``
    (``"module:Class"``, a dataclass subclassing :class:`hub.tasks.results.Result`, with ``to_dict``,
    ``from_dict`` and ``summary``; its module must not import torch), and optionally ``description``,
    ``aliases``, ``loader`` (``"module:function"`` taking the bytes of one input and returning what
    the pipeline takes), ``view`` (``table``: one line per input, or ``text``: a block per input) and
    ``save`` (``"module:function"`` called as ``save(result, input_name, source_input, out_dir)`` for
    ``hub run --save-dir``, writing through :mod:`hub.io` and returning the paths written). The
    references are imported only when used.

    If the hook raises, or any declaration is invalid, none of this plugin's tasks are kept and
    ``hub plugins`` shows why; its models for those tasks are then left out. A name or alias that
    an earlier declaration took (the core's, another plugin's, or this plugin's own) stays with it:
    only the clashing task (its name taken) or alias is dropped, with a warning naming both plugins.

    Returns: nothing (the return value is ignored). Every plugin's implementation is called.
    """


@hookspec
def register_backends(register: Callable[[dict], None]) -> None:
    """Declare the runtimes this plugin brings: backends that ``--backend NAME`` (and ``HUB_BACKEND``) run a
    model's exported graphs on, beside ``torch`` and ``auto`` (the core declares ``onnx`` and ``openvino``
    through this hook too).

    When called: each time the backend table is built (the first backend lookup of a process, and again after
    plugins change), so it must be cheap: no runtime import, no I/O. The core declares first, then the shipped
    plugins, then the rest by distribution name; a backend name declared twice stays with the first.

    Arguments: ``register(backend)`` where ``backend`` is a dict with the fields of
    :class:`hub.runtimes.RuntimeInfo` (or one of those): ``name`` (lower-case; not ``torch`` or ``auto``), ``library`` (the distribution that runs the
    graphs: named when missing, its version keys the exports cached for it), ``suffix`` (the graph file's
    suffix in an export of its own format, e.g. ``".gguf"``), ``reads`` (the export formats it runs, its own
    first: a model that is no export is exported on first use in the first of them that ``hub export``
    writes, onnx or openvino) and ``opener`` (``"module:function"`` taking ``(path, threads, dtype)`` and
    returning a :class:`hub.export.runtime.Graph`; imported only when a graph opens).

    All or nothing per plugin: if the hook raises or a declaration is invalid, none of this plugin's backends
    are kept and ``hub plugins`` shows why.

    Returns: nothing (the return value is ignored). Every plugin's implementation is called.
    """


@hookspec(firstresult=True)
def load_model(spec: ModelSpec, device_manager: DeviceManager, options: dict[str, Any]) -> Pipeline | None:
    """Load the model for ``spec`` and return a ready :class:`hub.tasks.base.Pipeline`.

    When called: by ``hub.load``/``hub.run``/``hub run`` when the model is not in the
    device manager's cache; only the plugin named in ``spec.plugin`` is called.

    Arguments: ``spec`` (:class:`hub.spec.ModelSpec`), ``device_manager``
    (:class:`hub.device.DeviceManager`: place the module with ``device_manager.place``),
    ``options`` (dict of load options from the user: ``trust_remote_code``, and the model's call
    options, already checked by name: pass them on, ``Pipeline(spec, model, device_manager,
    **options)``, so they become the pipeline's defaults; a pipeline that drops them is a
    :class:`hub.errors.PluginError`).

    Returns: a pipeline whose ``task`` is ``spec.task`` (anything else is a
    :class:`hub.errors.PluginError`), or ``None`` when this plugin cannot serve ``spec`` (e.g. an
    unsupported task), which the hub reports as :class:`hub.errors.NoLoaderError`. firstresult:
    declared so for direct pluggy callers; the hub itself calls only the named plugin.
    """


@hookspec(firstresult=True)
def spec_for_path(path: str, task: str | None) -> ModelSpec | None:
    """Recognise a local model directory saved in this plugin's library format.

    When called: by ``hub.load(PATH)``/``hub run PATH`` for a directory with no ``mmhub.yaml``.

    Arguments: ``path`` (str, an existing directory), ``task`` (canonical task name or None
    when the user gave none).

    Returns: a :class:`hub.spec.ModelSpec` with ``source`` set to ``path`` and ``plugin`` set
    to this plugin's name, or None when the directory is not in this plugin's format. Read only
    small files (configs), never weights. firstresult: plugins are asked one at a time (last
    registered first); the first valid spec wins, and a plugin that raises or returns an invalid
    spec is skipped and named in a warning (or in the error, when no plugin recognises it).
    """


@hookspec(firstresult=True)
def trainable(spec: ModelSpec, task: str, num_labels: int, labels: list[str] | None,
              device_manager: DeviceManager) -> TrainAdapter | None:
    """Return the trainable parts of ``spec`` for fine-tuning on ``task``.

    When called: by ``hub finetune`` / :func:`hub.train.finetune` before training starts, and
    by ``hub eval`` / :func:`hub.train.evaluate`; only the plugin named in ``spec.plugin`` is called.

    Arguments: ``spec`` (ModelSpec), ``task`` (canonical task name), ``num_labels`` and
    ``labels`` (class names, or None for contrastive tasks), ``device_manager``. Keep the
    checkpoint's head when it was trained for exactly ``labels`` (set ``new_head`` on the
    adapter when one is initialised); ``labels=None`` for a classification task asks for the
    model as saved, its head and labels included, or :class:`hub.train.adapter.NoHeadError`.
    For a task the hub has no training for, the adapter's ``kind`` is the plugin's own
    :class:`hub.train.adapter.TrainKind`; the hub then calls first with ``labels=None`` (the model
    as saved, whose kind reads the data) and again with the classes the data declares when
    they differ from the model's.

    Returns: a :class:`hub.train.adapter.TrainAdapter` (module, loss, collate, save), or
    None when this plugin does not train ``spec`` for ``task``. firstresult: declared so for
    direct pluggy callers; the hub itself calls only the named plugin.
    """


@hookspec(firstresult=True)
def model_options(spec: ModelSpec) -> list[Option] | None:
    """The call options of the pipeline that would serve ``spec``, without loading it.

    When called: by ``hub info`` (and :func:`hub.model_options.model_options`), routed only to the
    plugin named in ``spec.plugin``. Must stay cheap: no torch, no backbone import, no weights
    (read the pipeline class's ``call_options``; ``hub.plugin_kit.pipeline_options`` does it).

    Arguments: ``spec`` (:class:`hub.spec.ModelSpec`).

    Returns: a list of :class:`hub.options.Option`, or None when this plugin does not serve
    ``spec``. firstresult: the first non-None result wins.
    """


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add click commands to the ``hub`` command line.

    When called: once, when the ``hub`` CLI starts (before arguments are parsed).

    Arguments: ``cli``, the root :class:`click.Group`; call ``cli.add_command(cmd)``.

    Returns: nothing. Every plugin's implementation is called, one at a time: if it raises, or
    replaces a command that already exists, none of its commands are added and ``hub plugins``
    shows why. Keep imports inside the command's function so that ``hub list`` stays fast.
    """
