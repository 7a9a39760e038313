"""Which seq2seq task a transformers directory serves (translation or summarization), from its config.json.

Read in this order: the config's ``task_specific_params`` (T5 and BART list theirs), then what the model is
(Marian, M2M-100 and mBART translate; Pegasus and LED summarise), then hints in the architecture name or the
name the model was saved from (``...MTModel``, ``-mmt``, ``opus-mt``; ``cnn``, ``xsum``, ``summar``). A model
that could be either, such as T5, is refused with a message saying to pass ``--task``.
"""
from __future__ import annotations

from hub.errors import HubError

TRANSLATION_TYPES = {"marian", "fsmt", "m2m_100", "nllb_moe", "mbart"}
SUMMARIZATION_TYPES = {"pegasus", "pegasus_x", "led", "bigbird_pegasus"}
EITHER_TYPES = {"t5", "mt5", "umt5", "longt5", "bart", "prophetnet", "switch_transformers"}
SEQ2SEQ_TYPES = TRANSLATION_TYPES | SUMMARIZATION_TYPES | EITHER_TYPES
TRANSLATION_HINTS = ("mtmodel", "translat", "opus-mt", "-mmt", "many-to-many", "wmt", "nllb", "m2m")
SUMMARIZATION_HINTS = ("summar", "cnn", "xsum", "samsum", "pubmed", "arxiv", "billsum")
# heads of a seq2seq family that do not generate text (e.g. bart-large-mnli is a BartForSequenceClassification)
OTHER_HEADS = ("ForSequenceClassification", "ForQuestionAnswering", "ForTokenClassification", "ForCausalLM")


def seq2seq_task(root, config: dict) -> str | None:
    """'translation' or 'summarization' for a seq2seq text model, None for any other model.

    Raises HubError naming both tasks when the config does not say which one the model was made for."""
    model_type = config.get("model_type")
    if model_type not in SEQ2SEQ_TYPES:
        return None
    if any(str(arch).endswith(OTHER_HEADS) for arch in config.get("architectures") or []):
        return None
    params = config.get("task_specific_params") or {}
    said = {"summarization" if key.startswith("summar") else "translation"
            for key in params if key.startswith(("summar", "translation"))}
    if len(said) == 1:
        return said.pop()
    if not said:
        if model_type in TRANSLATION_TYPES:
            return "translation"
        if model_type in SUMMARIZATION_TYPES:
            return "summarization"
    hinted = hint(config)
    if hinted:
        return hinted
    if not said and model_type == "bart":
        return "summarization"
    why = ("its config's task_specific_params set up both" if said else
           "its config does not say which one it was trained for")
    raise HubError(f"the {model_type} model in '{root}' can serve both translation and summarization and {why}; "
                   "choose one with --task translation or --task summarization (in Python: task='translation')")


def hint(config: dict) -> str | None:
    """The task named in the architecture or in the name the model was saved from, if only one is."""
    names = " ".join([*map(str, config.get("architectures") or []), str(config.get("_name_or_path") or "")]).lower()
    translation = any(h in names for h in TRANSLATION_HINTS)
    summarization = any(h in names for h in SUMMARIZATION_HINTS)
    if translation != summarization:
        return "translation" if translation else "summarization"
    return None
