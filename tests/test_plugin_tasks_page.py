"""The page at ``/`` serves a plugin's task: a file picker for its own kind of input, and its results drawn by
the task's declared view ("text") from the result class's own ``summary()``, with the JSON at hand.

Runs in a real headless Chromium (Debian's ``chromium``) driven by Playwright, against a real server
in this process with the ``tablestats`` plugin of tests/task_plugins/ installed.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # drives chromium against a served page

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from test_plugin_tasks import assert_stats, install_plugin, write_table  # noqa: E402
from test_serve_page import _browser_missing, chromium_browser  # noqa: E402


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    reason = _browser_missing()
    if reason:
        pytest.skip(reason)
    from hub.device import MODEL_CACHE
    from hub.plugins import reset_plugin_manager
    from serve_server import hub_app, running

    root = tmp_path_factory.mktemp("page_site")
    install_plugin(root, "tablestats")
    sys.path.insert(0, str(root))
    reset_plugin_manager()
    try:
        with running(hub_app(preload=("table-stats",), allow=("table-stats",))) as url:
            yield url
    finally:
        sys.path.remove(str(root))
        sys.modules.pop("mmhub_task_tablestats", None)
        MODEL_CACHE.clear()
        reset_plugin_manager()


def test_the_page_runs_a_plugin_task_on_an_uploaded_file(server, tmp_path):
    path = tmp_path / "prices.csv"
    columns = write_table(path, 11)
    with chromium_browser() as browser:
        tab = browser.new_page()
        tab.set_default_timeout(120_000)  # a budget for a busy machine, not a timing check
        problems: list[str] = []
        tab.on("pageerror", lambda exc: problems.append(str(exc)))
        tab.goto(server + "/")
        tab.wait_for_function("[...document.querySelectorAll('#task-filter option')]"
                              ".some((o) => o.value === 'table-statistics')")
        tab.select_option("#task-filter", "table-statistics")
        tab.select_option("#model-select", "table-stats")
        tab.wait_for_function("!document.querySelector('#run-button').disabled")
        assert tab.is_visible("#drop-zone") and not tab.is_visible("#text-input")
        assert tab.get_attribute("#file-input", "accept") == "" and tab.inner_text("#file-label") == "Files (csv)"
        tab.set_input_files("#file-input", str(path))
        tab.wait_for_selector("#file-list li")
        tab.click("#run-button")
        view = ".result-view[data-result='mmhub_task_tablestats:TableStats'][data-view='text']"
        tab.wait_for_selector(f"{view} pre.summary-text")
        summaries = tab.locator(f"{view} pre.summary-text").all_inner_texts()
        caption = tab.inner_text(f"{view} figure.result figcaption")
        tab.click(f"{view} details.raw summary")
        shown = json.loads(tab.inner_text(f"{view} details.raw pre.json"))
        assert not problems, problems
    assert len(shown) == 1 and caption == "prices.csv"
    assert_stats(shown[0], columns)
    want = sys.modules["mmhub_task_tablestats"].TableStats.from_dict(shown[0]).summary()
    assert summaries == [want] and want.startswith("40 rows\n")  # as ``hub run`` prints it, every line
