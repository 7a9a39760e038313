"""Tiny random question-answering models (BERT, DistilBERT, RoBERTa heads) saved with ``save_pretrained``, and
generated passages of facts with questions about them, for the question-answering tests.

Each model builds in well under a second: 2 layers of width 32 and a window of at most 64 tokens, so that a
context of a few sentences already needs several windows. The WordPiece vocabulary holds every word of the
generated passages whole, plus letters and ##letters so that any other word still tokenizes.
"""
from __future__ import annotations

import json
import random
import string
from pathlib import Path

NAMES = ("anna ben carla dmitri elena farid greta hugo ines jonas karim lena marco nora oskar petra quentin rosa "
         "stefan tara ugo vera walter yara").split()
CITIES = ("paris london berlin madrid rome vienna prague lisbon dublin oslo warsaw athens zurich munich milan "
          "lyon porto naples krakow bergen").split()
JOBS = ("baker teacher nurse pilot farmer painter doctor lawyer writer singer chemist tailor").split()
YEARS = [str(y) for y in range(1900, 2000, 3)]
PLACES = ("river", "market", "street", "bridge", "harbour", "station")
FILLER = ("the of and in was born works as a where when what does is lives city year who old weather today quiet "
          "people").split() + list(PLACES)
WORDS = sorted(set(NAMES + CITIES + JOBS + YEARS + FILLER))


def wordpiece_vocab() -> list[str]:
    tokens = (["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + list(string.ascii_lowercase + string.digits)
              + ["##" + c for c in string.ascii_lowercase + string.digits] + list(".,?!'\"") + WORDS)
    return list(dict.fromkeys(tokens))  # once each: ids 0..N-1


def bert_tokenizer():
    import transformers

    vocab = wordpiece_vocab()
    return transformers.BertTokenizer(vocab={w: i for i, w in enumerate(vocab)})


def distilbert_tokenizer():
    import transformers

    vocab = wordpiece_vocab()
    return transformers.DistilBertTokenizer(vocab={w: i for i, w in enumerate(vocab)})


def roberta_tokenizer():
    """A byte-level BPE tokenizer trained on the passages (RoBERTa's kind: <s> q </s></s> c </s>, offsets
    without the leading space)."""
    import tempfile

    import transformers
    from tokenizers import ByteLevelBPETokenizer

    bpe = ByteLevelBPETokenizer()
    corpus = [" ".join(WORDS)] * 3 + [passage(random.Random(i))[0] for i in range(20)]
    bpe.train_from_iterator(corpus, vocab_size=400, special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
                            show_progress=False)
    with tempfile.TemporaryDirectory() as folder:
        vocab_file, merges_file = bpe.save_model(folder)
        vocab = json.loads(Path(vocab_file).read_text(encoding="utf-8"))
        lines = Path(merges_file).read_text(encoding="utf-8").splitlines()[1:]
    return transformers.RobertaTokenizer(vocab=vocab, merges=[tuple(line.split()) for line in lines if line])


def save_qa(kind: str, directory: Path, seed: int = 0, positions: int = 64, spread: bool = True, **config) -> Path:
    """A random ``kind`` (bert, distilbert, roberta) question-answering model and its tokenizer in ``directory``.

    ``config`` overrides the tiny sizes; ``spread`` draws the head's weights wide, for clear, varied best spans.
    """
    import torch
    import transformers

    torch.manual_seed(seed)
    if kind == "bert":
        tok = bert_tokenizer()
        sizes = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37)
        cfg = transformers.BertConfig(vocab_size=len(tok), max_position_embeddings=positions, **{**sizes, **config})
        model = transformers.BertForQuestionAnswering(cfg)
    elif kind == "distilbert":
        tok = distilbert_tokenizer()
        sizes = dict(dim=32, n_layers=2, n_heads=2, hidden_dim=37)
        cfg = transformers.DistilBertConfig(vocab_size=len(tok), max_position_embeddings=positions,
                                            **{**sizes, **config})
        model = transformers.DistilBertForQuestionAnswering(cfg)
    elif kind == "roberta":
        tok = roberta_tokenizer()
        sizes = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37)
        cfg = transformers.RobertaConfig(vocab_size=len(tok), max_position_embeddings=positions + 2,
                                         pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
                                         eos_token_id=tok.eos_token_id, **{**sizes, **config})
        model = transformers.RobertaForQuestionAnswering(cfg)
        tok.model_max_length = positions
    else:
        raise ValueError(f"unknown kind {kind!r}")
    if spread:
        torch.nn.init.normal_(model.qa_outputs.weight, std=1.0)
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    tok.save_pretrained(directory)
    return directory


# -- generated passages -----------------------------------------------------------------------------------------
def person(rng: random.Random, name: str) -> dict:
    return {"name": name, "born": rng.choice(CITIES), "year": rng.choice(YEARS), "job": rng.choice(JOBS),
            "works": rng.choice(CITIES)}


def sentences(p: dict) -> list[str]:
    return [f"{p['name']} was born in {p['born']} in {p['year']}.", f"{p['name']} works as a {p['job']} in {p['works']}."]


QUESTIONS = (("where was {name} born?", "born"), ("when was {name} born?", "year"),
             ("what does {name} work as?", "job"), ("where does {name} work?", "works"))


def passage(rng: random.Random, people: int = 2, names=NAMES, distractors: int = 0) -> tuple[str, list[dict]]:
    """A passage of facts about ``people`` different people and ``distractors`` sentences naming other cities,
    shuffled, and the facts."""
    facts = [person(rng, name) for name in rng.sample(list(names), people)]
    lines = [s for p in facts for s in sentences(p)]
    lines += [f"the old {rng.choice(PLACES)} in {rng.choice(CITIES)} is quiet." for _ in range(distractors)]
    rng.shuffle(lines)
    return " ".join(lines), facts


def qa_rows(count: int, seed: int, people: int = 2, distractors: int = 0) -> list[dict]:
    """SQuAD-style rows: a question about one fact of a generated passage, its answer and where it starts."""
    rng = random.Random(seed)
    rows = []
    for _ in range(count):
        context, facts = passage(rng, people, distractors=distractors)
        target = rng.choice(facts)
        template, field = rng.choice(QUESTIONS)
        answer, anchor = target[field], _anchor(target, field)
        start = context.index(anchor) + len(anchor) - len(answer)
        rows.append({"question": template.format(name=target["name"]), "context": context,
                     "answers": {"text": [answer], "answer_start": [start]}})
    return rows


def _anchor(p: dict, field: str) -> str:
    """The text that ends with the answer and is unique in its passage."""
    if field in ("born", "year"):
        text = f"{p['name']} was born in {p['born']}"
        return text if field == "born" else f"{text} in {p['year']}"
    text = f"{p['name']} works as a {p['job']}"
    return text if field == "job" else f"{text} in {p['works']}"


def write_jsonl(path: Path, rows: list, extra_lines: list[str] = ()) -> Path:
    lines = [json.dumps(r) for r in rows] + list(extra_lines)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
