"""Answers in OpenAI's shapes: whole responses, and server-sent-event streams.

Streams decode the call's tokens as they come and send only text that cannot change:
a trailing incomplete UTF-8 character, the last ``len(stop) - 1`` characters (a stop string
may be forming, and it must not reach the client) and, when tools may be called, anything
from ``<tool_call>`` on (tool calls go out whole, parsed, at the end) are held back.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from astraea.server.calls import Call, Done
from astraea.server.chat_template import CALL_OPEN, held_back
from astraea.server.errors import APIError
from astraea.server.protocol import usage


class EventStream(StreamingResponse):
    """SSE that stops as soon as the client disconnects, whatever the protocol version, and
    always closes its generator; a call whose stream did not reach its end (the client
    left, sending failed, or the stream never started) is cancelled, so its admission slot
    and its KV come back."""

    media_type = "text/event-stream"

    def __init__(
        self,
        content: AsyncIterator[str],
        call: Call,
        cancel: Callable[[Call], None],
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(content, headers=headers)
        self.call, self.cancel = call, cancel

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = self.body_iterator
        try:
            async with anyio.create_task_group() as group:

                async def run() -> None:
                    with contextlib.suppress(OSError):  # the client went away
                        await self.stream_response(send)
                    group.cancel_scope.cancel()

                group.start_soon(run)
                await self.listen_for_disconnect(receive)
                group.cancel_scope.cancel()
        finally:
            if hasattr(body, "aclose"):
                await body.aclose()
            if not self.call.handle.closed:
                self.cancel(self.call)


def sse(data: dict[str, Any] | str) -> str:
    return f"data: {data if isinstance(data, str) else json.dumps(data)}\n\n"


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:24]}"


def tool_calls_out(calls: list[Any]) -> list[dict[str, Any]]:
    return [
        {
            "id": f"call_{uuid.uuid4().hex[:24]}",
            "type": "function",
            "function": {"name": c.name, "arguments": c.arguments},
        }
        for c in calls
    ]


def finish_reason(done: Done, calls: list[Any]) -> str:
    return "tool_calls" if calls else done.output.finish_reason


def done_usage(done: Done) -> dict[str, Any]:
    return usage(done.prompt_tokens, len(done.output.token_ids), done.cached_tokens)


async def wait_done(call: Call, request: Request, cancel: Callable[[Call], None]) -> Done:
    """Wait for a whole answer; a client that leaves meanwhile cancels the call."""

    async def gone() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass

    result: list[Done | APIError] = []
    async with anyio.create_task_group() as group:

        async def answer() -> None:
            while True:
                kind, value = await call.handle.next()
                if kind in ("done", "error"):
                    result.append(value)
                    group.cancel_scope.cancel()
                    return

        async def watch() -> None:
            await gone()
            cancel(call)
            group.cancel_scope.cancel()

        group.start_soon(answer)
        group.start_soon(watch)
    if not result:
        raise APIError(499, "the client closed the request", code="client_closed")
    if isinstance(result[0], APIError):
        raise result[0]
    return result[0]


class TextStream:
    """Incremental detokenization with the hold-backs described above."""

    def __init__(
        self,
        decode: Callable[[list[int]], str],
        prefix: str,
        stops: tuple[str, ...],
        tools: bool,
        logprobs: bool = False,
    ) -> None:
        self.decode, self.prefix, self.tools = decode, prefix, tools
        self.stops = stops
        self.hold = max((len(s) for s in stops), default=1) - 1
        self.ids: list[int] = []
        self.sent = ""
        # logprob entries of tokens received but not yet sent (they go with the next text)
        self.pending: list[Any] | None = [] if logprobs else None

    def take_logprobs(self) -> list[Any] | None:
        if self.pending is None:
            return None
        out, self.pending = self.pending, []
        return out

    def push(self, ids: list[int]) -> str:
        self.ids.extend(ids)
        text = self.prefix + self.decode(self.ids)
        end = len(text.rstrip("\ufffd")) - self.hold
        for stop in self.stops:  # one may be complete already: the call ends there
            found = text.find(stop, max(0, len(self.sent) - len(stop) + 1))
            if found >= 0:
                end = min(end, found)
        if self.tools:
            end = min(end, held_back(text))
        return self._advance(text, end)

    def finish(self, text: str, called: bool = False) -> str:
        """The rest of the final text (already cut at a stop string); when the answer
        ``called`` tools, only what comes before their blocks (an answer whose blocks did
        not parse is plain content: all of it is sent)."""
        if called and CALL_OPEN in text:
            text = text[: text.find(CALL_OPEN)]
        return self._advance(text, len(text))

    def _advance(self, text: str, end: int) -> str:
        if end <= len(self.sent) or not text.startswith(self.sent):
            return ""
        new = text[len(self.sent) : end]
        self.sent = text[:end]
        return new


async def stream_events(
    call: Call,
    text: TextStream,
    chunk: Callable[..., dict[str, Any]],
    final: Callable[[Done, TextStream], list[dict[str, Any]]],
    first: dict[str, Any] | None = None,
) -> AsyncIterator[str]:
    """Drive one call's SSE stream: ``first``, then ``chunk(text=...)`` per piece of new
    text, ``final`` for the closing chunks; an error becomes an error event. (``EventStream``
    cancels a call whose stream ends early.)"""
    if first is not None:
        yield sse(first)
    while True:
        kind, value = await call.handle.next()
        if kind == "tokens":
            ids, logprobs = value
            if logprobs and text.pending is not None:
                text.pending.extend(logprobs)
            piece = text.push(ids)
            if piece:
                yield sse(chunk(text=piece, logprobs=text.take_logprobs()))
        elif kind == "done":
            for data in final(value, text):
                yield sse(data)
            break
        else:
            yield sse(value.body())
            break
    yield sse("[DONE]")
