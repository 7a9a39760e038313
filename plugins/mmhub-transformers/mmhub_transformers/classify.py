"""Text classification, fill-mask and token classification (NER) through the transformers Auto classes."""
from __future__ import annotations

from hub.errors import HubError, InputError
from hub.options import TOP_K, Option
from hub.tasks.results import Classification, Entity, FillMask, LabelScore, MaskCandidate, TokenClassification
from mmhub_transformers.loading import TransformersPipeline, load_auto, load_tokenizer, weights_dir


def new_weights(model, info: dict) -> tuple[list[str], list[str]]:
    """(head, body) parameter names newly initialised at load: missing from, or mismatched with, the checkpoint."""
    fresh = list(info.get("missing_keys") or []) + [m[0] if isinstance(m, (list, tuple)) else m
                                                    for m in info.get("mismatched_keys") or []]
    prefix = getattr(model, "base_model_prefix", "") + "."
    head = sorted(k for k in fresh if not k.startswith(prefix))
    body = sorted(k for k in fresh if k.startswith(prefix))
    return head, body


class HeadPipeline(TransformersPipeline):
    """A model with a task head; says so loudly when the head was not in the checkpoint."""

    def __init__(self, spec, model, device_manager, **kwargs):
        super().__init__(spec, model, device_manager, **kwargs)
        self.head_warning: str | None = None

    @classmethod
    def from_spec(cls, spec, device_manager, trust_remote_code: bool = False, **options):
        directory = weights_dir(spec)
        tokenizer = load_tokenizer(directory, trust_remote_code)
        model, info = load_auto(cls.auto_class, directory, trust_remote_code, output_loading_info=True)
        pipeline = cls(spec, device_manager.place(model), device_manager, tokenizer=tokenizer,
                       directory=directory, **options)
        pipeline.check_loading(info)
        return pipeline

    def check_loading(self, info: dict) -> None:
        """Warn (once, and in every result that has room) when weights were newly initialised."""
        head, body = new_weights(self.model, info)
        if not head and not body:
            return
        names = head or body
        shown = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
        what = f"the {self.task} head" if head else f"{len(body)} weights of the model body"
        self.head_warning = (
            f"{self.spec.id}: {what} ({shown}) is not in the checkpoint and was newly initialised with random "
            f"weights, so its outputs are meaningless until the model is fine-tuned. "
            f"Use a checkpoint trained for {self.task}, or fine-tune this one first.")
        self.warn(self.head_warning)



# -- text classification ----------------------------------------------------------------------------------------
class TextClassificationPipeline(HeadPipeline):
    """Scores for every label (softmax; sigmoid for multi-label or single-output heads), best first."""

    task = "text-classification"
    auto_class = "AutoModelForSequenceClassification"
    call_options = (TOP_K,)
    export_output = "logits"
    plans_in_tokens = True

    def preprocess(self, items, **kwargs):
        return dict(self.tokenize(items))

    def forward(self, batch, **kwargs):
        return self.forward_fn(**batch).logits.float()

    def scores(self, logits):
        """Probabilities as transformers' pipeline computes them from the config's problem type."""
        config = self.model.config
        if config.problem_type == "multi_label_classification" or config.num_labels == 1:
            return logits.sigmoid()
        return logits.softmax(dim=-1)

    def postprocess(self, outputs, items, top_k=TOP_K.default, **kwargs):
        probs = self.scores(outputs).cpu()
        k = min(top_k, probs.shape[-1])
        id2label = self.model.config.id2label or {}
        results = []
        for row in probs:
            values, indices = row.topk(k)
            labels = [LabelScore(str(id2label.get(i, f"LABEL_{i}")), float(v), i)
                      for v, i in zip(values.tolist(), indices.tolist())]
            results.append(Classification(labels, warning=self.head_warning))
        return results


# -- fill-mask --------------------------------------------------------------------------------------------------
class FillMaskPipeline(HeadPipeline):
    """The ``top_k`` most likely tokens for the one mask token in each input."""

    task = "fill-mask"
    auto_class = "AutoModelForMaskedLM"
    call_options = (TOP_K.but(help="how many of the most likely tokens for the mask to return, best first"),)

    def __init__(self, spec, model, device_manager, **kwargs):
        super().__init__(spec, model, device_manager, **kwargs)
        if self.tokenizer.mask_token is None:
            raise HubError(f"{spec.id}: its tokenizer has no mask token, so it cannot serve fill-mask")

    def prepare(self, item):
        text = super().prepare(item)
        mask = self.tokenizer.mask_token
        count = text.count(mask)
        if count != 1:
            problem = "has no mask token" if count == 0 else f"has {count} mask tokens"
            raise InputError(f"fill-mask input {text[:60]!r} {problem}: write exactly one {mask} where the "
                             f"missing word goes, e.g. 'Paris is the {mask} of France.'")
        return text

    def preprocess(self, items, **kwargs):
        encoded = dict(self.tokenize(items))
        found = (encoded["input_ids"] == self.tokenizer.mask_token_id).sum(dim=1)
        for text, n in zip(items, found.tolist()):
            if n != 1:
                raise InputError(f"fill-mask input {text[:60]!r}: the mask token {self.tokenizer.mask_token} "
                                 f"was cut off by truncation; shorten the text or move the mask earlier")
        return encoded

    def forward(self, batch, **kwargs):
        ids = batch["input_ids"]
        rows, cols = (ids == self.tokenizer.mask_token_id).nonzero(as_tuple=True)
        logits = self.model(**batch).logits[rows, cols].float()
        return {"probs": logits.softmax(dim=-1), "input_ids": ids, "mask": batch["attention_mask"], "cols": cols}

    def postprocess(self, outputs, items, top_k=TOP_K.default, **kwargs):
        probs = outputs["probs"].cpu()
        k = min(top_k, probs.shape[-1])
        results = []
        for row, ids, mask, col in zip(probs, outputs["input_ids"].cpu(), outputs["mask"].cpu(),
                                       outputs["cols"].tolist()):
            values, tokens = row.topk(k)
            results.append(FillMask([self.candidate(ids, mask, col, t, v)
                                     for v, t in zip(values.tolist(), tokens.tolist())]))
        return results

    def candidate(self, ids, mask, col: int, token: int, score: float) -> MaskCandidate:
        """One candidate; ``sequence`` is the input decoded with the mask replaced, as transformers does."""
        filled = ids.clone()
        filled[col] = token
        sequence = self.tokenizer.decode(filled[mask.bool()].tolist(), skip_special_tokens=True)
        return MaskCandidate(token, self.tokenizer.decode([token]), score, sequence)


