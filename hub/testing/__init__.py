"""The test kit for plugin authors, a pytest plugin shipped with the hub (``-p hub.testing`` is automatic).

Fixtures:

- ``isolated_hub``: a :class:`~hub.testing.isolation.IsolatedHub` that loads only the plugins named by
  ``hub_plugins`` (the ini option ``mmhub_plugins``, the marker ``@pytest.mark.mmhub_plugins("name")``, or
  your own ``hub_plugins`` fixture), with a temporary catalogue and private config and cache dirs.
- ``hub_plugins``: the entry-point names the isolated hub loads.

Checks: :func:`check_model_contract` (every property of :data:`PROPERTIES` on one model), and the CLI
helpers :func:`run_hub`, :func:`invoke_hub`, :func:`assert_clean_error` and :func:`assert_ok`.
Importing this module imports neither torch nor a backbone library.
"""
from __future__ import annotations

import pytest

from hub.testing.cli import HubResult, assert_clean_error, assert_ok, invoke_hub, run_hub
from hub.testing.contract import PROPERTIES, ContractError, ContractReport, check_model_contract, result_class
from hub.testing.isolation import IsolatedHub, PluginNotLoadedError, reset_hub_state

__all__ = ["IsolatedHub", "PluginNotLoadedError", "reset_hub_state", "check_model_contract", "ContractError",
           "ContractReport",
           "PROPERTIES", "result_class", "run_hub", "invoke_hub", "assert_clean_error", "assert_ok", "HubResult"]


def pytest_addoption(parser) -> None:
    """The ini option naming the plugins an isolated hub loads."""
    parser.addini("mmhub_plugins", "mmhub plugins (entry-point names) the isolated_hub fixture loads",
                  type="args", default=[])


def pytest_configure(config) -> None:
    """Declare the marker that names a test's plugins."""
    config.addinivalue_line("markers", "mmhub_plugins(*names): the plugins the isolated_hub fixture loads")


@pytest.fixture
def hub_plugins(request) -> list[str]:
    """The plugins the isolated hub loads: the test's ``mmhub_plugins`` marker, else the ini option."""
    marker = request.node.get_closest_marker("mmhub_plugins")
    if marker is not None:
        return list(marker.args)
    return list(request.config.getini("mmhub_plugins"))


@pytest.fixture
def isolated_hub(tmp_path, hub_plugins):
    """A hub that loads only ``hub_plugins``, with a temporary catalogue; restored after the test."""
    with IsolatedHub(tmp_path / "mmhub", hub_plugins) as isolated:
        yield isolated
