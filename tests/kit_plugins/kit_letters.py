"""A fixture plugin for the test kit: one model that keeps the contract and one per property that breaks it.

``letters`` embeds a text as its counts of the letters a-e and takes one option, ``scale``. Each
``broken-*`` model serves the same task but breaks one property of the contract on purpose.
"""
from __future__ import annotations

from hub import hookimpl
from hub.errors import OptionError
from hub.options import Option
from hub.tasks.base import Pipeline
from hub.tasks.results import Classification, Embedding, LabelScore

MMHUB_PLUGIN_API = "1.0"
LETTERS = "abcde"


class Letters(Pipeline):
    """Embeds a text as its counts of a-e, times ``scale``."""

    task = "text-embedding"
    call_options = (Option("scale", float, 1.0, "factor applied to every count", minimum=0, exclusive_minimum=True),)

    def length(self, item):
        return len(item)

    def preprocess(self, items, **kwargs):
        import torch

        return torch.tensor([[text.count(c) for c in LETTERS] for text in items], dtype=torch.float32)

    def forward(self, batch, scale=1.0, **kwargs):
        return batch * scale

    def postprocess(self, outputs, items, **kwargs):
        return [Embedding(row) for row in outputs.tolist()]


class DropsLast(Letters):
    def postprocess(self, outputs, items, **kwargs):
        return super().postprocess(outputs, items)[:-1] if len(items) > 1 else super().postprocess(outputs, items)


class SortsResults(Letters):
    def run_batches(self, prepared, batch_size, progress, **kwargs):
        results = super().run_batches(prepared, batch_size, progress, **kwargs)
        return sorted(results, key=lambda r: r.embedding)


class ListForOne(Letters):
    def __call__(self, inputs, **kwargs):
        return super().__call__(inputs if isinstance(inputs, list) else [inputs], **kwargs)


class RunsOnEmpty(Letters):
    def __call__(self, inputs, batch_size=None, progress=False, **kwargs):
        if inputs == []:
            self.preprocess([], **kwargs)
            return []
        return super().__call__(inputs, batch_size=batch_size, progress=progress, **kwargs)


class LosesOrderAcrossBatches(Letters):
    """Keeps the input order when everything fits in one batch, but not across several batches."""

    def run_batches(self, prepared, batch_size, progress, **kwargs):
        size = int(batch_size or self.default_batch_size)
        if size >= len(prepared):
            return self.run_one_batch(prepared, **kwargs)
        order, out = self.batch_order(prepared), []
        for start in range(0, len(order), size):
            out += self.run_one_batch([prepared[i] for i in order[start:start + size]], **kwargs)
        return out


class WrongType(Letters):
    def postprocess(self, outputs, items, **kwargs):
        return [Classification([LabelScore("a", float(row[0]))]) for row in outputs.tolist()]


class TupleEmbedding(Letters):
    def postprocess(self, outputs, items, **kwargs):
        return [Embedding(tuple(row)) for row in outputs.tolist()]


class TwoLineEmbedding(Embedding):
    def summary(self) -> str:
        return "counts:\n" + str(self.embedding)


class TwoLineSummary(Letters):
    def postprocess(self, outputs, items, **kwargs):
        return [TwoLineEmbedding(row) for row in outputs.tolist()]


class AcceptsAnything(Letters):
    def resolve_options(self, given):
        return {"scale": 1.0}


class ChecksLate(Letters):
    def resolve_options(self, given):
        self._given = given
        return {"scale": 1.0}

    def postprocess(self, outputs, items, **kwargs):
        if set(self._given) - {"scale"} or not isinstance(self._given.get("scale", 1.0), float):
            raise OptionError(f"bad options {self._given}")
        return super().postprocess(outputs, items)


PIPELINES = {"letters": Letters, "broken-count": DropsLast, "broken-order": SortsResults,
             "broken-single": ListForOne, "broken-empty": RunsOnEmpty, "broken-batch": LosesOrderAcrossBatches,
             "broken-type": WrongType, "broken-summary": TwoLineSummary, "broken-json": TupleEmbedding, "broken-options": AcceptsAnything,
             "broken-options-late": ChecksLate}


@hookimpl
def register_models(register):
    for model_id in PIPELINES:
        register({"id": model_id, "task": "text-embedding", "source": "builtin", "params": 0, "license": "mit",
                  "description": "Counts of the letters a-e"})


@hookimpl
def load_model(spec, device_manager, options):
    return PIPELINES[spec.id](spec, model=None, device_manager=device_manager, **options)


@hookimpl
def model_options(spec):
    return list(PIPELINES[spec.id].call_options)
