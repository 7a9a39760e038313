"""The page at ``/`` in a real headless Chromium (Debian's ``chromium``), driven by Playwright, against a real server.

Flows: the API key asked for on 401 and kept for the tab; MiniLM embeddings (the similarity of the texts
shown as a heat map); a tiny timm classifier on an uploaded digits image (labels as bars); an error from
the server's envelope shown in the page, in place of the result before it; the JSON view for a result type
the page does not know; a plugin task's declared view; the page on a phone-sized screen; the page opening
on a model it can run. /docs and the favicon: tests/test_serve_docs.py.
Screenshots are kept in ``tests/artifacts/`` (or ``$HUB_TEST_ARTIFACTS``).
"""
from __future__ import annotations

import contextlib
import os
import shutil
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # drives chromium against a served page

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE / "plugins"))

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run",
        "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]  # a microphone that plays a tone
KEY = "page-test-key"
MINILM = "all-minilm-l6-v2"
TEXTS = ["a cat sleeps on the sofa", "a kitten naps on the couch", "the stock market fell today"]
ARTIFACTS = Path(os.environ.get("HUB_TEST_ARTIFACTS", HERE / "artifacts"))


def _browser_missing() -> str | None:
    """Why the browser test cannot run here, or None; as root (CI) a missing browser is a failure, not a skip."""
    missing = []
    if not (shutil.which("chromium") or os.path.exists(CHROMIUM)):
        missing.append("Debian's chromium (apt-get install chromium)")
    try:
        import playwright  # noqa: F401
    except ImportError:
        missing.append("playwright (pip install -r requirements-dev.txt)")
    if not missing:
        return None
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        pytest.fail("the page test needs " + " and ".join(missing) + "; scripts/test.sh installs them as root")
    return "needs " + " and ".join(missing) + " (not root, so they were not installed)"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict[str, Path]:
    """Tiny models saved in their libraries' formats: a timm classifier, a CLIP, a CTC speech model."""
    import torch
    from tiny_models import save_ctc, save_openclip, save_timm

    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("page")
    return {"timm": save_timm(root / "tiny-digits"), "clip": save_openclip(root / "tiny-clip"),
            "ctc": save_ctc(root / "tiny-speech")}


@pytest.fixture(scope="module")
def timm_dir(tiny) -> Path:
    return tiny["timm"]


@pytest.fixture(scope="module")
def tone_wav(tmp_path_factory) -> Path:
    import numpy as np
    import soundfile as sf

    t = np.arange(8000) / 16000
    path = tmp_path_factory.mktemp("tone") / "tone.wav"
    sf.write(path, (0.3 * np.sin(2 * np.pi * 330 * t)).astype("float32"), 16000)
    return path


@pytest.fixture(scope="module")
def digit_png(tmp_path_factory) -> Path:
    from PIL import Image
    from sklearn.datasets import load_digits

    pixels = (load_digits().images[3] * (255 / 16)).astype("uint8")
    path = tmp_path_factory.mktemp("digit") / "digit-three.png"
    Image.fromarray(pixels).resize((64, 64), Image.NEAREST).convert("RGB").save(path)
    return path


@pytest.fixture(scope="module")
def server(tiny):
    reason = _browser_missing()
    if reason:
        pytest.skip(reason)
    from serve_server import hub_app, running

    app = hub_app(preload=(MINILM, *(str(p) for p in tiny.values())), allow=(MINILM,), api_key=KEY)
    with running(app) as url:
        yield url


@contextlib.contextmanager
def chromium_browser():
    """Debian's headless chromium driven by Playwright, closed on the way out."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=shutil.which("chromium") or CHROMIUM, args=ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def browser(server):
    with chromium_browser() as chromium:
        yield chromium


@pytest.fixture
def page(browser, server):
    """A fresh tab on the page, past the API key prompt; console errors fail the test."""
    context, tab, problems = open_tab(browser, server, width=1100)
    yield tab
    context.close()
    assert not problems, problems


def open_tab(browser, server, width: int, key: str | None = KEY):
    """(context, tab, problems): a tab on the page at ``width`` CSS pixels, past the API key prompt when the
    server has a key; the page's uncaught errors and console errors are collected in ``problems``."""
    context = browser.new_context(viewport={"width": width, "height": 900}, permissions=["microphone"])
    context.set_default_timeout(120_000)  # a budget for a busy machine, not a timing check
    tab = context.new_page()
    problems: list[str] = []
    tab.on("pageerror", lambda exc: problems.append(str(exc)))
    tab.on("console", lambda message: problems.append(message.text) if message.type == "error"
           and not message.text.startswith("Failed to load resource") else None)  # error answers are tested
    tab.goto(server + "/")
    if key:
        tab.wait_for_selector("#key-dialog[open]")
        assert "API key" in tab.inner_text("#key-message")
        tab.fill("#key-input", key)
        tab.click("#key-save")
    tab.wait_for_function("document.querySelectorAll('#model-select option').length >= 2")
    return context, tab, problems


