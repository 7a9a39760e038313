"""Plugin code (imports, hooks, pipelines) runs with ``sys.stdout`` sent to stderr, so that a stray
``print()`` reaches the user without corrupting what the hub itself prints (``--json``)."""
from __future__ import annotations

import contextlib
import sys
import threading

_redirect_lock = threading.Lock()
_redirect_depth = 0
_redirect_saved = None  # sys.stdout before the outermost redirect
_redirect_target = None  # what sys.stdout was set to


@contextlib.contextmanager
def stdout_to_stderr():
    """Send ``sys.stdout`` to stderr inside (nested and from several threads alike): a plugin's ``print()`` at
    import or in a hook reaches the user without corrupting the hub's own output (``--json``)."""
    global _redirect_depth, _redirect_saved, _redirect_target
    with _redirect_lock:
        if _redirect_depth == 0:
            _redirect_saved = sys.stdout
            if sys.stderr is not None:
                sys.stdout = sys.stderr
            _redirect_target = sys.stdout
        _redirect_depth += 1
    try:
        yield
    finally:
        with _redirect_lock:
            _redirect_depth -= 1
            if _redirect_depth == 0:
                if sys.stdout is _redirect_target:  # unless something else replaced it meanwhile
                    sys.stdout = _redirect_saved
                _redirect_saved = _redirect_target = None
