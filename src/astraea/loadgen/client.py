"""One agent job against an OpenAI-compatible server: its calls in order, its tool waits.

The context grows as an agent's does: the first call sends the user prompt; each later call
sends everything before plus the model's answer and the tool's result (a user turn, so any
chat server accepts it). Calls stream, so the time to the first token is measured. Output
lengths are forced (``max_tokens`` + vLLM's ``min_tokens`` / ``ignore_eos``), and the
job's identity and tool travel as ``X-Astraea-Job-Id`` / ``astraea_*`` fields that other
servers ignore. A 429 is retried after its ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import datetime
import email.utils
import json
import math
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from astraea.core.job import JobSpec
from astraea.loadgen.text import synthetic_text


@dataclass(frozen=True, slots=True)
class BenchOptions:
    """How jobs are sent; the scales shrink a GPU-sized trace for a small or slow server."""

    base_url: str  # e.g. http://127.0.0.1:8000/v1, or the host root http://127.0.0.1:8000
    model: str
    api_key: str | None = None
    tool_scale: float = 1.0  # multiply every tool latency
    token_scale: float = 1.0  # multiply every prompt and output length
    max_call_tokens: int | None = None  # cap on a call's new prompt tokens and on its output
    force_lengths: bool = True  # min_tokens / ignore_eos
    job_hints: bool = True  # X-Astraea-Job-Id, astraea_last, astraea_tool
    tool_latency_hints: bool = False  # astraea_tool_latency: tell the server the future
    timeout: float = 600.0  # per call, seconds
    max_retries: int = 20  # 429 answers per call before the job fails

    def __post_init__(self) -> None:
        if self.tool_scale < 0 or self.token_scale <= 0:
            raise ValueError("tool_scale must be >= 0 and token_scale > 0")
        if self.max_call_tokens is not None and self.max_call_tokens < 1:
            raise ValueError("max_call_tokens must be >= 1")

    def tokens(self, n: int) -> int:
        scaled = max(1, round(n * self.token_scale))
        return min(scaled, self.max_call_tokens) if self.max_call_tokens else scaled


@dataclass(slots=True)
class CallRecord:
    index: int
    sent: float  # seconds since the run started
    ttft: float | None = None  # first content token, seconds after sending
    latency: float | None = None  # last byte, seconds after sending
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int | None = None  # prompt tokens the server already had (if it says)
    retries: int = 0
    itl: list[float] = field(default_factory=list)  # gaps between content chunks, seconds

    @property
    def tpot(self) -> float | None:
        """Time per output token after the first, seconds (``vllm bench serve``'s TPOT:
        (latency - TTFT) / (output tokens - 1)); None for answers of one token."""
        n = self.completion_tokens
        if self.ttft is None or self.latency is None or n is None or n < 2:
            return None
        return (self.latency - self.ttft) / (n - 1)


@dataclass(slots=True)
class JobRecord:
    job_id: str
    arrival: float  # scheduled, seconds since the run started
    finish: float | None = None
    calls: list[CallRecord] = field(default_factory=list)
    error: str | None = None

    @property
    def jct(self) -> float | None:
        return None if self.finish is None else self.finish - self.arrival


class CallError(RuntimeError):
    """The server refused or broke a call; the job stops there."""


async def run_job(
    http: httpx.AsyncClient, spec: JobSpec, options: BenchOptions, clock_zero: float
) -> JobRecord:
    """Run ``spec`` from its arrival time (relative to ``clock_zero``, a monotonic time)."""
    record = JobRecord(spec.job_id, spec.arrival)
    await asyncio.sleep(max(0.0, clock_zero + spec.arrival - time.monotonic()))
    messages: list[dict[str, str]] = []
    last = len(spec.segments) - 1
    try:
        for i, segment in enumerate(spec.segments):
            text = synthetic_text(options.tokens(segment.input_tokens), f"{spec.job_id}/{i}")
            content = text if i == 0 else f"Tool result: {text}"
            messages.append({"role": "user", "content": content})
            body = _body(spec, i, i == last, messages, options)
            call = CallRecord(i, time.monotonic() - clock_zero)
            record.calls.append(call)
            answer = await _send(http, body, spec.job_id, options, call)
            messages.append({"role": "assistant", "content": answer})
            if segment.tool is not None:
                await asyncio.sleep(segment.tool.latency * options.tool_scale)
        record.finish = time.monotonic() - clock_zero
    except (CallError, httpx.HTTPError) as exc:
        record.error = f"call {len(record.calls) - 1}: {exc}"
    return record


def _body(
    spec: JobSpec, i: int, last: bool, messages: list[dict[str, str]], options: BenchOptions
) -> dict[str, Any]:
    segment = spec.segments[i]
    out = options.tokens(segment.output_tokens)
    body: dict[str, Any] = {
        "model": options.model,
        "messages": list(messages),
        "max_tokens": out,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if options.force_lengths:
        body.update(min_tokens=out, ignore_eos=True)
    if options.job_hints:
        body["astraea_last"] = last
        if segment.tool is not None:
            body["astraea_tool"] = segment.tool.name
            if options.tool_latency_hints:
                body["astraea_tool_latency"] = segment.tool.latency * options.tool_scale
    return body


async def _send(
    http: httpx.AsyncClient,
    body: dict[str, Any],
    job_id: str,
    options: BenchOptions,
    call: CallRecord,
) -> str:
    headers = {"Authorization": f"Bearer {options.api_key}"} if options.api_key else {}
    if options.job_hints:
        headers["X-Astraea-Job-Id"] = job_id
    url = api_url(options.base_url) + "/chat/completions"
    while True:
        started = time.monotonic()
        async with http.stream(
            "POST", url, json=body, headers=headers, timeout=options.timeout
        ) as response:
            if response.status_code == 429 and call.retries < options.max_retries:
                call.retries += 1
                await response.aread()
                await asyncio.sleep(retry_after_seconds(response.headers.get("retry-after")))
                continue
            if response.status_code != 200:
                detail = (await response.aread()).decode(errors="replace")[:300]
                raise CallError(f"HTTP {response.status_code}: {detail}")
            return await _read_stream(response, started, call)


async def _read_stream(response: httpx.Response, started: float, call: CallRecord) -> str:
    parts: list[str] = []
    last_chunk: float | None = None
    async for line in response.aiter_lines():
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            break
        chunk = json.loads(data)
        if "error" in chunk:
            raise CallError(str(chunk["error"].get("message", chunk["error"])))
        for choice in chunk.get("choices") or ():
            text = (choice.get("delta") or {}).get("content")
            if text:
                now = time.monotonic()
                if call.ttft is None:
                    call.ttft = now - started
                if last_chunk is not None:  # vllm bench serve's ITL: chunk to chunk
                    call.itl.append(now - last_chunk)
                last_chunk = now
                parts.append(text)
        usage = chunk.get("usage")
        if usage:
            call.prompt_tokens = usage.get("prompt_tokens")
            call.completion_tokens = usage.get("completion_tokens")
            details = usage.get("prompt_tokens_details") or {}
            call.cached_tokens = details.get("cached_tokens")
    call.latency = time.monotonic() - started
    if call.ttft is None:
        call.ttft = call.latency
    return "".join(parts)


def retry_after_seconds(header: str | None, default: float = 1.0, cap: float = 60.0) -> float:
    """Seconds a ``Retry-After`` asks for: a number, or an HTTP date (RFC 9110); anything
    unreadable waits ``default``; never more than ``cap``."""
    if not header:
        return default
    try:
        seconds = float(header)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(header)
        except (TypeError, ValueError):
            return default
        if when.tzinfo is None:
            when = when.replace(tzinfo=datetime.UTC)
        seconds = (when - datetime.datetime.now(datetime.UTC)).total_seconds()
    if not math.isfinite(seconds):
        return default
    return min(max(seconds, 0.0), cap)


def api_url(base_url: str) -> str:
    """The OpenAI API root of a server given by its host root or its ``/v1`` URL
    (``http://host:8000`` and ``http://host:8000/v1/`` both become ``.../v1``), as vLLM's
    ``bench serve --base-url`` takes a host root."""
    url = base_url.rstrip("/")
    return url if url.endswith("/v1") else url + "/v1"