def shoot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def pick(page, task: str, model: str) -> None:
    page.select_option("#task-filter", task)
    page.select_option("#model-select", model)
    page.wait_for_function("!document.querySelector('#run-button').disabled")


def drop(page, path: Path) -> None:
    """Drag the file at ``path`` onto the drop zone, as a person would from a file manager."""
    import base64

    transfer = page.evaluate_handle("""([name, data]) => {
        const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
        const transfer = new DataTransfer();
        transfer.items.add(new File([bytes], name, {type: 'image/png'}));
        return transfer;
    }""", [path.name, base64.b64encode(path.read_bytes()).decode()])
    page.dispatch_event("#drop-zone", "dragover", {"dataTransfer": transfer})
    page.dispatch_event("#drop-zone", "drop", {"dataTransfer": transfer})


def cell_values(page) -> list[list[float]]:
    rows = page.locator("table.heat-map tbody tr")
    return [[float(x) for x in rows.nth(i).locator("td").all_inner_texts()] for i in range(rows.count())]


def test_embedding_flow_shows_the_similarity_of_the_texts(page):
    import hub
    from hub.tasks.results import cosine

    pick(page, "text-embedding", MINILM)
    assert page.is_visible("#text-input") and not page.is_visible("#file-input")
    page.fill("#text-input", "\n".join(TEXTS) + "\n\n")
    page.click("#run-button")
    page.wait_for_selector("table.heat-map")
    shoot(page, "embedding-similarity")

    local = hub.run(MINILM, TEXTS, device="cpu", dtype="fp32")
    expected = [[cosine(a.embedding, b.embedding) for b in local] for a in local]
    shown = cell_values(page)
    assert len(shown) == 3 and all(len(row) == 3 for row in shown)
    for got_row, want_row in zip(shown, expected):
        assert got_row == pytest.approx(want_row, abs=1.5e-3)  # shown with 3 decimals
    assert page.locator("table.heat-map tbody th").all_inner_texts()[0].startswith("a cat")
    assert "3 embeddings of dimension 384" in page.inner_text("#results")
    pairs = page.locator(".pairs .bar-label").all_inner_texts()
    assert pairs[0].startswith("a cat sleeps") and "a kitten" in pairs[0]  # the most similar pair comes first


def test_image_classification_flow_shows_labels_as_bars(page, timm_dir, digit_png):
    import hub

    model_id = hub.get_spec(str(timm_dir)).id
    pick(page, "image-classification", model_id)
    assert page.is_visible("#drop-zone") and not page.is_visible("#text-input")
    assert page.get_attribute("#file-input", "accept") == "image/*"
    assert not page.is_visible("#record-button")  # the microphone is offered for audio models only
    assert page.is_visible("label[for='opt-top_k']")
    page.set_input_files("#file-input", str(digit_png))
    page.wait_for_selector("#file-list img[alt='digit-three.png']")
    page.fill("#opt-top_k", "2")
    page.click("#run-button")
    page.wait_for_selector(".bars .bar-row")
    shoot(page, "image-classification")

    local = hub.run(str(timm_dir), [str(digit_png)], device="cpu", dtype="fp32", top_k=2)[0]
    labels = page.locator(".result-view .bar-label").all_inner_texts()
    scores = [float(s) for s in page.locator(".result-view .bar-score").all_inner_texts()]
    assert labels == [l.label for l in local.labels]
    assert scores == pytest.approx([l.score for l in local.labels], abs=1e-3)
    assert page.inner_text("figure.result figcaption") == "digit-three.png"
    widths = page.locator(".bar-fill").evaluate_all("els => els.map(e => parseFloat(e.style.width))")
    assert widths[0] >= widths[1] > 0


