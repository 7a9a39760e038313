"""mmhub plugin for Hugging Face transformers: NLP and speech tasks through the Auto classes.

Only ``hub`` is imported here; transformers and torch are imported when a model loads.
"""
from __future__ import annotations

from hub import hookimpl
from hub.plugin_kit import build_pipeline, pipeline_options, register_catalog, resolve_ref

PLUGIN = "transformers"
MMHUB_PLUGIN_API = "1.0"  # the hub plugin-API version this plugin is written against

# task -> "module:Class" of the pipeline that serves it (imported on load)
PIPELINES = {
    "text-embedding": "mmhub_transformers.text:TextEmbeddingPipeline",
    "text-classification": "mmhub_transformers.classify:TextClassificationPipeline",
    "fill-mask": "mmhub_transformers.classify:FillMaskPipeline",
    "token-classification": "mmhub_transformers.classify:TokenClassificationPipeline",
    "text-generation": "mmhub_transformers.generate:TextGenerationPipeline",
    "speech-recognition": "mmhub_transformers.speech:SpeechRecognitionPipeline",
    "audio-classification": "mmhub_transformers.speech:AudioClassificationPipeline",
    # -- seq2seq --
    "translation": "mmhub_transformers.seq2seq:TranslationPipeline",
    "summarization": "mmhub_transformers.seq2seq:SummarizationPipeline",
    # -- question answering --
    "question-answering": "mmhub_transformers.qa:QuestionAnsweringPipeline",
    # -- zero-shot text classification, text ranking --
    "zero-shot-classification": "mmhub_transformers.pairs:ZeroShotClassificationPipeline",
    "text-ranking": "mmhub_transformers.pairs:TextRankingPipeline",
    # -- text-to-speech, zero-shot audio classification --
    "text-to-speech": "mmhub_transformers.tts:TextToSpeechPipeline",
    "zero-shot-audio-classification": "mmhub_transformers.clap:ZeroShotAudioClassificationPipeline",
    # -- image captioning --
    "image-captioning": "mmhub_transformers.caption:ImageCaptioningPipeline",
}


@hookimpl
def register_models(register):
    register_catalog(register, __file__)  # catalog.yaml in this package


@hookimpl
def load_model(spec, device_manager, options):
    if spec.plugin != PLUGIN or spec.task not in PIPELINES:
        return None
    return build_pipeline(PIPELINES[spec.task], spec, device_manager, options)


@hookimpl
def model_options(spec):
    if spec.plugin != PLUGIN:
        return None
    return pipeline_options(PIPELINES, spec)


@hookimpl
def spec_for_path(path, task):
    from mmhub_transformers.detect import detect

    return detect(path, task, set(PIPELINES))


@hookimpl
def trainable(spec, task, num_labels, labels, device_manager):
    if spec.plugin != PLUGIN:
        return None
    return resolve_ref("mmhub_transformers.train:trainable")(spec, task, num_labels, labels, device_manager)
