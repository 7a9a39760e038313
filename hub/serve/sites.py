"""Which names and which web pages may reach the server: the ``Host`` and ``Origin`` allow-lists, and CORS.

A server on loopback without an API key can be reached by any web page the user opens: the browser sends
the page's requests to ``127.0.0.1`` itself. Three rules close that:

- **Host** (DNS rebinding): a page at ``http://evil.example:8000`` whose name is made to resolve to
  127.0.0.1 reaches the server with ``Host: evil.example:8000``. Only these hosts are answered: IP
  addresses, ``localhost`` and ``*.localhost``, the address the server binds (and, bound beyond loopback,
  the machine's own names) and the names given with ``--allowed-host`` (``*`` for any).
- **Origin**: a request a browser sends from another page carries that page's ``Origin``. It is answered
  only when the origin is the server's own (the ``Host`` it was sent to, or a loopback name with the
  server's port) or one given with ``--cors-origin``; any other is a 403. Clients that are no page
  (curl, the SDK, OpenAI's client) send no ``Origin`` and are not affected.
- **Content type** (in :mod:`hub.serve.gate`): bodies are read only with the content type their route
  declares, so a page cannot post JSON as ``text/plain``, which browsers send without asking first.

Allowed cross-origin pages get CORS answers: preflights (``OPTIONS``) are answered without the API key,
and every response names the origin in ``Access-Control-Allow-Origin``.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")
PREFLIGHT_HEADERS = {"Access-Control-Allow-Methods": "GET, POST, OPTIONS",
                     "Access-Control-Allow-Headers": "Authorization, Content-Type",
                     "Access-Control-Max-Age": "600"}


@dataclass(frozen=True)
class Sites:
    """The allow-lists: ``--cors-origin`` origins, ``--allowed-host`` names and the address bound."""

    cors_origins: tuple = ()
    allowed_hosts: tuple = ()
    bind_host: str | None = None

    def host_allowed(self, host: str | None) -> bool:
        """Whether a request's ``Host`` header names this server (a missing one is HTTP/1.0's: allowed)."""
        if host is None:
            return True
        name = hostname(host)
        if name is None:
            return False
        allowed = {normal_name(h) for h in self.allowed_hosts}
        if "*" in allowed or name in allowed or name == normal_name(self.bind_host or ""):
            return True
        return name == "localhost" or name.endswith(".localhost") or is_ip(name)

    def origin_kind(self, origin: str, host: str | None, port: int | None) -> str | None:
        """'same' for the server's own origin, 'cross' for another allowed one, None for one refused."""
        parts = split_origin(origin)
        if parts is None:
            return None
        scheme, netloc = parts
        if host is not None and netloc == host.lower().rstrip("."):
            return "same"
        if normal_origin(origin) in {normal_origin(o) for o in self.cors_origins}:
            return "cross"
        names = {*LOOPBACK_NAMES, *(bracketed(self.bind_host),)} if self.bind_host else set(LOOPBACK_NAMES)
        if port is not None and netloc in {f"{n}:{port}" for n in names}:
            return "cross"  # the page of this server under another loopback name (localhost vs 127.0.0.1)
        return None


def hostname(host: str) -> str | None:
    """The name in a ``Host`` header, lower case and without the port or a final dot; None if malformed."""
    host = host.strip().lower()
    if host.startswith("["):
        end = host.find("]")
        return host[1:end] if end > 0 else None
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    return name.rstrip(".") or None


def normal_name(name: str) -> str:
    return name.strip().lower().strip("[]").rstrip(".")


def bracketed(host: str) -> str:
    """An address as it appears in a URL: IPv6 in brackets."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host.lower()


def is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def split_origin(origin: str) -> tuple[str, str] | None:
    """(scheme, host[:port]) of an ``Origin`` header; None for ``null`` or anything that is no http(s) origin."""
    try:
        parts = urlsplit(origin.strip())
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/"):
        return None
    return parts.scheme, parts.netloc.lower().rstrip(".")


def normal_origin(origin: str) -> str:
    """An origin as compared: lower case, no final slash, the scheme's default port left out."""
    parts = split_origin(origin)
    if parts is None:
        return origin
    scheme, netloc = parts
    default = {"http": ":80", "https": ":443"}[scheme]
    return f"{scheme}://{netloc[:-len(default)] if netloc.endswith(default) else netloc}"


def check_origin(origin: str) -> str:
    """A ``--cors-origin`` value as compared (scheme://host[:port]); ValueError naming the form otherwise."""
    if split_origin(origin) is None:
        raise ValueError(f"'{origin}' is not an origin; give scheme://host[:port], e.g. http://localhost:3000")
    return normal_origin(origin)


def cors_headers(origin: str) -> dict:
    """The headers that let an allowed page at ``origin`` read a response."""
    return {"Access-Control-Allow-Origin": origin, "Vary": "Origin",
            "Access-Control-Expose-Headers": "Retry-After, WWW-Authenticate, X-Hub-Replica"}