def test_server_errors_are_shown_from_the_envelope(page, timm_dir, digit_png):
    import hub

    pick(page, "image-classification", hub.get_spec(str(timm_dir)).id)
    page.click("#run-button")
    assert "Add at least one file" in page.inner_text("#error")
    page.set_input_files("#file-input", str(digit_png))
    page.wait_for_selector("#file-list li")
    page.fill("#opt-top_k", "0")
    page.click("#run-button")
    page.wait_for_function("document.querySelector('#error').textContent.includes('top_k')")
    message = page.inner_text("#error")
    assert "top_k" in message and ">= 1" in message
    shoot(page, "option-error")


@pytest.mark.parametrize("mistake", ["server", "no-input", "model"])
def test_an_error_takes_the_previous_result_off_the_screen(page, timm_dir, digit_png, mistake):
    """Whatever the error (the server's, the page's own check, a model that cannot be described), the result
    of the run before it is no longer shown: it would read as the answer to what failed."""
    import hub

    pick(page, "image-classification", hub.get_spec(str(timm_dir)).id)
    page.set_input_files("#file-input", str(digit_png))
    page.wait_for_selector("#file-list li")
    page.click("#run-button")
    page.wait_for_selector(".result-view .bar-row")
    if mistake == "server":
        page.fill("#opt-top_k", "0")
        page.click("#run-button")
    elif mistake == "no-input":
        page.click("#file-list .remove")
        page.click("#run-button")
    else:  # a model the server no longer knows, as after a restart with other models
        page.evaluate("""() => {
            const select = document.querySelector('#model-select');
            select.append(new Option('gone-model', 'gone-model'));
            select.value = 'gone-model';
            select.dispatchEvent(new Event('change'));
        }""")
    page.wait_for_selector("#error:not([hidden])")
    assert page.inner_text("#error").strip()
    assert page.locator(".result-view").count() == 0 and page.inner_text("#results") == "Results appear here."


def test_unknown_result_types_fall_back_to_json(page):
    html = page.evaluate("""async () => {
        const views = await import('/static/views.js');
        const node = views.renderResults([{score: 0.25, note: 'from a future task'}],
                                         {names: ['x'], options: {}, task: {name: 'new-task', result: 'Future'}});
        return node.outerHTML;
    }""")
    assert 'data-result="json"' in html and "from a future task" in html and "0.25" in html


def test_zero_shot_flow_takes_labels_from_the_options(page, tiny, digit_png):
    import hub

    spec = hub.get_spec(str(tiny["clip"]))
    pick(page, spec.task, spec.id)
    assert page.get_attribute("#opt-labels", "placeholder") == "one per line"
    drop(page, digit_png)
    page.wait_for_selector("#file-list img[alt='digit-three.png']")
    page.fill("#opt-labels", "a photo of a three\na photo of a seven\n\na drawing of a cat")
    page.click("#run-button")
    page.wait_for_selector(".bars .bar-row")
    shoot(page, "zero-shot")
    want = hub.run(str(tiny["clip"]), [str(digit_png)], device="cpu", dtype="fp32",
                   labels=["a photo of a three", "a photo of a seven", "a drawing of a cat"])[0]
    assert page.locator(".result-view .bar-label").all_inner_texts() == [l.label for l in want.labels]


def test_speech_flow_shows_the_transcription(page, tiny, tone_wav, tmp_path):
    import hub

    spec = hub.get_spec(str(tiny["ctc"]))
    pick(page, "speech-recognition", spec.id)
    assert page.get_attribute("#file-input", "accept") == "audio/*"
    renamed = tmp_path / "tone.weba"  # a name the hub does not read: the page converts it to WAV itself
    renamed.write_bytes(tone_wav.read_bytes())
    page.set_input_files("#file-input", [str(tone_wav), str(renamed)])
    page.wait_for_function("document.querySelectorAll('#file-list audio').length === 2")
    assert page.locator("#file-list span").all_inner_texts() == ["tone.wav", "tone.weba.wav"]
    page.click("#run-button")
    page.wait_for_selector(".result-view[data-result='Transcription']")
    shoot(page, "speech")
    want = hub.run(str(tiny["ctc"]), [str(tone_wav)], device="cpu", dtype="fp32")[0]
    shown = page.locator(".transcript").all_inner_texts()
    assert shown[0] == (want.text or "(nothing heard)")
    assert len(shown) == 2 and not page.is_visible("#error")


