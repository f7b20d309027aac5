"""Browser protection: a web page the user opens must not be able to drive the server.

A page can send a "simple" cross-origin POST without asking first (no CORS preflight) as long
as its body is ``text/plain``, a form, or a blob without a type; and through DNS rebinding
it can even reach a loopback server under its own host name. So, as local servers people
trust do (Jupyter, Ollama), every request passes three checks before any route runs:

- ``Host`` must be one of the server's names when it listens on loopback (``allowed_hosts``;
  any host when it listens elsewhere);
- an ``Origin``, when a browser sends one, must be the server's own host or an allowed one
  (``--allowed-origins``; ``*`` allows every origin);
- a body must be sent as JSON (``application/json`` or ``application/*+json``); anything else
  is 415.

Allowed origins also get CORS answers (Starlette's middleware), so their pages can read the
responses.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from astraea.server.errors import APIError

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
_BODY_METHODS = {"POST", "PUT", "PATCH"}


def is_loopback(host: str) -> bool:
    return host.lower() in LOOPBACK_NAMES or host.startswith("127.")


def host_name(host: str) -> str:
    """``example.com:8000`` -> ``example.com``, ``[::1]:8000`` -> ``::1``."""
    if host.startswith("["):
        return host[1 : host.find("]")].lower() if "]" in host else ""
    return host.rsplit(":", 1)[0].lower() if host.count(":") == 1 else host.lower()


def is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def _has_body(scope: Scope, headers: Headers) -> bool:
    """A request that carries a body (without one there is nothing to forge; a body-less
    POST to a GET route stays a 405)."""
    if scope["method"] not in _BODY_METHODS:
        return False
    length = headers.get("content-length")
    return "transfer-encoding" in headers or (length is not None and length.strip() != "0")


class BrowserGuard:
    """Pure ASGI middleware for the three checks above (streams pass untouched)."""

    def __init__(
        self,
        app: ASGIApp,
        allowed_origins: tuple[str, ...] = (),
        allowed_hosts: tuple[str, ...] | None = LOOPBACK_NAMES,
    ) -> None:
        self.app = app
        self.any_origin = "*" in allowed_origins
        self.origins = {o.rstrip("/").lower() for o in allowed_origins}
        self.hosts = None if allowed_hosts is None else {h.lower() for h in allowed_hosts}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            error = self.check(scope)
            if error is not None:
                await error.response()(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def check(self, scope: Scope) -> APIError | None:
        headers = Headers(scope=scope)
        host = headers.get("host", "")
        if self.hosts is not None and host_name(host) not in self.hosts:
            return APIError(
                403,
                f"Host {host!r} is not one of this server's names (DNS rebinding protection); "
                "listen on a non-loopback address to serve other names",
                code="host_not_allowed",
            )
        origin = headers.get("origin")
        if origin is not None and not self._origin_ok(origin, host):
            return APIError(
                403,
                f"Origin {origin!r} is not allowed; start the server with --allowed-origins "
                "to let that page use it",
                code="origin_not_allowed",
            )
        if _has_body(scope, headers) and not is_json(headers.get("content-type", "")):
            return APIError(
                415,
                "send the body as JSON (Content-Type: application/json)",
                code="unsupported_media_type",
            )
        return None

    def _origin_ok(self, origin: str, host: str) -> bool:
        if self.any_origin or origin.rstrip("/").lower() in self.origins:
            return True
        return bool(host) and urlsplit(origin).netloc.lower() == host.lower()
