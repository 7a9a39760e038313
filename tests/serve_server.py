"""A real uvicorn server on a free loopback port, in a thread, for the serve tests."""
from __future__ import annotations

import contextlib
import socket
import threading
import time


@contextlib.contextmanager
def running(app, ready: bool = True, timeout: float = 120.0):
    """Serve ``app`` with uvicorn on a free port; yields the base URL. Waits for /ready when ``ready``."""
    import httpx
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=30))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    key = app.state.hub.api_key
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    while ready and httpx.get(f"{url}/ready", headers=headers).status_code != 200:
        assert time.monotonic() < deadline, httpx.get(f"{url}/ready", headers=headers).text
        time.sleep(0.05)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def hub_app(**settings):
    """An app with fp32 on the CPU (so results equal ``hub.run`` with the same settings) and ``settings``."""
    from hub.serve.app import Settings, create_app
    from hub.serve.limits import Limits

    limits = settings.pop("limits", None) or Limits()
    return create_app(Settings(limits=limits, device="cpu", dtype="fp32", **settings))
