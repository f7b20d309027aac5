"""One LLM call crossing from the event loop to the engine thread and back.

A handler builds a ``Call`` and keeps its ``CallHandle``; the engine thread sends events back
through ``loop.call_soon_threadsafe`` (never touching asyncio objects itself): token ids as
they are sampled (with their logprobs when the call asked), then ``Done`` or an
``APIError``. The handle also keeps the admission queue's count: a call is queued from its
acceptance until its first event.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from astraea.engine.sampling import Output, SamplingParams
from astraea.server.errors import APIError


@dataclass(slots=True)
class Verdict:
    """What a finished call means for its job (decided by the handler's rules, run on the
    engine thread so the KV is freed or labelled before the next step)."""

    ends_job: bool
    tool: str = "tool"  # the tool the job now waits on: its latency category
    tool_latency: float | None = None  # the client's hint, seconds
    chat_key: str | None = None  # the conversation including this answer (chat)
    chat_len: int = 0  # messages in that conversation
    text: str | None = None  # prompt + completion text (completions)
    parsed: Any = None  # the handler's view of the answer (content, tool calls)


@dataclass(slots=True)
class Done:
    output: Output
    verdict: Verdict
    prompt_tokens: int  # the call's whole context before generation
    cached_tokens: int  # of which carried over from the job's previous call


@dataclass(eq=False, slots=True)
class Call:
    """A call for the engine thread. ``prompt`` is what the engine appends to the job's
    context: the whole prompt for a new job, only the new turns for a continuation
    (``base_context`` set); if the job is gone by then, ``full_prompt()`` starts it anew."""

    job_id: str
    prompt: list[int]
    params: SamplingParams
    last: bool
    conclude: Callable[[Output], Verdict]
    handle: CallHandle
    base_context: list[int] | None = None
    full_prompt: Callable[[], list[int]] | None = None
    restart: bool = False  # the id names a job whose history this call does not extend
    prefix: str = ""  # text the answer was made to start with (a forced tool call)
    tool_guess: str = "tool"
    tool_latency: float | None = None
    finished: bool = False  # set by the engine thread


class Admission:
    """The bounded admission queue: calls accepted that have not produced a token yet.
    Counted on the event loop only, so a flood is judged exactly, not by a stale snapshot."""

    def __init__(self, limit: int, retry_after: float = 1.0) -> None:
        self.limit, self.retry_after, self.count = limit, retry_after, 0

    def enter(self) -> None:
        if self.count >= self.limit:
            raise APIError(
                429,
                f"the server is busy: {self.count} calls are queued; retry later",
                code="queue_full",
                headers={"Retry-After": str(max(1, round(self.retry_after)))},
            )
        self.count += 1


class CallHandle:
    """The event-loop side of a call: a queue of events and the admission count."""

    def __init__(self, loop: asyncio.AbstractEventLoop, admission: Admission) -> None:
        self.loop = loop
        self.events: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self.accepted = time.monotonic()
        self.first_token: float | None = None
        self._admission = admission
        self._queued = False
        self.closed = False  # the call's last event (done or error) has been read
        self._logprobs_sent = 0  # engine thread: logprob entries already sent

    # ---- event loop ------------------------------------------------------------------------
    def enqueue(self) -> None:
        """Take a place in the admission queue, or raise 429 when it is full."""
        self._admission.enter()
        self._queued = True

    def dequeue(self) -> None:
        if self._queued:
            self._queued = False
            self._admission.count -= 1

    async def next(self) -> tuple[str, Any]:
        kind, value = await self.events.get()
        self.dequeue()
        if kind != "tokens":
            self.closed = True
        if kind == "tokens" and self.first_token is None:
            self.first_token = time.monotonic()
        return kind, value

    # ---- engine thread ---------------------------------------------------------------------
    def _send(self, kind: str, value: Any) -> None:
        with contextlib.suppress(RuntimeError):  # a closed loop: the server is shutting down
            self.loop.call_soon_threadsafe(self.events.put_nowait, (kind, value))

    def tokens(self, ids: list[int], logprobs: list[Any] | None = None) -> None:
        """New token ids; ``logprobs`` is the call's whole list so far (its new entries go
        with the ids)."""
        new = None
        if logprobs is not None:
            start = self._logprobs_sent
            new = logprobs[start : start + len(ids)]
            self._logprobs_sent = start + len(new)
        self._send("tokens", (ids, new))

    def done(self, done: Done) -> None:
        self._send("done", done)

    def fail(self, error: APIError) -> None:
        self._send("error", error)


@dataclass(slots=True)
class Active:
    """A call the engine is running: its request handle and the tokens already sent."""

    call: Call
    request: Any  # astraea.engine.sampling.Request
    submitted: list[int] = field(default_factory=list)
    sent: int = 0
