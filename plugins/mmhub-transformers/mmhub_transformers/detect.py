"""Recognise a transformers ``save_pretrained`` directory and guess its task from config.json."""
from __future__ import annotations

from pathlib import Path

from hub.plugin_kit import read_json_file
from mmhub_transformers.caption import is_captioner
from mmhub_transformers.seq2seq_detect import seq2seq_task

# architecture name suffix -> task
_SUFFIX_TASKS = [
    ("ForSequenceClassification", "text-classification"),
    ("ForTokenClassification", "token-classification"),
    ("ForQuestionAnswering", "question-answering"),
    ("ForMaskedLM", "fill-mask"),
    ("ForCausalLM", "text-generation"),
    ("LMHeadModel", "text-generation"),
    ("ForConditionalGeneration", "speech-recognition"),
    ("ForCTC", "speech-recognition"),
    ("ForAudioClassification", "audio-classification"),
    ("ForTextToSpeech", "text-to-speech"),
]
# models whose architecture name does not say the task (VitsModel, ClapModel)
MODEL_TYPE_TASKS = {"vits": "text-to-speech", "clap": "zero-shot-audio-classification"}
# ...ForConditionalGeneration is speech only for these (T5, BART, LLaVA... are not)
SPEECH_SEQ2SEQ_TYPES = {"whisper", "speech_to_text", "speech2text", "speecht5"}
# ...ForSequenceClassification of these is audio classification
AUDIO_ENCODER_TYPES = {"wav2vec2", "wav2vec2-conformer", "wav2vec2-bert", "hubert", "wavlm", "data2vec-audio",
                       "unispeech", "unispeech-sat", "sew", "sew-d", "whisper"}


def detect(path, task, supported: set[str]):
    """A ModelSpec for a transformers directory, or None when ``path`` is not one."""
    from hub.registry import ModelSpec

    root = Path(path)
    config = read_json_file(root / "config.json")
    if not isinstance(config, dict):
        return None
    if "model_type" not in config or "pretrained_cfg" in config or (root / "open_clip_config.json").exists():
        return None  # timm and open_clip directories also have a config.json
    task = task or guess_task(root, config)
    if task not in supported:
        return None
    return ModelSpec(id=root.resolve().name, task=task, plugin="transformers", source=str(root.resolve()),
                     description=f"local {config.get('model_type')} model", origin=str(root))


def guess_task(root: Path, config: dict) -> str:
    if (root / "modules.json").exists():
        return "text-embedding"
    model_type = config.get("model_type")
    if is_captioner(config):
        return "image-captioning"
    seq2seq = seq2seq_task(root, config)  # translation or summarization (or an error saying to choose)
    if seq2seq:
        return seq2seq
    if model_type in MODEL_TYPE_TASKS:
        return MODEL_TYPE_TASKS[model_type]
    for arch in config.get("architectures") or []:
        for suffix, task in _SUFFIX_TASKS:
            if not arch.endswith(suffix):
                continue
            if suffix == "ForConditionalGeneration" and model_type not in SPEECH_SEQ2SEQ_TYPES:
                break
            if suffix == "ForSequenceClassification" and model_type in AUDIO_ENCODER_TYPES:
                return "audio-classification"
            if suffix == "ForSequenceClassification":
                return pair_task(config) or task
            return task
    return "text-embedding"


def pair_task(config: dict) -> str | None:
    """A sequence classifier that scores text pairs: an NLI head (an entailment label) or a 1-output cross-encoder."""
    if any(str(name).lower().startswith("entail") for name in config.get("label2id") or {}):
        return "zero-shot-classification"
    if "sbert_ce_default_activation_function" in config or "sentence_transformers" in config:
        return "text-ranking"
    if len(config.get("id2label") or {}) == 1 and config.get("problem_type") != "regression":
        return "text-ranking"
    return None