# -- token classification ---------------------------------------------------------------------------------------
AGGREGATIONS = ("first", "average", "max", "simple")
AGGREGATION = Option("aggregation", str, "first", "how a word's sub-tokens give its label: first, average, max, "
                     "or simple (no word grouping)", choices=AGGREGATIONS)


class TokenClassificationPipeline(HeadPipeline):
    """Entities with character offsets: a label per word, adjacent words of one type merged, "O" dropped.

    ``aggregation``: ``first`` (default; a word takes the label of its first sub-token), ``average``
    (mean of the sub-token scores), ``max`` (the most confident sub-token) or ``simple`` (no word
    grouping: each token on its own). Words are the fast tokenizer's pre-tokenised words (``word_ids``),
    which for WordPiece models match transformers' ``aggregation_strategy`` of the same name.
    """

    task = "token-classification"
    auto_class = "AutoModelForTokenClassification"
    call_options = (AGGREGATION,)
    plans_in_tokens = True

    def __init__(self, spec, model, device_manager, **kwargs):
        super().__init__(spec, model, device_manager, **kwargs)
        if not getattr(self.tokenizer, "is_fast", False):
            raise HubError(f"{spec.id}: token-classification needs a fast tokenizer (tokenizer.json) for "
                           "character offsets; save the model with a PreTrainedTokenizerFast")

    def preprocess(self, items, **kwargs):
        encoded = self.tokenize(items, return_offsets_mapping=True)
        words = [encoded.word_ids(i) for i in range(len(items))]
        batch = dict(encoded)
        offsets = batch.pop("offset_mapping")
        return {"inputs": batch, "offsets": offsets, "words": words}

    def forward(self, batch, **kwargs):
        logits = self.model(**batch["inputs"]).logits.float()
        return {"probs": logits.softmax(dim=-1), "offsets": batch["offsets"], "words": batch["words"]}

    def postprocess(self, outputs, items, aggregation=AGGREGATION.default, **kwargs):
        probs, offsets = outputs["probs"].cpu(), outputs["offsets"].cpu().tolist()
        return [TokenClassification(self.entities(text, p, o, w, aggregation))
                for text, p, o, w in zip(items, probs, offsets, outputs["words"])]

    def entities(self, text: str, probs, offsets, word_ids, aggregation: str) -> list[Entity]:
        units = word_units(word_ids, by_word=aggregation != "simple")
        labelled = [self.label_word(probs, unit, aggregation) + (offsets[unit[0]][0], offsets[unit[-1]][1])
                    for unit in units]
        return [Entity(text[start:end], label, score, start, end)
                for label, score, start, end in group_entities(labelled) if label != "O"]

    def label_word(self, probs, unit: list[int], aggregation: str) -> tuple[str, float]:
        """(label, score) of one word from its sub-token probabilities."""
        rows = probs[unit]
        if aggregation == "average":
            scores = rows.mean(dim=0)
        elif aggregation == "max":
            scores = rows[int(rows.max(dim=-1).values.argmax())]
        else:
            scores = rows[0]
        idx = int(scores.argmax())
        return str(self.model.config.id2label.get(idx, f"LABEL_{idx}")), float(scores[idx])


def word_units(word_ids: list, by_word: bool = True) -> list[list[int]]:
    """Token positions grouped per word (or one per token), special tokens left out."""
    units: list[list[int]] = []
    last = None
    for pos, word in enumerate(word_ids):
        if word is None:
            last = None
            continue
        if by_word and word == last and units:
            units[-1].append(pos)
        else:
            units.append([pos])
        last = word
    return units


def split_tag(label: str) -> tuple[str, str]:
    """("B"|"I", type) of an IOB label; a label without a prefix continues its type."""
    if label.startswith(("B-", "I-")):
        return label[0], label[2:]
    return "I", label


def group_entities(words: list[tuple[str, float, int, int]]) -> list[tuple[str, float, int, int]]:
    """Merge adjacent words of one type unless the next begins a new entity (B-); score is the mean."""
    groups: list[list[tuple[str, float, int, int]]] = []
    for word in words:
        bi, tag = split_tag(word[0])
        if groups and bi != "B" and split_tag(groups[-1][-1][0])[1] == tag:
            groups[-1].append(word)
        else:
            groups.append([word])
    return [(split_tag(g[0][0])[1], sum(w[1] for w in g) / len(g), g[0][2], g[-1][3]) for g in groups]
