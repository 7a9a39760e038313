import json

import pytest

from hub.errors import UnknownTaskError
from hub.tasks import ALIASES, MODALITIES, TASKS, list_tasks, resolve_task
from hub.tasks.results import RESULT_TYPES, Classification, Embedding, LabelScore, cosine


def test_every_modality_has_tasks():
    assert {t.modality for t in TASKS.values()} == set(MODALITIES)


def test_named_tasks_exist():
    for name in ["text-embedding", "text-classification", "fill-mask", "token-classification", "text-generation",
                 "image-classification", "image-embedding", "speech-recognition", "audio-classification",
                 "zero-shot-image-classification", "image-text-similarity"]:
        assert name in TASKS


def test_aliases_resolve():
    assert resolve_task("feature-extraction") == "text-embedding"
    assert resolve_task("ASR") == "speech-recognition"
    assert resolve_task("sentiment_analysis") == "text-classification"
    assert all(resolve_task(a) == t for a, t in ALIASES.items())


def test_unknown_task_lists_valid_ones():
    with pytest.raises(UnknownTaskError) as err:
        resolve_task("text-clasification")
    message = str(err.value)
    assert "text-classification" in message and "image-embedding" in message


def test_every_task_result_type_exists_and_serialises():
    for info in TASKS.values():
        assert info.result in RESULT_TYPES
    result = Classification([LabelScore("cat", 0.9, 1)])
    assert json.loads(json.dumps(result.to_dict())) == {"labels": [{"label": "cat", "score": 0.9, "index": 1}],
                                                        "warning": None}


def test_list_tasks_by_modality():
    assert [t.name for t in list_tasks("speech")] == ["speech-recognition", "audio-classification"]


def test_cosine():
    assert cosine([1, 0], [1, 0]) == pytest.approx(1.0)
    assert cosine([1, 0], [0, 1]) == pytest.approx(0.0)
    assert Embedding([0.0, 1.0, 2.0]).dim == 3
