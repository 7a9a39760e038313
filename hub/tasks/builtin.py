"""The core's own tasks and runtimes, declared through the same ``register_tasks`` and ``register_backends``
hooks a plugin uses.

Registered first, under the name ``core``, before any entry point (see :mod:`hub.plugins`).
"""
from __future__ import annotations

from hub import hookimpl
from hub.tasks.info import TaskInfo


def core_tasks() -> list[TaskInfo]:
    """The tasks the hub ships, by modality; what each service does with a task is declared here (see TaskInfo)."""
    T = TaskInfo
    return [
        T("text-embedding", "nlp", "text", "Embedding", "One vector per text (pooled, optionally normalised).",
          ("feature-extraction", "sentence-similarity", "sentence-embedding"), export="embedding", route="embeddings",
          advice="embedding"),
        T("text-classification", "nlp", "text", "Classification", "Labels with scores for a whole text.",
          ("sentiment-analysis", "sequence-classification"), export="classification", train_kind="classification",
          zero_shot="zero-shot-classification"),
        T("fill-mask", "nlp", "text", "FillMask", "Candidates for the mask token in a text.", ("masked-lm",),
          needs_mask=True),
        T("token-classification", "nlp", "text", "TokenClassification", "A label per word or entity span.",
          ("ner", "named-entity-recognition"), train_kind="classification"),
        T("text-generation", "nlp", "text", "Generation", "Continue a prompt (greedy or sampled).",
          ("causal-lm", "generate"), advice="generator"),
        T("image-classification", "vision", "image", "Classification", "Top-k class labels for an image.", (),
          export="classification", train_kind="classification", zero_shot="zero-shot-image-classification"),
        T("image-embedding", "vision", "image", "Embedding", "A pooled feature vector per image.",
          ("image-feature-extraction",), export="embedding", route="embeddings", advice="embedding"),
        T("speech-recognition", "speech", "audio", "Transcription", "Text spoken in an audio clip.",
          ("automatic-speech-recognition", "asr", "transcription"), route="transcriptions", train_kind="ctc"),
        T("audio-classification", "speech", "audio", "Classification", "Labels with scores for an audio clip.", (),
          train_kind="classification", zero_shot="zero-shot-audio-classification"),
        T("zero-shot-image-classification", "crossmodal", "image", "Classification",
          "Score an image against free-text labels.", ("zero-shot",), export="zero-shot", train_kind="contrastive",
          advice="no-training"),
        T("image-text-similarity", "crossmodal", "image+text", "Similarity",
          "Image and text embeddings, their similarity matrix and top-k retrieval.",
          ("image-text-retrieval", "clip-similarity"), export="image-text", route="embeddings",
          train_kind="contrastive", advice="no-training"),
        # -- seq2seq: translation, summarization --
        T("translation", "nlp", "text", "hub.tasks.results_seq2seq:GeneratedText",
          "Translate text into another language (beam search or sampling).", ("translate", "machine-translation"),
          advice="generator"),
        T("summarization", "nlp", "text", "hub.tasks.results_seq2seq:GeneratedText",
          "A shorter text that keeps the gist of a longer one.", ("summarisation", "summarize", "summarise"),
          advice="generator"),
        # -- extractive question answering --
        T("question-answering", "nlp", "text", "hub.tasks.results_qa:Answers",
          "Answer spans in a context for a question (extractive; 'no answer' for SQuAD v2 models).",
          ("qa", "extractive-qa", "extractive-question-answering")),
        # -- zero-shot text classification, text ranking --
        T("zero-shot-classification", "nlp", "text", "Classification",
          "Score a text against free-text labels with an NLI model (entailment of 'This example is {label}.').",
          ("zero-shot-text-classification", "nli"), advice="no-training"),
        T("text-ranking", "nlp", "text", "Classification",
          "Score passages against a query with a cross-encoder; the passages best first.",
          ("rerank", "reranking", "cross-encoder"), route="rerank"),
        # -- text-to-speech, zero-shot audio classification --
        T("text-to-speech", "speech", "text", "hub.tasks.results_audio:Speech",
          "Speech synthesised from text: a waveform and its sample rate (--save-dir writes WAV files).",
          ("tts", "speech-synthesis"), save="hub.tasks.results_audio:save_speech", advice="generator"),
        T("zero-shot-audio-classification", "speech", "audio", "Classification",
          "Score an audio clip against free-text labels (CLAP).", (), advice="no-training"),
        # -- image captioning --
        T("image-captioning", "crossmodal", "image", "hub.tasks.results_caption:Caption",
          "A caption for an image (open_clip CoCa, BLIP, ViT-GPT2), optionally continuing a prompt.",
          ("image-to-text", "captioning"), advice="generator"),
    ]


@hookimpl
def register_tasks(register):
    """Declare the core's tasks."""
    for info in core_tasks():
        register(info)


# the core's runtimes (hub.runtimes.RuntimeInfo fields), declared as a plugin's are; hub.export.runtime opens them
CORE_BACKENDS = [
    {"name": "onnx", "library": "onnxruntime", "suffix": ".onnx", "reads": ["onnx"],
     "opener": "hub.export.runtime:open_onnx"},
    {"name": "openvino", "library": "openvino", "suffix": ".xml", "reads": ["openvino", "onnx"],  # reads ONNX too
     "opener": "hub.export.runtime:open_openvino"},
]


@hookimpl
def register_backends(register):
    """Declare the core's runtimes."""
    for backend in CORE_BACKENDS:
        register(dict(backend))
