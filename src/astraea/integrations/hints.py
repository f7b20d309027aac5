"""Carry astraea's job hints through vLLM's OpenAI server to the scheduler.

vLLM 0.32.0 drops body fields it does not know (with a warning) and ignores unknown
headers; what reaches the engine's ``Request`` is ``session_id`` (body field, ``X-Session-ID``
header or ``vllm_xargs.session_id``), ``priority`` (body or ``X-Vllm-Priority``) and
``vllm_xargs`` (as ``sampling_params.extra_args``). Our clients (``astraea bench``, agents
written for ``astraea serve``) send ``X-Astraea-Job-Id`` and ``astraea_last`` /
``astraea_tool`` / ``astraea_tool_latency`` body fields. This ASGI middleware, loaded with
vLLM's ``--middleware astraea.integrations.hints.AstraeaHintsMiddleware``, moves them into
``vllm_xargs`` before vLLM parses the body. Clients may also send ``vllm_xargs`` directly.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

JOB_HEADER = b"x-astraea-job-id"
HINT_FIELDS = ("astraea_job_id", "astraea_last", "astraea_tool", "astraea_tool_latency")
_PATHS = ("/chat/completions", "/completions")


def rewrite_body(body: bytes, header_job_id: str | None) -> bytes | None:
    """The body with astraea hints moved into ``vllm_xargs`` (None: nothing to change).
    ``astraea_last`` becomes 0/1, since ``vllm_xargs`` holds only str, int and float."""
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(data, dict):
        return None
    found = {k: data.pop(k) for k in HINT_FIELDS if k in data}
    if header_job_id:
        found.setdefault("astraea_job_id", header_job_id)
    if not found:
        return None
    xargs = data.get("vllm_xargs")
    xargs = dict(xargs) if isinstance(xargs, dict) else {}
    for key, value in found.items():
        if value is None:
            continue
        if key == "astraea_last":
            value = int(bool(value))
        elif key == "astraea_tool_latency":
            value = float(value)
        else:
            value = str(value)
        xargs.setdefault(key, value)
    data["vllm_xargs"] = xargs
    return json.dumps(data).encode()


class AstraeaHintsMiddleware:
    """Pure ASGI (no Starlette import): rewrites POST bodies of the completion endpoints and
    hands every later message (a client disconnect, say) through unchanged."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope.get("type") != "http"
            or scope.get("method") != "POST"
            or not str(scope.get("path", "")).endswith(_PATHS)
        ):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message.get("type") != "http.request":  # gone before the body arrived
                await self.app(scope, _replay([message], receive), send)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        headers = list(scope.get("headers") or [])
        job = next((v.decode("latin-1") for k, v in headers if k.lower() == JOB_HEADER), None)
        body = b"".join(chunks)
        new = rewrite_body(body, job)
        if new is not None:
            body = new
            headers = [(k, v) for k, v in headers if k.lower() != b"content-length"]
            headers.append((b"content-length", str(len(body)).encode()))
            scope = dict(scope, headers=headers)
        first = {"type": "http.request", "body": body, "more_body": False}
        await self.app(scope, _replay([first], receive), send)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replay() -> Message:
        return pending.pop(0) if pending else await receive()

    return replay
