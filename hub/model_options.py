"""The call options a model's plugin declares (the routed ``model_options`` hook), asked without loading the model.

Above :mod:`hub.options` (the option values and their checks) because it asks the plugin manager.
"""
from __future__ import annotations

from hub.errors import PluginError
from hub.options import Option, validate_options
from hub.plugins import call_plugin


def model_options(spec) -> list[Option] | None:
    """The call options of the pipeline that serves ``spec``, asked of its plugin only, without loading it.

    None when the plugin does not say (it lacks the ``model_options`` hook, or does not serve the task).
    """
    found = call_plugin(spec.plugin, "model_options", spec=spec)
    if found is None:
        return None
    if not all(isinstance(option, Option) for option in found):
        raise PluginError(spec.plugin, f"plugin '{spec.plugin}' returned something other than a list of "
                                       f"hub.options.Option from model_options for model '{spec.id}'")
    return list(found)


def check_model_options(spec, given: dict) -> None:
    """Check ``given`` against the options ``spec``'s plugin declares, before loading the model (if it says)."""
    declared = model_options(spec)
    if declared is not None:
        validate_options(declared, given, f"{spec.id} ({spec.task})")
