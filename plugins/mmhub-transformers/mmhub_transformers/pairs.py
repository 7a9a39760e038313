"""Pipelines that score pairs of texts: zero-shot text classification (NLI) and text ranking (cross-encoders).

Both run a sequence-classification head on text pairs. The pair is the unit of batching: a call expands
each input into its pairs (text x hypothesis, query x passage), the base pipeline's batch path runs the
pairs sorted by length in batches of ``batch_size``, and the outputs are grouped back into one result per
input, in input order.

Zero-shot classification (``pipe(texts, labels=[...], hypothesis_template=..., multi_label=...)``): each
label is written into the hypothesis template and paired with the text (truncating only the text, so the
hypothesis is never cut), as transformers' zero-shot pipeline does. The scores are a softmax of the
entailment logits over the labels, or with ``multi_label`` (and always for a single label) each label's
softmax of entailment against contradiction. The entailment and contradiction ids come from the model's
``label2id``.

Text ranking (``pipe(queries, texts=[...passages], top_k=...)``): each query is paired with every passage
and the result of a query is a :class:`~hub.tasks.results.Classification` whose labels are the passages,
best first, each with its score and its position in ``texts`` as ``index``. The score is the head's one
logit through the activation the model declares (sentence-transformers' ``activation_fn``; sigmoid when
it declares none), or the logit itself with ``raw_scores``. ``run_batches`` also takes ``(query, passage)``
tuples and then returns one score per pair: ``POST /v1/rerank`` submits pairs, so that the pairs of
concurrent requests share batches.
"""
from __future__ import annotations

from hub.errors import HubError, InputError, OptionError
from hub.options import LABELS, TOP_K, Option
from hub.tasks.results import Classification, LabelScore
from mmhub_transformers.classify import HeadPipeline
from mmhub_transformers.loading import read_json

DEFAULT_TEMPLATE = "This example is {}."
HYPOTHESIS_TEMPLATE = Option("hypothesis_template", str, DEFAULT_TEMPLATE, "the hypothesis each label is written "
                             "into, with {} where the label goes")
MULTI_LABEL = Option("multi_label", bool, False, "score each label on its own (entailment against contradiction) "
                     "instead of a softmax over the labels")
PASSAGES = Option("texts", list, None, "the passages to rank against each query (command line: --text)")
RANK_TOP_K = TOP_K.but(help="how many of the best passages to return, best first (all of them when there are "
                            "fewer)")
RAW_SCORES = Option("raw_scores", bool, False, "return the model's logits, without its activation (sigmoid)")
ACTIVATIONS = {"Sigmoid": "sigmoid", "Identity": None, "Tanh": "tanh"}


def check_strings(values, what: str, example: str) -> list[str]:
    """A non-empty list of distinct, non-blank strings; an OptionError naming ``what`` and the fix otherwise."""
    if not isinstance(values, (list, tuple)) or not values:
        raise OptionError(f"{what} must be a non-empty list of strings, e.g. {example}; got {values!r}")
    for i, value in enumerate(values):
        if not isinstance(value, str) or not value.strip():
            raise OptionError(f"{what}[{i}] must be a non-empty string, e.g. {example}; got {value!r}")
    return list(values)


def check_template(template: str) -> str:
    """A hypothesis template with one '{}' where the label goes; an OptionError otherwise."""
    if "{}" not in template:
        raise OptionError(f"option 'hypothesis_template' needs '{{}}' where the label goes, e.g. "
                          f"'{DEFAULT_TEMPLATE}'; got {template!r}")
    try:
        template.format("label")
    except (IndexError, KeyError, ValueError) as exc:
        raise OptionError(f"option 'hypothesis_template' {template!r} cannot be filled ({exc}); write the label's "
                          "place as '{}' and double any other braces ('{{' and '}}')") from None
    return template


