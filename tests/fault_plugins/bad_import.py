"""Fails while being imported."""
import mmhub_fault_library_that_is_not_installed  # noqa: F401
