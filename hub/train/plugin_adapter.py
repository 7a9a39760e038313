"""The TrainAdapter a model's plugin offers for a task (the routed ``trainable`` hook), checked: shared by
``finetune`` and ``evaluate`` (:mod:`hub.train.api`) and the plugin-kind path (:mod:`hub.train.kinds`)."""
from __future__ import annotations

from hub.errors import HubError, PluginError
from hub.plugins import call_plugin
from hub.train.adapter import KINDS, TrainAdapter, TrainKind


def get_adapter(spec, task: str, labels, device_manager):
    """The plugin's TrainAdapter for ``spec`` on ``task``, or a HubError saying it has none."""
    adapter = call_plugin(spec.plugin, "trainable", spec=spec, task=task, num_labels=len(labels) if labels else None,
                          labels=labels, device_manager=device_manager)
    if adapter is None:
        raise HubError(f"model '{spec.id}' cannot be fine-tuned for {task}: its plugin '{spec.plugin}' offers no "
                       "training for it. Try another --task or another model (hub list --task ...)")
    if not isinstance(adapter, TrainAdapter):
        raise PluginError(spec.plugin, f"plugin '{spec.plugin}' returned a {type(adapter).__name__} instead of a "
                                       f"TrainAdapter for model '{spec.id}'; the plugin is at fault")
    _check_kind(spec, adapter)
    if adapter.labels is None and labels:
        adapter.labels = list(labels)
    return adapter


def _check_kind(spec, adapter) -> None:
    """An adapter's kind is a built-in one (KINDS) or a TrainKind; anything else is the plugin's fault."""
    if isinstance(adapter.kind, TrainKind) or adapter.kind in KINDS:
        return
    raise PluginError(spec.plugin, f"plugin '{spec.plugin}' returned an adapter of the unknown kind "
                                   f"{adapter.kind!r} for model '{spec.id}'; use one of {', '.join(KINDS)} or a "
                                   "hub.train.adapter.TrainKind; the plugin is at fault")