class PairPipeline(HeadPipeline):
    """Scores text pairs with a sequence-classification head; subclasses say which pairs and what result."""

    auto_class = "AutoModelForSequenceClassification"
    truncation: str | bool = True
    empty_input = "the input is empty; give some text"  # what an empty input is told

    def prepare(self, item):
        """The input text; an InputError when it is empty or only whitespace (a pair needs both its texts)."""
        text = super().prepare(item)
        if not text.strip():
            raise InputError(f"{self.spec.id}: {self.empty_input}")
        return text

    def pairs_for(self, item: str, options: dict) -> list[tuple[str, str]]:
        """The pairs one input expands into."""
        raise NotImplementedError

    def combine(self, item: str, outputs: list, options: dict):
        """One input's result from the outputs of its pairs (in ``pairs_for`` order)."""
        raise NotImplementedError

    def pair_output(self, logits, **options):
        """What one pair gives (a row of logits, or a score)."""
        return logits

    def length(self, item) -> int:
        return len(item[0]) + len(item[1]) if isinstance(item, tuple) else len(item)

    def run_batches(self, prepared: list, batch_size, progress, **kwargs):
        if prepared and all(isinstance(x, tuple) for x in prepared):  # pairs: one output per pair
            return super().run_batches(prepared, batch_size, progress, **kwargs)
        expanded = [self.pairs_for(item, kwargs) for item in prepared]
        outputs = super().run_batches([p for pairs in expanded for p in pairs], batch_size, progress, **kwargs)
        results, start = [], 0
        for item, pairs in zip(prepared, expanded):
            results.append(self.combine(item, outputs[start:start + len(pairs)], kwargs))
            start += len(pairs)
        return results

    def preprocess(self, items, **kwargs):
        limit = self.max_length()
        firsts, seconds = [a for a, _ in items], [b for _, b in items]
        encoded = self.tokenizer(firsts, seconds, padding=True, truncation=self.truncation, max_length=limit,
                                 return_tensors="pt")
        if encoded["input_ids"].shape[1] >= limit:
            self.check_truncated(firsts, seconds, encoded, limit)
        return dict(encoded)

    def check_truncated(self, firsts, seconds, encoded, limit: int) -> None:
        """Warn once when a pair that filled the window was longer than it."""
        message = f"{self.spec.id}: a text pair longer than the model's maximum of {limit} tokens was truncated"
        if message in self.warnings:
            return
        full = [i for i, n in enumerate(encoded["attention_mask"].sum(dim=1).tolist()) if n >= limit]
        if any(len(self.tokenizer(firsts[i], seconds[i])["input_ids"]) > limit for i in full):
            self.warn(message)

    def forward(self, batch, **kwargs):
        return self.model(**batch).logits.float()

    def postprocess(self, outputs, items, **kwargs):
        return [self.pair_output(row, **kwargs) for row in outputs.cpu()]


# -- zero-shot text classification ------------------------------------------------------------------------------
class ZeroShotClassificationPipeline(PairPipeline):
    """Score texts against free-text labels with an NLI model: ``pipe(texts, labels=[...])``."""

    task = "zero-shot-classification"
    truncation = "only_first"  # the text, never the hypothesis
    empty_input = "the text to classify is empty; give some text to score against the labels"
    call_options = (LABELS.but(help="candidate labels to score (on the command line: --label, or a comma-separated "
                                    "list)"), HYPOTHESIS_TEMPLATE, MULTI_LABEL, TOP_K)

    def __init__(self, spec, model, device_manager, **kwargs):
        super().__init__(spec, model, device_manager, **kwargs)
        self.entailment_id, self.contradiction_id = nli_ids(model.config, spec.id)

    def check_options(self, options: dict) -> dict:
        if options["labels"] is None:
            raise OptionError("zero-shot-classification needs candidate labels: pass labels=['sports', 'politics'] "
                              "(command line: --label sports --label politics)")
        labels = check_strings(options["labels"], "labels", "['sports', 'politics']")
        repeated = sorted({label for label in labels if labels.count(label) > 1})
        if repeated:
            raise OptionError(f"labels must be distinct; repeated: {', '.join(repeated)}")
        template = check_template(options["hypothesis_template"])
        self.check_hypotheses([template.format(label) for label in labels])
        return {**options, "labels": labels, "hypothesis_template": template}

    def check_hypotheses(self, hypotheses: list[str]) -> None:
        """Only the text is truncated, so each hypothesis must leave room for some of it; an OptionError otherwise."""
        limit = self.max_length()
        for hypothesis in hypotheses:
            size = len(self.tokenizer("", hypothesis)["input_ids"])
            if size >= limit - 1:
                raise OptionError(f"the hypothesis {hypothesis[:60]!r} is {size} tokens, which leaves no room for the "
                                  f"text in the model's {limit}; shorten the label or the hypothesis_template")

    def pairs_for(self, item, options):
        return [(item, options["hypothesis_template"].format(label)) for label in options["labels"]]

    def combine(self, item, outputs, options):
        import torch

        logits = torch.stack(outputs)
        labels = options["labels"]
        if options["multi_label"] or len(labels) == 1:
            scores = logits[:, [self.contradiction_id, self.entailment_id]].softmax(dim=-1)[:, 1]
        else:
            scores = logits[:, self.entailment_id].softmax(dim=0)
        order = scores.argsort(descending=True, stable=True).tolist()[:options["top_k"]]
        return Classification([LabelScore(labels[i], float(scores[i]), i) for i in order], warning=self.head_warning)


