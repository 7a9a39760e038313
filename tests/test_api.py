"""hub.load's load options: the hub's own (trust_remote_code) and the model's call options, never silently lost.

An unknown load option, or a value its option refuses, is an OptionError listing the valid load options
(before the weights load when the plugin declares its options); a plugin whose load_model drops the load
options it was given is a PluginError naming it, instead of a pipeline that quietly ignores them.
"""
from __future__ import annotations

import pytest

import hub
from hub.errors import OptionError, PluginError
from hub.options import TOP_K, Option
from hub.tasks.base import Pipeline
from hub.tasks.results import Classification, LabelScore

LETTERS = "abcde"
MINILM = "all-minilm-l6-v2"


class Letters(Pipeline):
    """Classifies a text by its most frequent letters among a-e."""

    task = "text-classification"
    call_options = (TOP_K, Option("mode", str, "count", "how letters are scored", choices=("count", "share")))

    def preprocess(self, items, **kwargs):
        return items

    def forward(self, batch, mode="count", **kwargs):
        return [[text.count(c) / (len(text) if mode == "share" else 1) for c in LETTERS] for text in batch]

    def postprocess(self, outputs, items, top_k=5, **kwargs):
        return [Classification(sorted((LabelScore(c, float(s)) for c, s in zip(LETTERS, row)),
                                      key=lambda x: -x.score)[:top_k]) for row in outputs]


class Loader:
    """A plugin serving 'NAME-keeps' (passes its load options on) and 'NAME-drops' (loses them, like a
    load_model that builds its pipeline without ``**options``); ``declares`` adds the model_options hook."""

    def __init__(self, name: str):
        self.name, self.loads = name, 0

    @hub.hookimpl
    def register_models(self, register):
        for kind in ("keeps", "drops"):
            register({"id": f"{self.name}-{kind}", "task": "text-classification", "source": "nowhere"})

    @hub.hookimpl
    def load_model(self, spec, device_manager, options):
        self.loads += 1
        kept = options if spec.id.endswith("-keeps") else {}
        return Letters(spec, None, device_manager, **kept)


class Declaring(Loader):
    @hub.hookimpl
    def model_options(self, spec):
        return list(Letters.call_options)


@pytest.fixture
def plugins(fresh_hub):
    pm = hub.get_plugin_manager()
    found = {"declares": Declaring("declares"), "silent": Loader("silent")}
    for name, plugin in found.items():
        pm.register(plugin, name=name)
    yield found
    from hub.device import MODEL_CACHE

    MODEL_CACHE.clear()


UNKNOWN = ["top_kk", "topk", "TOP_K", "k", "device_map", "revision", "torch_dtype", "mode_", "labels", "trust_code"]


@pytest.mark.parametrize("name", UNKNOWN)
@pytest.mark.parametrize("model", ["declares-keeps", "silent-keeps"])
def test_an_unknown_load_option_is_refused_listing_the_valid_ones(model, name, plugins):
    with pytest.raises(OptionError) as caught:
        hub.load(model, cache=False, **{name: 3})
    message = str(caught.value)
    assert f"does not take the load option '{name}'" in message and model in message
    assert "Valid load options: trust_remote_code, top_k, mode." in message
    if name in ("top_kk", "topk", "mode_"):
        assert "Did you mean" in message
    assert plugins["declares"].loads == 0  # a plugin that declares its options: refused before any loading


@pytest.mark.parametrize("name", UNKNOWN)
def test_an_unknown_load_option_of_a_shipped_model_is_refused_before_loading(name, fresh_hub):
    with pytest.raises(OptionError, match=f"does not take the load option '{name}'.*trust_remote_code"):
        hub.load(MINILM, cache=False, **{name: 3})


@pytest.mark.parametrize("options, words", [
    ({"top_k": 0}, "'top_k'"), ({"top_k": "many"}, "'top_k'"), ({"top_k": True}, "'top_k'"),
    ({"mode": "mean"}, "'mode'"), ({"trust_remote_code": "yes"}, "'trust_remote_code'"),
    ({"trust_remote_code": 1}, "'trust_remote_code'"),
])
@pytest.mark.parametrize("model", ["declares-keeps", "silent-keeps"])
def test_a_load_option_value_its_option_refuses_is_an_option_error(model, options, words, plugins):
    with pytest.raises(OptionError, match=words):
        hub.load(model, cache=False, **options)


@pytest.mark.parametrize("model", ["declares-keeps", "silent-keeps"])
def test_load_options_become_the_models_defaults(model, plugins):
    pipe = hub.load(model, cache=False, top_k="2", mode="share")
    result = pipe("aab")
    assert [x.label for x in result.labels] == ["a", "b"] and result.labels[0].score == pytest.approx(2 / 3)
    assert len(pipe("aab", top_k=4).labels) == 4  # the call's own value wins


@pytest.mark.parametrize("options", [{"top_k": 2}, {"mode": "share"}, {"top_k": 1, "mode": "share"},
                                     {"top_k": 2, "trust_remote_code": False}])
@pytest.mark.parametrize("model", ["declares-drops", "silent-drops"])
def test_a_plugin_that_drops_its_load_options_is_named(model, options, plugins):
    with pytest.raises(PluginError) as caught:
        hub.load(model, cache=False, **options)
    message = str(caught.value)
    plugin = model.split("-")[0]
    assert f"plugin '{plugin}' dropped the load option(s)" in message and f"model '{model}'" in message
    assert all(name in message for name in options if name != "trust_remote_code")
    assert hub.load(model, cache=False)("ab").labels  # without load options it still loads


def test_trust_remote_code_is_a_load_option_of_every_model(plugins):
    assert hub.load("declares-keeps", cache=False, trust_remote_code=False)("ab").labels