def test_recording_from_the_microphone_sends_a_wav(page, tiny):
    import base64
    import io

    import hub
    import soundfile as sf

    spec = hub.get_spec(str(tiny["ctc"]))
    pick(page, "speech-recognition", spec.id)
    assert page.is_visible("#record-button")
    page.click("#record-button")
    page.wait_for_function("document.querySelector('#record-button').getAttribute('aria-pressed') === 'true'")
    page.wait_for_timeout(700)
    page.click("#record-button")
    page.wait_for_selector("#file-list audio[aria-label='recording 1.wav']")
    uri = page.get_attribute("#file-list audio", "src")
    assert uri.startswith("data:audio/wav;base64,")
    wave, rate = sf.read(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])), dtype="float32")
    assert wave.ndim == 1 and len(wave) > 0.3 * rate and abs(wave).max() > 0.01  # the fake microphone's tone
    page.click("#run-button")
    page.wait_for_selector(".result-view[data-result='Transcription']")
    shoot(page, "recording")
    want = hub.run(str(tiny["ctc"]), [(wave, rate)], device="cpu", dtype="fp32")[0]
    assert page.inner_text(".transcript") == (want.text or "(nothing heard)")


VIEWS = """async ([results, context]) => {
    const views = await import('/static/views.js');
    const node = views.renderResults(results, context);
    document.querySelector('#results').replaceChildren(node);
    return node.getAttribute('data-result');
}"""


def draw(page, result, results: list, names: list[str], options: dict | None = None) -> None:
    """Draw results through the page's own views, as the page does after a run."""
    context = {"names": names, "options": options or {}, "task": {"name": "t", "result": result}}
    assert page.evaluate(VIEWS, [results, context]) == result


def test_views_of_the_other_result_types(page):
    from hub.tasks.results import (Entity, FillMask, Generation, LabelScore, MaskCandidate, Similarity,
                                   TokenClassification)

    rows = [[0.31, 0.12, -0.05], [0.02, 0.27, 0.11]]
    similarity = [Similarity([[1.0]], [], [row], [[LabelScore(t, s, i) for i, (t, s) in
                                                  sorted(enumerate(zip(["a cat", "a dog", "a car"], row)),
                                                         key=lambda p: -p[1][1])[:2]]]).to_dict() for row in rows]
    draw(page, "Similarity", similarity, ["cat.png", "dog.png"], {"texts": ["a cat", "a dog", "a car"]})
    assert page.locator("table.heat-map thead th").all_inner_texts()[1:] == ["a cat", "a dog", "a car"]
    assert [row[0] for row in cell_values(page)] == [0.31, 0.02]
    assert page.locator(".result-view figure .bar-label").all_inner_texts() == ["a cat", "a dog", "a dog", "a car"]
    shoot(page, "view-similarity")

    text = "Ada Lovelace lived in London."
    ner = TokenClassification([Entity("Ada Lovelace", "PER", 0.98, 0, 12), Entity("London", "LOC", 0.95, 22, 28)])
    draw(page, "TokenClassification", [ner.to_dict()], [text])
    assert page.inner_text("p.entities").replace("PER", "").replace("LOC", "") == text
    assert page.locator("mark.entity").evaluate_all("els => els.map(e => e.dataset.label)") == ["PER", "LOC"]

    mask = FillMask([MaskCandidate(5, "capital", 0.9, "paris is the capital of france"),
                     MaskCandidate(6, "heart", 0.05, "paris is the heart of france")])
    draw(page, "FillMask", [mask.to_dict()], ["paris is the [MASK] of france"])
    assert page.locator(".bar-label").all_inner_texts() == ["capital", "heart"]
    assert "paris is the capital of france" in page.inner_text(".bar-note >> nth=0")

    draw(page, "Generation", [Generation(" and then it rained.", "It was sunny").to_dict()], ["It was sunny"])
    assert page.inner_text("p.generation") == "It was sunny and then it rained."