def nli_ids(config, model_id: str) -> tuple[int, int]:
    """(entailment id, contradiction id) from ``label2id``; a HubError when there is no entailment label."""
    label2id = {str(k).lower(): int(v) for k, v in (config.label2id or {}).items()}
    entail = [i for name, i in label2id.items() if name.startswith("entail")]
    if not entail:
        raise HubError(f"{model_id} has no 'entailment' label (its labels: {', '.join(config.label2id or {})}), so it "
                       "cannot serve zero-shot-classification; use an NLI model such as facebook/bart-large-mnli, or "
                       "name the labels in its config.json's label2id")
    contra = [i for name, i in label2id.items() if name.startswith("contradict")]
    fallback = config.num_labels - 1 if entail[0] == 0 else 0  # transformers' rule when none is named
    return entail[0], contra[0] if contra else fallback


# -- text ranking -----------------------------------------------------------------------------------------------
class TextRankingPipeline(PairPipeline):
    """Rank passages against each query with a cross-encoder: ``pipe(queries, texts=[...passages])``."""

    task = "text-ranking"
    call_options = (PASSAGES, RANK_TOP_K, RAW_SCORES)
    pair_batching = True  # run_batches takes (query, passage) tuples (POST /v1/rerank)
    empty_input = "the query is empty; give the text to rank the passages against"

    def __init__(self, spec, model, device_manager, **kwargs):
        super().__init__(spec, model, device_manager, **kwargs)
        if model.config.num_labels != 1:
            names = ", ".join(map(str, (model.config.id2label or {}).values()))
            raise HubError(f"{spec.id} has {model.config.num_labels} outputs ({names}); text-ranking needs a "
                           "cross-encoder with one relevance output, such as "
                           "cross-encoder/ms-marco-MiniLM-L-6-v2 (an NLI model serves zero-shot-classification)")
        self.activation = declared_activation(self.directory, model.config, self.warn)

    def check_options(self, options: dict) -> dict:
        if options["texts"] is None:
            raise OptionError("text-ranking needs passages to rank: pass texts=['passage one', 'passage two'] "
                              "(command line: --text 'passage one' --text 'passage two')")
        return {**options, "texts": check_strings(options["texts"], "texts", "['passage one', 'passage two']")}

    def pairs_for(self, item, options):
        return [(item, passage) for passage in options["texts"]]

    def pair_output(self, logits, raw_scores=False, **kwargs) -> float:
        score = logits[0]
        if not raw_scores and self.activation is not None:
            score = getattr(score, self.activation)()
        return float(score)

    def combine(self, item, outputs, options):
        passages = options["texts"]
        order = sorted(range(len(outputs)), key=lambda i: -outputs[i])[:options["top_k"]]
        return Classification([LabelScore(passages[i], outputs[i], i) for i in order], warning=self.head_warning)


def declared_activation(directory, config, warn) -> str | None:
    """The torch method of the activation a cross-encoder declares (sentence-transformers' settings), else sigmoid."""
    from pathlib import Path

    st = getattr(config, "sentence_transformers", None)
    saved = read_json(Path(directory) / "config_sentence_transformers.json") if directory else {}
    found = [st.get("activation_fn") if isinstance(st, dict) else None,
             getattr(config, "sbert_ce_default_activation_function", None), saved.get("activation_fn")]
    path = next((p for p in found if isinstance(p, str) and p), None)
    if path is None:
        return "sigmoid"
    name = path.rsplit(".", 1)[-1]
    if name not in ACTIVATIONS or not path.startswith("torch."):
        warn(f"the model declares the activation {path}, which the hub does not run; using a sigmoid instead")
        return "sigmoid"
    return ACTIVATIONS[name]

