"""``/docs`` and the favicon in a real headless Chromium (Debian's ``chromium``) driven by Playwright, against a
real server with an API key: Swagger UI reads the OpenAPI 3.1 description and draws every operation offline.
Screenshots are kept in ``tests/artifacts/`` (or ``$HUB_TEST_ARTIFACTS``).
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # drives chromium against a served page

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from test_serve_page import KEY, MINILM, _browser_missing, chromium_browser, shoot  # noqa: E402


@pytest.fixture(scope="module")
def server():
    reason = _browser_missing()
    if reason:
        pytest.skip(reason)
    from serve_server import hub_app, running

    with running(hub_app(preload=(MINILM,), allow=(MINILM,), api_key=KEY)) as url:
        yield url


@pytest.fixture(scope="module")
def browser(server):
    with chromium_browser() as chromium:
        yield chromium


def test_docs_render_every_operation_offline(browser, server):
    """/docs in Chromium: Swagger UI reads the OpenAPI 3.1 description and draws every operation, with nothing
    fetched from anywhere but this server and no console error; "Try it out" sends the tab's API key."""
    import httpx

    schema = httpx.get(server + "/openapi.json", headers={"Authorization": f"Bearer {KEY}"}).json()
    assert schema["openapi"].startswith("3.1")
    want = sorted((method.upper(), path) for path, item in schema["paths"].items() for method in item)
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    context.set_default_timeout(120_000)
    elsewhere: list[str] = []

    def only_here(route):
        if route.request.url.startswith(server + "/"):
            return route.continue_()
        elsewhere.append(route.request.url)
        return route.abort()

    context.route("**/*", only_here)
    tab = context.new_page()
    problems: list[str] = []
    tab.on("pageerror", lambda exc: problems.append(str(exc)))
    tab.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    try:
        tab.goto(server + "/")  # the page asks for the key and keeps it for the tab; /docs uses it
        tab.wait_for_selector("#key-dialog[open]")
        tab.fill("#key-input", KEY)
        tab.click("#key-save")
        tab.wait_for_function("document.querySelectorAll('#model-select option').length >= 1")
        problems.clear()  # the page's first calls were answered 401, which is what asks for the key
        tab.goto(server + "/docs")
        tab.wait_for_function(f"document.querySelectorAll('.opblock').length >= {len(want)}")
        shown = sorted(zip(tab.locator(".opblock .opblock-summary-method").all_inner_texts(),
                           tab.locator(".opblock .opblock-summary-path").evaluate_all(
                               "els => els.map(e => e.dataset.path)")))
        assert shown == want
        assert "mmhub" in tab.inner_text(".info .title") and "OAS 3.1" in tab.inner_text(".info")
        block = tab.locator(".opblock", has=tab.locator(".opblock-summary-path[data-path='/v1/tasks']"))
        block.locator(".opblock-summary-control").click()
        block.locator(".try-out__btn").click()
        block.locator(".execute").click()
        block.locator(".live-responses-table tbody .response-col_status").first.wait_for()
        assert block.locator(".live-responses-table tbody .response-col_status").first.inner_text().strip() == "200"
        assert "text-embedding" in block.locator(".live-responses-table .microlight").first.inner_text()
        shoot(tab, "docs")
    finally:
        context.close()
    assert not elsewhere, elsewhere
    assert not problems, problems


def test_docs_in_a_tab_without_the_key_send_to_the_page(browser, server):
    """A tab that has not given the page the key gets a line saying so, with a link to the page, not a Swagger
    UI that failed to load."""
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    context.set_default_timeout(120_000)
    tab = context.new_page()
    problems: list[str] = []
    tab.on("pageerror", lambda exc: problems.append(str(exc)))
    try:
        tab.goto(server + "/docs")
        tab.wait_for_selector("#swagger-ui .key-needed")
        assert "needs an API key" in tab.inner_text("#swagger-ui") and tab.locator(".opblock").count() == 0
        tab.click("#swagger-ui .key-needed a")
        tab.wait_for_selector("#key-dialog[open]")  # the page asks for the key
    finally:
        context.close()
    assert not problems, problems


def test_the_favicon_is_served(server):
    import io

    import httpx
    from PIL import Image

    icon = httpx.get(server + "/favicon.ico")  # no key: like the page, it holds no data
    assert icon.status_code == 200 and icon.headers["content-type"] == "image/x-icon"
    assert (32, 32) in Image.open(io.BytesIO(icon.content)).info["sizes"]
    page = httpx.get(server + "/").text
    href = page.split('rel="icon" href="', 1)[1].split('"', 1)[0]
    svg = httpx.get(f"{server}/{href}")
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml") and "<svg" in svg.text


def test_docs_without_swagger_ui_say_how_to_get_it(monkeypatch):
    """Without the package that carries Swagger UI, /docs says which package to install (503), and still loads
    nothing from elsewhere."""
    import httpx

    from hub.serve import app as serve_app
    from serve_server import hub_app, running

    monkeypatch.setattr(serve_app, "swagger_ui_dir", lambda: None)
    with running(hub_app(allow=(MINILM,))) as url:
        docs = httpx.get(url + "/docs")
        assert httpx.get(url + "/static-docs/swagger-ui-bundle.js").status_code == 404
    assert docs.status_code == 503 and "pip install" in docs.text and "fastapi-offline" in docs.text
    assert "/openapi.json" in docs.text and "http" not in docs.text.replace(url, "")