def test_declared_views_show_the_summaries_a_plugin_task_writes(page):
    """A result class the page has no view for is drawn by its task's declared view ("table": a row per input;
    "text": a block per input) from the summaries the server sent; without summaries, JSON as before."""
    results = [{"rows": 3, "note": "first"}, {"rows": 5, "note": "second"}]
    summaries = ["3 rows\nmean 1.5", "5 rows\nmean 2.5"]

    def render(view, sent):
        context = {"names": ["a.csv", "b.csv"], "options": {},
                   "task": {"name": "t", "result": "plugin_mod:Stats", "view": view}, "summaries": sent}
        page.evaluate(VIEWS, [results, context])

    render("table", summaries)
    assert page.get_attribute(".result-view", "data-view") == "table"
    assert page.locator(".summary-table tbody th").all_inner_texts() == ["a.csv", "b.csv"]
    assert page.locator(".summary-table tbody td").all_inner_texts() == summaries
    render("text", summaries)
    assert page.get_attribute(".result-view", "data-view") == "text"
    assert page.locator("figure.result figcaption").all_inner_texts() == ["a.csv", "b.csv"]
    assert page.locator("pre.summary-text").all_inner_texts() == summaries
    assert '"note": "second"' in page.text_content(".result-view details.raw pre.json")  # the JSON stays at hand
    for sent in (None, summaries[:1]):  # none sent, or not one per result: the JSON is the view
        render("text", sent)
        assert page.get_attribute(".result-view", "data-result") == "json"


FITS = """() => {
    const width = document.documentElement.clientWidth;
    const shown = [...document.querySelectorAll('select, table.heat-map, .heat-wrap')].filter((e) => e.offsetParent);
    const boxes = shown.map((e) => {
        const r = e.getBoundingClientRect();
        return {what: e.id || e.className, left: r.left, right: r.right};
    });
    return {width, scroll: document.scrollingElement.scrollWidth, boxes,
            outside: boxes.filter((b) => b.left < 0 || b.right > width + 0.5)};
}"""


def test_the_page_fits_a_phone_screen(browser, server, tiny):
    """At 375 CSS pixels nothing makes the page scroll sideways: not the selects (with long model names), not an
    image model's options, not the heat map of many inputs with long names."""
    import hub

    context, tab, problems = open_tab(browser, server, width=375)
    try:
        fit = tab.evaluate(FITS)
        assert fit["width"] <= 375 and fit["scroll"] <= 375, fit
        assert len(fit["boxes"]) >= 2 and not fit["outside"], fit
        spec = hub.get_spec(str(tiny["clip"]))
        pick(tab, spec.task, spec.id)
        assert tab.is_visible("#drop-zone") and tab.is_visible("#opt-labels")
        fit = tab.evaluate(FITS)
        assert fit["scroll"] <= 375 and not fit["outside"], fit
        pick(tab, "text-embedding", MINILM)
        texts = [f"{t} — and a long tail of words that no narrow column can hold on one line" for t in TEXTS]
        tab.fill("#text-input", "\n".join(texts + ["a dog", "a small brown dog barks at the postman"]))
        tab.click("#run-button")
        tab.wait_for_selector("table.heat-map")
        shoot(tab, "phone-embedding")
        fit = tab.evaluate(FITS)
        assert fit["scroll"] <= 375, fit
        assert any(b["what"] == "heat-map" for b in fit["boxes"]) and not fit["outside"], fit
        assert len(cell_values(tab)) == 5
        for result, results, names, options in PHONE_VIEWS:  # every other view, with long words in it
            sent = None if result == "Future" else [str(r) for r in results]  # "Future": JSON only
            context_js = {"names": names, "options": options, "summaries": sent,
                          "task": {"name": "t", "result": result, "view": "table"}}
            tab.evaluate(VIEWS, [results, context_js])
            tab.evaluate("() => document.querySelectorAll('details.raw').forEach((d) => { d.open = true; })")
            fit = tab.evaluate(FITS)
            assert fit["scroll"] <= 375 and not fit["outside"], (result, fit)
    finally:
        context.close()
    assert not problems, problems


