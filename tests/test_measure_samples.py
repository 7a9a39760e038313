"""The sample inputs hub bench measures with: per input kind, the same every run, and a clear refusal without."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from hub.measure import samples
from hub.measure.samples import NoSamplesError, sample_inputs, sample_options
from hub.options import LABELS, MAX_NEW_TOKENS, TEXTS, TOP_K, Option
from hub.tasks.base import Pipeline


class Fake(Pipeline):
    """A pipeline that runs nothing: the sample code reads only its declared members."""

    def preprocess(self, items, **kwargs):
        raise AssertionError("samples are made without running the model")

    forward = postprocess = preprocess


def fake(task, call_options=(), **extra):
    """A pipeline of ``task`` with these call options; ``extra`` replaces declared members (its own samples, ...)."""
    pipe = Fake(SimpleNamespace(id="m"), None, None)
    pipe.task, pipe.call_options = task, tuple(call_options)
    for name, value in extra.items():
        assert hasattr(Pipeline, name), f"{name} is not a member Pipeline declares"
        setattr(pipe, name, value)
    return pipe


def test_texts_are_of_mixed_length_and_the_same_every_time():
    texts = sample_inputs(fake("text-classification"), 12)
    lengths = sorted(len(t.split()) for t in texts)
    assert lengths[0] <= 5 and lengths[-1] >= 50 and len(set(lengths)) >= 8
    assert texts == sample_inputs(fake("text-classification"), 12)


def test_fill_mask_texts_hold_the_tokenizers_own_mask_token_once():
    pipe = fake("fill-mask", tokenizer=SimpleNamespace(mask_token="<mask>"))
    assert all(t.count("<mask>") == 1 for t in sample_inputs(pipe, 5))
    with pytest.raises(NoSamplesError, match="no mask token"):
        sample_inputs(fake("fill-mask", tokenizer=SimpleNamespace(mask_token=None)), 2)


def test_images_come_in_several_sizes_and_longer_lists_repeat_them():
    images = sample_inputs(fake("image-classification"), 30)
    assert len(images) == 30 and images[12] is images[0]
    assert len({im.size for im in images}) == len(samples.IMAGE_SIZES)
    assert all(im.mode == "RGB" for im in images)


def test_audio_clips_last_one_to_four_seconds_at_16_khz():
    clips = sample_inputs(fake("speech-recognition"), 5)
    seconds = [len(wave) / rate for wave, rate in clips]
    assert min(seconds) == 1.0 and max(seconds) == 4.0 and {rate for _, rate in clips} == {16_000}


def test_options_a_call_needs_are_filled_and_generation_is_kept_short():
    assert sample_options(fake("zero-shot-image-classification", (LABELS, TOP_K)))["labels"] == samples.SAMPLE_LABELS
    assert sample_options(fake("zero-shot-classification", (LABELS,)))["labels"] == samples.TEXT_LABELS
    assert sample_options(fake("image-text-similarity", (TEXTS,))) == {"texts": samples.SAMPLE_LABELS}
    assert sample_options(fake("text-ranking", (TEXTS,))) == {"texts": samples.texts(5)}
    assert sample_options(fake("text-generation", (MAX_NEW_TOKENS,))) == {"max_new_tokens": samples.GENERATION_TOKENS}
    question = Option("question", str, None, "the question")
    qa = fake("question-answering", (question,))
    assert "question" in sample_options(qa)
    assert min(len(c.split()) for c in sample_inputs(qa, 12)) >= samples.CONTEXT_WORDS  # contexts, not questions
    assert sample_options(fake("image-classification", (TOP_K,))) == {}
    assert sample_options(fake("text-classification", (LABELS.but(default=["a"]),))) == {}  # has a default


def test_a_pipelines_own_samples_and_options_come_first():
    pipe = fake("image-classification", sample_inputs=lambda n: ["a", "b"], sample_options=lambda: {"top_k": 1})
    assert sample_inputs(pipe, 5) == ["a", "b", "a", "b", "a"]
    assert sample_options(pipe) == {"top_k": 1}
    with pytest.raises(NoSamplesError, match="no sample inputs"):
        sample_inputs(fake("image-classification", sample_inputs=lambda n: []), 3)


def test_a_task_of_an_input_kind_without_samples_says_so():
    with pytest.raises(NoSamplesError) as caught:
        sample_inputs(fake("no-such-task"), 3)
    message = str(caught.value)
    assert "no-such-task" in message and "sample_inputs(n)" in message and caught.value.exit_code == 2
