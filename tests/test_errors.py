"""Error messages are capped: a value quoted from a huge input never makes a huge message or line."""
from __future__ import annotations

import pytest

import hub
from hub import errors
from hub.errors import MAX_MESSAGE, capped

HUGE = "x" * 5_000_000


@pytest.mark.parametrize("make, start, end", [
    (lambda: errors.HubError(f"bad value {HUGE}; fix it"), "bad value xxx", "xxx; fix it"),
    (lambda: errors.CatalogError("cat.yaml", "m", "params", f"expected int, got {HUGE}"),
     "malformed catalogue cat.yaml, entry 'm', field 'params': expected int", "xxx"),
    (lambda: errors.PluginError("p", f"plugin 'p' failed: {HUGE}. Run with --debug."), "plugin 'p' failed: xxx",
     "xxx. Run with --debug."),
    (lambda: errors.OptionError(f"option 'labels' must be a list; got {HUGE}"), "option 'labels' must be", "xxx"),
    (lambda: errors.UnknownModelError(HUGE, ["all-minilm-l6-v2"]), "unknown model id 'xxx",
     "Run `hub list` to see all models."),
    (lambda: errors.UnknownTaskError(HUGE, ["text-embedding"]), "unknown task 'xxx", "Valid tasks: text-embedding."),
    (lambda: errors.WriteError(f"cannot write {HUGE} (disk full)"), "cannot write xxx", "xxx (disk full)"),
])
def test_every_hub_error_keeps_the_start_and_end_of_a_huge_message(make, start, end):
    message = str(make())
    assert len(message) <= MAX_MESSAGE + 60 and "characters left out" in message
    assert message.startswith(start) and message.endswith(end), (message[:100], message[-100:])


@pytest.mark.parametrize("text", ["", "short", "x" * MAX_MESSAGE])
def test_a_message_within_the_cap_is_untouched(text):
    assert capped(text) == text and str(errors.HubError(text)) == text


class Huge:
    @hub.hookimpl
    def register_models(self, register):
        register({"id": "huge-error-model", "task": "text-embedding", "source": "nowhere"})

    @hub.hookimpl
    def load_model(self, spec, device_manager, options):
        return None if spec.id != "huge-error-model" else Exploding(spec, None, device_manager, **options)


class Exploding:
    task = "text-embedding"

    def __init__(self, *args, **kwargs):
        raise RuntimeError("weights are " + HUGE + " and that is the end")


@pytest.mark.parametrize("debug", [False, True])
def test_an_unexpected_error_from_a_plugin_prints_a_capped_line(fresh_hub, cli_runner, debug):
    from hub.cli import cli

    hub.get_plugin_manager().register(Huge(), name="huge")
    done = cli_runner.invoke(cli, [*(["--debug"] if debug else []), "run", "huge-error-model", "hi"])
    assert done.exit_code == 2
    line = done.stderr.strip().splitlines()[-1]
    assert line.startswith("Error: plugin 'huge' failed while loading model 'huge-error-model'")
    assert len(line) <= MAX_MESSAGE + 100 and line.endswith("Run with --debug for the traceback.")


def test_an_unexpected_error_outside_plugins_prints_a_capped_line(cli_runner, monkeypatch):
    from hub import api
    from hub.cli import cli

    def boom(*args, **kwargs):
        raise RuntimeError("internal state " + HUGE + " ends here")

    monkeypatch.setattr(api, "list_models", boom)
    done = cli_runner.invoke(cli, ["list"])
    assert done.exit_code == 1
    line = done.stderr.strip()
    assert "\n" not in line and line.startswith("Error: unexpected RuntimeError: internal state")
    assert len(line) <= MAX_MESSAGE + 200 and "ends here" in line


def test_a_plugin_failing_at_import_with_a_huge_message_is_shown_capped(tmp_path, monkeypatch, fresh_hub, cli_runner):
    import json
    import sys

    from hub.cli import cli
    from hub.testing.isolation import write_dist_info

    (tmp_path / "mmhub_huge_import.py").write_text("raise RuntimeError('x' * 5_000_000 + ' the end')\n")
    write_dist_info(tmp_path, "mmhub-huge-import", "1.0", "hugeimport", "mmhub_huge_import")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("HUB_PLUGINS", raising=False)
    try:
        rows = {r["name"]: r for r in json.loads(cli_runner.invoke(cli, ["plugins", "--json"]).stdout)}
        error = rows["hugeimport"]["error"]
        assert rows["hugeimport"]["status"] == "failed" and len(error) <= MAX_MESSAGE + 60
        assert error.startswith("import failed: RuntimeError: xxx") and error.endswith("the end")
        done = cli_runner.invoke(cli, ["run", "no-such-model", "hi"])
        assert done.exit_code == 2 and len(done.stderr) <= MAX_MESSAGE + 100 and "hugeimport" in done.stderr
    finally:
        sys.modules.pop("mmhub_huge_import", None)