LONG = "Pneumonoultramicroscopicsilicovolcanoconiosis-and-more-words-without-any-space-at-all"
PHONE_VIEWS = [  # (result class, results, input names, options) drawn at 375 px
    ("Similarity", [{"matrix": [[0.3, 0.1, 0.2, 0.4]], "labels": [], "top_k": [[{"label": LONG, "score": 0.4,
                                                                                 "index": 3}]]}],
     [LONG + ".png"], {"texts": ["a cat", LONG, "a car", "a dog"]}),
    ("Classification", [{"labels": [{"label": LONG, "score": 0.9, "index": 0}]}], [LONG], {}),
    ("FillMask", [{"candidates": [{"token": 1, "token_str": LONG, "score": 0.5, "sequence": LONG}]}], [LONG], {}),
    ("TokenClassification", [{"entities": [{"word": LONG, "label": "PER", "score": 0.9, "start": 0,
                                            "end": len(LONG)}]}], [LONG], {}),
    ("Generation", [{"text": LONG, "prompt": LONG}], [LONG], {}),
    ("Transcription", [{"text": LONG, "chunks": [{"start": 0.0, "end": 1.5, "text": LONG}]}], [LONG], {}),
    ("plugin_mod:Stats", [{"rows": 3, "note": LONG}], [LONG], {}),
    ("Future", [{"note": LONG}], [LONG], {}),
]


def test_the_page_opens_on_a_model_it_can_run(browser, tiny, monkeypatch):
    """With the whole catalogue allowed and no network, most models have no weights here: the list says which
    are loaded or have their weights here, and the page opens on one of those (per task filter too)."""
    import httpx

    import hub
    from serve_server import hub_app, running

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    loaded = hub.get_spec(str(tiny["timm"])).id
    with running(hub_app(preload=(str(tiny["timm"]),), allow=("*",))) as url:
        listed = httpx.get(url + "/v1/models").json()["data"]
        state = {m["id"]: m["availability"] for m in listed}
        assert state[loaded] == "loaded" and state[MINILM] == "local"  # MiniLM's weights ship in a package
        assert listed[0]["id"] != loaded  # the loaded model is not the first listed: the page must look for it
        context, tab, problems = open_tab(browser, url, width=1100, key=None)
        try:
            tab.wait_for_function("!document.querySelector('#run-button').disabled")
            assert tab.input_value("#model-select") == loaded
            options = tab.locator("#model-select option")
            marks = options.evaluate_all("els => els.map(e => [e.value, e.dataset.availability, e.textContent])")
            assert {value: mark for value, mark, _ in marks} == state
            notes = {"loaded": "(loaded)", "local": "(weights here)", "missing": "(no weights here)"}
            for value, mark, text in marks:
                assert text.endswith(notes.get(mark, value)) or (mark == "unknown" and "(" not in text), text
            embedding = [m["id"] for m in listed if m["task"] == "text-embedding"]
            tab.select_option("#task-filter", "text-embedding")
            tab.wait_for_function(f"document.querySelector('#model-select').value === {MINILM!r}")
            if embedding[0] != MINILM:
                assert state[embedding[0]] == "missing"
            tab.wait_for_function("!document.querySelector('#run-button').disabled")
            missing = next(m for m in embedding if state[m] == "missing")
            tab.select_option("#model-select", missing)
            tab.wait_for_function("document.querySelector('#model-about').textContent.includes('not on this machine')")
            shoot(tab, "model-availability")
        finally:
            context.close()
    assert not problems, problems


def test_run_answers_carry_summaries_only_where_the_result_class_writes_one():
    """What the declared views draw: each result's own ``summary()``; never the base class's (it repeats the
    JSON), and a plugin's ``summary()`` that raises costs the view, not the answer."""
    from dataclasses import dataclass

    from hub.serve.run import summaries
    from hub.tasks.results import Embedding, Result

    @dataclass
    class Plain(Result):
        value: int

    @dataclass
    class Broken(Result):
        value: int

        def summary(self) -> str:
            raise ZeroDivisionError("a plugin's bug")

    pair = [Embedding([1.0, 0.0]), Embedding([0.0, 1.0])]
    assert summaries(pair) == [r.summary() for r in pair]
    for results in ([], [Plain(1)], [pair[0], Plain(2)], [Broken(3)], [pair[0], Broken(4)]):
        assert summaries(results) is None, results
